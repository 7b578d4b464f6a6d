"""SIGNATURE_NOISE_MESSAGE, the server certificate of the handshake (PROTOCOL.md §5.3; SPEC 04 §4.5.3).

74 bytes: ``version`` U16 LE, ``valid_from`` U32 LE, ``not_valid_after`` U32 LE
(unix seconds) and a 64-byte BIP340 signature by the authority key over
``SHA256(version ‖ valid_from ‖ not_valid_after ‖ server_static_xonly)``.

The signature is standard BIP340 over that 32-byte digest; the spec's
"s·G = R + HASH(R‖P‖m)·P" is a paraphrase of it (§10 row 8).
"""

from __future__ import annotations

import enum
import hashlib
import os
import struct
from dataclasses import dataclass

from coincurve import PrivateKey, PublicKeyXOnly

from sv2proxy.errors import ProtocolError
from sv2proxy.noise.keys import encode_authority_public_key

SIGNATURE_NOISE_MESSAGE_SIZE = 74
#: The only version defined; SRI sends it and sv2-tp rejects anything above it.
CERTIFICATE_VERSION = 0
#: SRI's tolerance for clock drift (stratum #2015); sv2-tp has none.
DEFAULT_LEEWAY = 10
SIGNATURE_SIZE = 64
_U32_MAX = 0xFFFFFFFF

# version U16 LE, valid_from U32 LE, not_valid_after U32 LE
_HEADER = struct.Struct("<HII")


class CertificateFailure(enum.Enum):
    """Why a certificate was refused; the error message adds the numbers."""

    UNSUPPORTED_VERSION = "unsupported certificate version"
    BAD_SIGNATURE = "bad signature"
    NOT_YET_VALID = "certificate not yet valid"
    EXPIRED = "certificate expired"


class CertificateError(ProtocolError):
    """The server's certificate does not prove it speaks for the pinned authority.

    ``reason`` is machine-readable; the message says by how much a time
    bound was missed, because clock drift is the usual cause in the field.
    """

    def __init__(self, reason: CertificateFailure, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def certificate_digest(
    version: int, valid_from: int, not_valid_after: int, server_static_xonly: bytes
) -> bytes:
    """The 32-byte message the authority signs (42 bytes hashed)."""
    if len(server_static_xonly) != 32:
        raise ValueError(f"a server static x-only key is 32 bytes, got {len(server_static_xonly)}")
    header = _HEADER.pack(version, valid_from, not_valid_after)
    return hashlib.sha256(header + server_static_xonly).digest()


@dataclass(frozen=True, slots=True)
class SignatureNoiseMessage:
    """The certificate sent, encrypted, at the end of act 2."""

    version: int
    valid_from: int
    not_valid_after: int
    signature: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.version <= 0xFFFF:
            raise ValueError(f"version {self.version} does not fit U16")
        for name in ("valid_from", "not_valid_after"):
            value = getattr(self, name)
            if not 0 <= value <= _U32_MAX:
                raise ValueError(f"{name} {value} does not fit U32")
        if len(self.signature) != SIGNATURE_SIZE:
            raise ValueError(f"a signature is {SIGNATURE_SIZE} bytes, got {len(self.signature)}")

    @classmethod
    def sign(
        cls,
        authority_secret: bytes,
        server_static_xonly: bytes,
        valid_from: int,
        not_valid_after: int,
        *,
        version: int = CERTIFICATE_VERSION,
        aux_rand: bytes | None = None,
    ) -> SignatureNoiseMessage:
        """A certificate for ``server_static_xonly`` signed by the authority.

        ``aux_rand`` is BIP340's auxiliary randomness; ``None`` draws 32 fresh
        bytes, tests pass fixed bytes to get a reproducible signature.
        """
        digest = certificate_digest(version, valid_from, not_valid_after, server_static_xonly)
        if aux_rand is None:
            aux_rand = os.urandom(32)
        signature = PrivateKey(authority_secret).sign_schnorr(digest, aux_rand)
        return cls(version, valid_from, not_valid_after, signature)

    def encode(self) -> bytes:
        """The 74 wire bytes."""
        return _HEADER.pack(self.version, self.valid_from, self.not_valid_after) + self.signature

    @classmethod
    def decode(cls, data: bytes) -> SignatureNoiseMessage:
        """The certificate in ``data``, which must be exactly 74 bytes."""
        if len(data) != SIGNATURE_NOISE_MESSAGE_SIZE:
            raise ProtocolError(
                f"a SIGNATURE_NOISE_MESSAGE is {SIGNATURE_NOISE_MESSAGE_SIZE} bytes, got {len(data)}"
            )
        version, valid_from, not_valid_after = _HEADER.unpack_from(data)
        return cls(version, valid_from, not_valid_after, bytes(data[_HEADER.size :]))

    def digest(self, server_static_xonly: bytes) -> bytes:
        """The message this certificate's signature must cover."""
        return certificate_digest(
            self.version, self.valid_from, self.not_valid_after, server_static_xonly
        )

    def verify(
        self,
        authority_xonly: bytes,
        server_static_xonly: bytes,
        now: int,
        leeway: int = DEFAULT_LEEWAY,
    ) -> None:
        """Raise :class:`CertificateError` unless the certificate is valid at ``now``.

        The signature is checked before the dates: dates of an unauthenticated
        certificate mean nothing.  A certificate signed by another authority
        cannot be told apart from a forged one (BIP340 does not reveal the
        signer), so both are reported as a bad signature naming the pinned key.
        """
        if leeway < 0:
            raise ValueError(f"leeway must not be negative, got {leeway}")
        if self.version != CERTIFICATE_VERSION:
            raise CertificateError(
                CertificateFailure.UNSUPPORTED_VERSION,
                f"unsupported certificate version {self.version} "
                f"(only {CERTIFICATE_VERSION} is defined)",
            )
        # ValueError for an invalid pinned key: that is our configuration, not the peer.
        authority = PublicKeyXOnly(authority_xonly)
        if not authority.verify(self.signature, self.digest(server_static_xonly)):
            raise CertificateError(
                CertificateFailure.BAD_SIGNATURE,
                "bad signature: the certificate is not signed by the expected authority key "
                f"{encode_authority_public_key(authority_xonly)} for server key "
                f"{server_static_xonly.hex()} (another authority, or a forged certificate)",
            )
        if now < self.valid_from - leeway:
            raise CertificateError(
                CertificateFailure.NOT_YET_VALID,
                f"certificate not yet valid for {self.valid_from - now} s "
                f"(valid_from {self.valid_from}, now {now}, leeway {leeway} s); "
                "check the clocks of both hosts",
            )
        if now > self.not_valid_after + leeway:
            raise CertificateError(
                CertificateFailure.EXPIRED,
                f"certificate expired {now - self.not_valid_after} s ago "
                f"(not_valid_after {self.not_valid_after}, now {now}, leeway {leeway} s)",
            )


__all__ = [
    "CERTIFICATE_VERSION",
    "DEFAULT_LEEWAY",
    "SIGNATURE_NOISE_MESSAGE_SIZE",
    "CertificateError",
    "CertificateFailure",
    "SignatureNoiseMessage",
    "certificate_digest",
]
