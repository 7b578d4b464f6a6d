"""The Noise NX handshake of SV2, both roles (PROTOCOL.md §5.2; SPEC 04 §4.5).

``Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256``::

    -> e                                   act 1: 64 bytes
    <- e, ee, s, es, SIGNATURE_NOISE_MESSAGE   act 2: 64 + 80 + 90 = 234 bytes

The client (initiator) stays anonymous; the server (responder) proves its
static key with a certificate from the authority key the client pinned.  The
handshake messages are raw bytes, not SV2 frames, and nothing else may be
exchanged before both acts are done.

Both classes are sans-IO and single-use: the caller buffers exactly
:data:`ACT1_SIZE` / :data:`ACT2_SIZE` bytes, hands them over, and gets a
:class:`~sv2proxy.noise.transport.NoiseSession` back.  Secrets and the
ElligatorSwift randomness can be injected so tests are reproducible.
"""

from __future__ import annotations

import enum
import os

from coincurve import PrivateKey, PublicKeyXOnly

from sv2proxy.codec.framing import MAX_PAYLOAD_LENGTH
from sv2proxy.errors import ProtocolError
from sv2proxy.noise.certificate import (
    DEFAULT_LEEWAY,
    SIGNATURE_NOISE_MESSAGE_SIZE,
    SignatureNoiseMessage,
)
from sv2proxy.noise.cipher import MAC_SIZE, SymmetricState
from sv2proxy.noise.ellswift import (
    ELLSWIFT_ENCODING_SIZE,
    ellswift_decode_xonly,
    ellswift_encode,
    ellswift_xdh,
)
from sv2proxy.noise.transport import NoiseSession

ACT1_SIZE = ELLSWIFT_ENCODING_SIZE  # 64
_STATIC_END = ELLSWIFT_ENCODING_SIZE + ELLSWIFT_ENCODING_SIZE + MAC_SIZE  # 144
ACT2_SIZE = _STATIC_END + SIGNATURE_NOISE_MESSAGE_SIZE + MAC_SIZE  # 234

#: SRI's pool signs certificates valid for an hour (``cert_validity_sec``).
DEFAULT_CERTIFICATE_VALIDITY = 3600
#: How far before ``now`` a fresh certificate starts, so a client whose clock
#: lags ours still accepts it: sv2-tp checks with no leeway at all (§5.3), and
#: "not yet valid" from small drift is a reported field failure.  sv2-tp itself
#: backdates its certificates by the same hour.
DEFAULT_CERTIFICATE_BACKDATE = 3600
_U32_MAX = 0xFFFFFFFF


def _secret_or_fresh(secret: bytes | None) -> bytes:
    """A valid secp256k1 secret: the given one (checked) or a fresh random one."""
    if secret is None:
        return PrivateKey().secret
    PrivateKey(secret)  # ValueError for a wrong length, 0, or >= the group order
    return secret


def _encode_public(secret: bytes, rnd32: bytes | None) -> bytes:
    public = PrivateKey(secret).public_key.format(compressed=True)
    return ellswift_encode(public, os.urandom(32) if rnd32 is None else rnd32)


class _InitiatorPhase(enum.Enum):
    START = "start"
    AWAITING_ACT2 = "awaiting act 2"
    FINISHED = "finished"


class Initiator:
    """The client side: writes act 1, reads act 2, checks the certificate.

    ``authority_key`` is the pinned 32-byte x-only authority key; ``None``
    skips certificate verification, as SRI does for local Template Provider
    links (the link is still encrypted, but not authenticated).
    """

    __slots__ = (
        "_authority_key",
        "_ellswift_rnd",
        "_ephemeral_encoding",
        "_ephemeral_secret",
        "_leeway",
        "_max_payload",
        "_phase",
        "_symmetric",
    )

    def __init__(
        self,
        authority_key: bytes | None = None,
        *,
        leeway: int = DEFAULT_LEEWAY,
        ephemeral_secret: bytes | None = None,
        ellswift_rnd: bytes | None = None,
        max_payload: int = MAX_PAYLOAD_LENGTH,
    ) -> None:
        if authority_key is not None:
            # A malformed pinned key is a configuration error; say so now, not per connection.
            PublicKeyXOnly(authority_key)
        if leeway < 0:
            raise ValueError(f"leeway must not be negative, got {leeway}")
        self._authority_key = authority_key
        self._leeway = leeway
        self._ephemeral_secret = _secret_or_fresh(ephemeral_secret)
        self._ellswift_rnd = ellswift_rnd
        self._max_payload = max_payload
        self._symmetric = SymmetricState()
        self._ephemeral_encoding = b""
        self._phase = _InitiatorPhase.START

    @property
    def handshake_hash(self) -> bytes:
        """The current ``h``; after act 1 it is the value both sides must agree on."""
        return self._symmetric.handshake_hash

    def write_act1(self) -> bytes:
        """The 64 bytes to send first: our ephemeral key."""
        if self._phase is not _InitiatorPhase.START:
            raise RuntimeError(f"act 1 was already written (phase: {self._phase.value})")
        self._phase = _InitiatorPhase.AWAITING_ACT2
        encoding = _encode_public(self._ephemeral_secret, self._ellswift_rnd)
        self._ephemeral_encoding = encoding
        symmetric = self._symmetric
        symmetric.mix_hash(encoding)
        # The empty act-1 payload still goes through EncryptAndHash; with no key
        # yet that is MixHash(b"").
        symmetric.encrypt_and_hash(b"")
        return encoding

    def read_act2(self, act2: bytes, now: int) -> NoiseSession:
        """Process the server's 234 bytes; ``now`` (unix seconds) dates the certificate.

        Raises :class:`ProtocolError` (or its :class:`CertificateError` kind)
        if the server cannot be authenticated; the connection must then close.
        """
        if self._phase is not _InitiatorPhase.AWAITING_ACT2:
            raise RuntimeError(f"act 2 is not expected (phase: {self._phase.value})")
        self._phase = _InitiatorPhase.FINISHED
        if len(act2) != ACT2_SIZE:
            raise ProtocolError(f"handshake act 2 is {ACT2_SIZE} bytes, got {len(act2)}")
        symmetric = self._symmetric
        ours = self._ephemeral_encoding
        secret = self._ephemeral_secret

        remote_ephemeral = bytes(act2[:ELLSWIFT_ENCODING_SIZE])
        symmetric.mix_hash(remote_ephemeral)
        symmetric.mix_key(ellswift_xdh(ours, remote_ephemeral, secret, initiator=True))  # ee
        try:
            remote_static = symmetric.decrypt_and_hash(bytes(act2[ELLSWIFT_ENCODING_SIZE:_STATIC_END]))
        except ProtocolError:
            raise ProtocolError(
                "handshake act 2: the server's static key does not authenticate "
                "(not an SV2 Noise responder, or the bytes were altered)"
            ) from None
        symmetric.mix_key(ellswift_xdh(ours, remote_static, secret, initiator=True))  # es
        try:
            signature_message = symmetric.decrypt_and_hash(bytes(act2[_STATIC_END:]))
        except ProtocolError:
            raise ProtocolError(
                "handshake act 2: the certificate does not authenticate (the bytes were altered)"
            ) from None

        certificate = SignatureNoiseMessage.decode(signature_message)
        server_static_xonly = ellswift_decode_xonly(remote_static)
        if self._authority_key is not None:
            certificate.verify(self._authority_key, server_static_xonly, now, self._leeway)

        send, receive = symmetric.split()
        return NoiseSession(
            send,
            receive,
            handshake_hash=symmetric.handshake_hash,
            remote_static_key=server_static_xonly,
            certificate=certificate,
            max_payload=self._max_payload,
        )


class Responder:
    """The server side: reads act 1 and answers with act 2.

    It holds a static key and the authority's certificate for it.  Build it
    from a pre-made certificate (as sv2-tp does) or with :meth:`from_authority`,
    which signs a fresh one, normally for a fresh static key per connection
    (as SRI's pool does).
    """

    __slots__ = (
        "_certificate",
        "_done",
        "_ellswift_rnd",
        "_ephemeral_secret",
        "_max_payload",
        "_static_secret",
        "_symmetric",
    )

    def __init__(
        self,
        static_secret: bytes,
        certificate: SignatureNoiseMessage,
        *,
        ephemeral_secret: bytes | None = None,
        ellswift_rnd: bytes | None = None,
        max_payload: int = MAX_PAYLOAD_LENGTH,
    ) -> None:
        PrivateKey(static_secret)  # ValueError for an invalid key, before any connection
        self._static_secret = static_secret
        self._certificate = certificate
        self._ephemeral_secret = _secret_or_fresh(ephemeral_secret)
        self._ellswift_rnd = ellswift_rnd
        self._max_payload = max_payload
        self._symmetric = SymmetricState()
        self._done = False

    @classmethod
    def from_authority(
        cls,
        authority_secret: bytes,
        now: int,
        *,
        validity: int = DEFAULT_CERTIFICATE_VALIDITY,
        backdate: int = DEFAULT_CERTIFICATE_BACKDATE,
        static_secret: bytes | None = None,
        ephemeral_secret: bytes | None = None,
        ellswift_rnd: bytes | None = None,
        signature_aux_rand: bytes | None = None,
        max_payload: int = MAX_PAYLOAD_LENGTH,
    ) -> Responder:
        """A responder with a certificate signed now, valid ``[now - backdate, now + validity]``.

        ``static_secret=None`` draws a fresh static key.
        """
        if validity < 0 or backdate < 0:
            raise ValueError("validity and backdate must not be negative")
        static_secret = _secret_or_fresh(static_secret)
        static_xonly = PrivateKey(static_secret).public_key_xonly.format()
        certificate = SignatureNoiseMessage.sign(
            authority_secret,
            static_xonly,
            max(0, now - backdate),
            min(_U32_MAX, now + validity),
            aux_rand=signature_aux_rand,
        )
        return cls(
            static_secret,
            certificate,
            ephemeral_secret=ephemeral_secret,
            ellswift_rnd=ellswift_rnd,
            max_payload=max_payload,
        )

    @property
    def certificate(self) -> SignatureNoiseMessage:
        """The certificate this responder sends."""
        return self._certificate

    @property
    def handshake_hash(self) -> bytes:
        """The current ``h``."""
        return self._symmetric.handshake_hash

    def read_act1(self, act1: bytes) -> tuple[bytes, NoiseSession]:
        """The client's 64 bytes in; the 234 bytes of act 2 to send, and the session."""
        if self._done:
            raise RuntimeError("this responder already handled its act 1")
        self._done = True
        if len(act1) != ACT1_SIZE:
            raise ProtocolError(f"handshake act 1 is {ACT1_SIZE} bytes, got {len(act1)}")
        symmetric = self._symmetric
        remote_ephemeral = bytes(act1)
        symmetric.mix_hash(remote_ephemeral)
        symmetric.decrypt_and_hash(b"")  # the empty act-1 payload, before any key

        ephemeral = _encode_public(self._ephemeral_secret, self._ellswift_rnd)
        symmetric.mix_hash(ephemeral)
        symmetric.mix_key(
            ellswift_xdh(remote_ephemeral, ephemeral, self._ephemeral_secret, initiator=False)
        )  # ee
        static = _encode_public(self._static_secret, self._ellswift_rnd)
        encrypted_static = symmetric.encrypt_and_hash(static)
        symmetric.mix_key(
            ellswift_xdh(remote_ephemeral, static, self._static_secret, initiator=False)
        )  # es
        encrypted_certificate = symmetric.encrypt_and_hash(self._certificate.encode())

        receive, send = symmetric.split()
        session = NoiseSession(
            send,
            receive,
            handshake_hash=symmetric.handshake_hash,
            max_payload=self._max_payload,
        )
        return ephemeral + encrypted_static + encrypted_certificate, session


__all__ = [
    "ACT1_SIZE",
    "ACT2_SIZE",
    "DEFAULT_CERTIFICATE_BACKDATE",
    "DEFAULT_CERTIFICATE_VALIDITY",
    "Initiator",
    "Responder",
]
