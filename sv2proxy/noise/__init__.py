"""SANS-IO Noise NX transport of Stratum V2 (PROTOCOL.md §5; SPEC 04).

Handshake state machines, cipher states, the server certificate, encrypted
framing and authority keys.  Nothing here touches a reactor, a clock or a log:
callers pass bytes and ``now`` in and get bytes, frames and errors out.
"""

from sv2proxy.noise.certificate import (
    CERTIFICATE_VERSION,
    DEFAULT_LEEWAY,
    SIGNATURE_NOISE_MESSAGE_SIZE,
    CertificateError,
    CertificateFailure,
    SignatureNoiseMessage,
    certificate_digest,
)
from sv2proxy.noise.cipher import (
    MAX_NONCE,
    PROTOCOL_NAME,
    CipherState,
    SymmetricState,
    hkdf2,
)
from sv2proxy.noise.ellswift import (
    ELLSWIFT_ENCODING_SIZE,
    ellswift_create,
    ellswift_decode,
    ellswift_decode_xonly,
    ellswift_encode,
    ellswift_xdh,
)
from sv2proxy.noise.handshake import (
    ACT1_SIZE,
    ACT2_SIZE,
    DEFAULT_CERTIFICATE_BACKDATE,
    DEFAULT_CERTIFICATE_VALIDITY,
    Initiator,
    Responder,
)
from sv2proxy.noise.keys import (
    AuthorityKey,
    decode_authority_public_key,
    decode_authority_secret_key,
    encode_authority_public_key,
    encode_authority_secret_key,
)
from sv2proxy.noise.transport import (
    ENCRYPTED_HEADER_SIZE,
    MAX_CHUNK_CIPHERTEXT,
    MAX_CHUNK_PLAINTEXT,
    FrameDecryptor,
    FrameEncryptor,
    NoiseSession,
    encrypted_payload_length,
)

__all__ = [
    "ACT1_SIZE",
    "ACT2_SIZE",
    "CERTIFICATE_VERSION",
    "DEFAULT_CERTIFICATE_BACKDATE",
    "DEFAULT_CERTIFICATE_VALIDITY",
    "DEFAULT_LEEWAY",
    "ELLSWIFT_ENCODING_SIZE",
    "ENCRYPTED_HEADER_SIZE",
    "MAX_CHUNK_CIPHERTEXT",
    "MAX_CHUNK_PLAINTEXT",
    "MAX_NONCE",
    "PROTOCOL_NAME",
    "SIGNATURE_NOISE_MESSAGE_SIZE",
    "AuthorityKey",
    "CertificateError",
    "CertificateFailure",
    "CipherState",
    "FrameDecryptor",
    "FrameEncryptor",
    "Initiator",
    "NoiseSession",
    "Responder",
    "SignatureNoiseMessage",
    "SymmetricState",
    "certificate_digest",
    "decode_authority_public_key",
    "decode_authority_secret_key",
    "ellswift_create",
    "ellswift_decode",
    "ellswift_decode_xonly",
    "ellswift_encode",
    "ellswift_xdh",
    "encode_authority_public_key",
    "encode_authority_secret_key",
    "encrypted_payload_length",
    "hkdf2",
]
