"""Authority keys and their text form (PROTOCOL.md §5.4, SPEC 04 §4.7).

A public authority key is shown as ``base58check(0x01 0x00 || xonly32)``: a
little-endian U16 version 1 followed by the BIP340 x-only key.  A secret key
uses the SRI convention ``base58check(secret32)`` with no prefix.
:class:`AuthorityKey` pairs a secret with its x-only public key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import base58
from coincurve import PrivateKey

AUTHORITY_KEY_VERSION = 1
_VERSION_PREFIX = AUTHORITY_KEY_VERSION.to_bytes(2, "little")


def encode_authority_public_key(xonly: bytes) -> str:
    """The base58check text form of a 32-byte x-only authority public key."""
    if len(xonly) != 32:
        raise ValueError(f"an authority public key is 32 bytes, got {len(xonly)}")
    return base58.b58encode_check(_VERSION_PREFIX + xonly).decode("ascii")


def decode_authority_public_key(text: str) -> bytes:
    """The 32-byte x-only key from its base58check text form; ValueError says why not."""
    try:
        raw = base58.b58decode_check(text.strip())
    except ValueError as e:
        raise ValueError(f"not a base58check authority public key ({e})") from None
    if len(raw) != 34:
        raise ValueError(
            f"an authority public key encodes 34 bytes (version + x-only key), got {len(raw)}"
        )
    version = int.from_bytes(raw[:2], "little")
    if version != AUTHORITY_KEY_VERSION:
        raise ValueError(f"unsupported authority key version {version} (expected 1)")
    return raw[2:]


def encode_authority_secret_key(secret: bytes) -> str:
    """The base58check text form of a 32-byte secret key (SRI convention)."""
    if len(secret) != 32:
        raise ValueError(f"an authority secret key is 32 bytes, got {len(secret)}")
    return base58.b58encode_check(secret).decode("ascii")


def decode_authority_secret_key(text: str) -> bytes:
    """The 32-byte secret from its base58check text form; ValueError says why not."""
    try:
        raw = base58.b58decode_check(text.strip())
    except ValueError as e:
        raise ValueError(f"not a base58check secret key ({e})") from None
    if len(raw) != 32:
        raise ValueError(f"an authority secret key encodes 32 bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True, slots=True)
class AuthorityKey:
    """An authority secret key and the x-only public key miners pin.

    The secret is left out of ``repr`` so that logging the object, or a
    traceback that shows it, never reveals the key.
    """

    secret: bytes = field(repr=False)
    public: bytes = field(init=False)

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise ValueError(f"an authority secret key is 32 bytes, got {len(self.secret)}")
        # coincurve refuses 0 and values >= the group order with ValueError.
        public = PrivateKey(self.secret).public_key_xonly.format()
        object.__setattr__(self, "public", public)

    @classmethod
    def generate(cls) -> AuthorityKey:
        """A fresh key from the operating system's CSPRNG."""
        return cls(PrivateKey().secret)

    @classmethod
    def from_secret_text(cls, text: str) -> AuthorityKey:
        """The key whose secret is given in base58check text form."""
        return cls(decode_authority_secret_key(text))

    @property
    def public_text(self) -> str:
        """The public key as miners configure it (``9...``, 51 characters)."""
        return encode_authority_public_key(self.public)

    def secret_text(self) -> str:
        """The secret in base58check text form, for the key file only."""
        return encode_authority_secret_key(self.secret)
