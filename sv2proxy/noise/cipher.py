"""Noise CipherState and SymmetricState for SV2 (PROTOCOL.md §5.1–5.2; Noise rev 34 §5.1–5.2).

The SV2 suite is ``Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256``: SHA-256 for
hashing and HKDF, ChaCha20-Poly1305 (RFC 8439) with a 12-byte nonce of four
zero bytes followed by the little-endian 64-bit counter.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from sv2proxy.errors import ProtocolError

PROTOCOL_NAME = b"Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256"
KEY_SIZE = 32
MAC_SIZE = 16
HASH_SIZE = 32
#: Noise reserves the last nonce value, so a key is spent once n reaches it.
MAX_NONCE = 2**64 - 1

#: What the AEAD accepts; the transport passes slices of larger buffers without copying.
Buffer = bytes | bytearray | memoryview

# 4 zero bytes, then the counter as U64 LE (SRI cipher_state.rs nonce_to_bytes).
_pack_nonce = struct.Struct("<4xQ").pack
_EXHAUSTED = "noise nonce space exhausted; the connection must be re-established"


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hkdf2(chaining_key: bytes, input_key_material: bytes) -> tuple[bytes, bytes]:
    """Noise ``HKDF(ck, ikm)`` with two outputs (= RFC 5869, salt=ck, info="", L=64)."""
    temp_key = hmac.digest(chaining_key, input_key_material, "sha256")
    output1 = hmac.digest(temp_key, b"\x01", "sha256")
    output2 = hmac.digest(temp_key, output1 + b"\x02", "sha256")
    return output1, output2


class CipherState:
    """One ChaCha20-Poly1305 key and its nonce counter.

    The AEAD object is built once per key: setting the key up again for every
    message would cost more than encrypting a typical SV2 message.
    """

    __slots__ = ("_aead", "_nonce")

    def __init__(self, key: bytes, nonce: int = 0) -> None:
        if len(key) != KEY_SIZE:
            raise ValueError(f"a cipher key is {KEY_SIZE} bytes, got {len(key)}")
        if not 0 <= nonce <= MAX_NONCE:
            raise ValueError(f"nonce {nonce} is outside 0..2^64-1")
        self._aead = ChaCha20Poly1305(key)
        self._nonce = nonce

    @property
    def nonce(self) -> int:
        """The counter the next encryption or decryption will use."""
        return self._nonce

    def encrypt_with_ad(self, ad: Buffer | None, plaintext: Buffer) -> bytes:
        """``plaintext`` encrypted and authenticated with ``ad``: ciphertext ‖ 16-byte tag.

        ``ad=None`` is the same as ``b""`` (the transport's case), a little cheaper.
        """
        # Hot path of every transport frame: no helper calls, the nonce packed by a bound method.
        nonce = self._nonce
        if nonce == MAX_NONCE:
            raise ProtocolError(_EXHAUSTED)
        ciphertext = self._aead.encrypt(_pack_nonce(nonce), plaintext, ad)
        self._nonce = nonce + 1
        return ciphertext

    def decrypt_with_ad(self, ad: Buffer | None, ciphertext: Buffer) -> bytes:
        """The plaintext of ``ciphertext`` (tag included); ProtocolError if it does not authenticate.

        The counter moves only on success (as SRI rolls back), so a failed
        decryption leaves the state as it was.  ``ad=None`` is the same as ``b""``.
        """
        nonce = self._nonce
        if nonce == MAX_NONCE:
            raise ProtocolError(_EXHAUSTED)
        try:
            plaintext = self._aead.decrypt(_pack_nonce(nonce), ciphertext, ad)
        except InvalidTag:
            raise ProtocolError(
                f"noise message failed authentication (nonce {nonce}): corrupted, "
                "forged, or encrypted with another key"
            ) from None
        self._nonce = nonce + 1
        return plaintext


class SymmetricState:
    """The handshake's chaining key ``ck``, hash ``h`` and optional CipherState."""

    __slots__ = ("_chaining_key", "_cipher", "_hash")

    def __init__(self) -> None:
        # The protocol name is longer than 32 bytes, so Noise hashes it; the
        # second hash is MixHash of SV2's empty prologue.
        self._chaining_key = _sha256(PROTOCOL_NAME)
        self._hash = _sha256(self._chaining_key)
        self._cipher: CipherState | None = None

    @property
    def handshake_hash(self) -> bytes:
        """The current ``h``: a transcript of everything mixed in so far."""
        return self._hash

    def mix_hash(self, data: bytes) -> None:
        """``h = SHA256(h ‖ data)``."""
        self._hash = _sha256(self._hash + data)

    def mix_key(self, input_key_material: bytes) -> None:
        """New ``ck`` and a fresh key (nonce 0) from HKDF(ck, ikm)."""
        self._chaining_key, temp_key = hkdf2(self._chaining_key, input_key_material)
        self._cipher = CipherState(temp_key)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        """Encrypt with ``ad = h`` (or pass through before the first key), then hash the result."""
        if self._cipher is None:
            ciphertext = plaintext
        else:
            ciphertext = self._cipher.encrypt_with_ad(self._hash, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        """Decrypt with ``ad = h``, then hash the ciphertext (not the plaintext)."""
        if self._cipher is None:
            plaintext = ciphertext
        else:
            plaintext = self._cipher.decrypt_with_ad(self._hash, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        """The transport keys ``(k1, k2) = HKDF(ck, b"")``: k1 for initiator→responder."""
        key1, key2 = hkdf2(self._chaining_key, b"")
        return CipherState(key1), CipherState(key2)


__all__ = [
    "KEY_SIZE",
    "MAC_SIZE",
    "MAX_NONCE",
    "PROTOCOL_NAME",
    "CipherState",
    "SymmetricState",
    "hkdf2",
]
