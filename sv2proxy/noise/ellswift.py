"""ElligatorSwift keys and BIP324 x-only ECDH (PROTOCOL.md §5.1, §9; BIP324).

The SV2 handshake sends every public key as a 64-byte ElligatorSwift encoding
and derives shared secrets with BIP324's ``ellswift_xdh``.  coincurve bundles a
libsecp256k1 built with the ellswift module but has no public API for it, so
this module calls its cffi layer directly.  That layer is private: coincurve
is pinned in setup.cfg and ``tests/noise/test_ellswift.py`` checks the BIP324
vectors so that an upgrade which changes it fails loudly.

Every input length is checked here because the C functions read fixed-size
buffers and would read past a short Python bytes object.
"""

from __future__ import annotations

# A compiled cffi module without type stubs: ffi and lib are untyped.
from coincurve._libsecp256k1 import ffi, lib  # type: ignore[import-not-found]
from coincurve.context import GLOBAL_CONTEXT

ELLSWIFT_ENCODING_SIZE = 64
SECRET_KEY_SIZE = 32
RND32_SIZE = 32
_COMPRESSED_KEY_SIZE = 33
_SERIALIZE_COMPRESSED = 0x102  # SECP256K1_EC_COMPRESSED
_PARTY_INITIATOR = 0  # BIP324 party A
_PARTY_RESPONDER = 1  # BIP324 party B


def _check_size(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, got {len(value)}")


def ellswift_create(secret: bytes, aux_rnd32: bytes | None = None) -> bytes:
    """The 64-byte encoding of ``secret``'s public key, straight from the secret.

    ``aux_rnd32`` only chooses among the many encodings of the same key; ``None``
    is deterministic (but differs from 32 zero bytes, which libsecp256k1 hashes in).
    """
    _check_size("secret key", secret, SECRET_KEY_SIZE)
    if aux_rnd32 is not None:
        _check_size("aux_rnd32", aux_rnd32, RND32_SIZE)
    out = ffi.new("unsigned char[64]")
    aux = ffi.NULL if aux_rnd32 is None else aux_rnd32
    if not lib.secp256k1_ellswift_create(GLOBAL_CONTEXT.ctx, out, secret, aux):
        raise ValueError("invalid secret key")
    return bytes(ffi.buffer(out, ELLSWIFT_ENCODING_SIZE))


def ellswift_encode(public_key: bytes, rnd32: bytes) -> bytes:
    """The 64-byte encoding of a SEC1 public key (33 or 65 bytes).

    SRI encodes with ``rnd32`` = 32 zero bytes (deterministic); random bytes make
    the handshake indistinguishable from noise.  Both are valid on the wire.
    """
    _check_size("rnd32", rnd32, RND32_SIZE)
    ctx = GLOBAL_CONTEXT.ctx
    point = ffi.new("secp256k1_pubkey *")
    if not lib.secp256k1_ec_pubkey_parse(ctx, point, public_key, len(public_key)):
        raise ValueError("invalid public key")
    out = ffi.new("unsigned char[64]")
    # Cannot fail for a parsed key; the check guards against an ABI change.
    if not lib.secp256k1_ellswift_encode(ctx, out, point, rnd32):
        raise ValueError("secp256k1_ellswift_encode failed")
    return bytes(ffi.buffer(out, ELLSWIFT_ENCODING_SIZE))


def ellswift_decode(encoding: bytes) -> bytes:
    """The 33-byte compressed public key an encoding stands for.

    Every 64-byte string decodes to some point, so a peer cannot make this fail.
    """
    _check_size("ElligatorSwift encoding", encoding, ELLSWIFT_ENCODING_SIZE)
    ctx = GLOBAL_CONTEXT.ctx
    point = ffi.new("secp256k1_pubkey *")
    if not lib.secp256k1_ellswift_decode(ctx, point, encoding):
        raise ValueError("secp256k1_ellswift_decode failed")
    out = ffi.new("unsigned char[33]")
    size = ffi.new("size_t *", _COMPRESSED_KEY_SIZE)
    lib.secp256k1_ec_pubkey_serialize(ctx, out, size, point, _SERIALIZE_COMPRESSED)
    return bytes(ffi.buffer(out, _COMPRESSED_KEY_SIZE))


def ellswift_decode_xonly(encoding: bytes) -> bytes:
    """The 32-byte x-only key of an encoding: what a certificate signs (§5.3)."""
    return ellswift_decode(encoding)[1:]


def ellswift_xdh(
    initiator_encoding: bytes,
    responder_encoding: bytes,
    secret: bytes,
    *,
    initiator: bool,
) -> bytes:
    """BIP324 shared secret ``SHA256(T‖T‖ell_initiator‖ell_responder‖x)``.

    The encodings go in by role, not by ours/theirs, so both sides hash the
    same 64+64 bytes; ``initiator`` says whose ``secret`` this is.  The
    encodings must be the exact bytes sent on the wire, not re-encodings.
    """
    _check_size("initiator encoding", initiator_encoding, ELLSWIFT_ENCODING_SIZE)
    _check_size("responder encoding", responder_encoding, ELLSWIFT_ENCODING_SIZE)
    _check_size("secret key", secret, SECRET_KEY_SIZE)
    out = ffi.new("unsigned char[32]")
    ok = lib.secp256k1_ellswift_xdh(
        GLOBAL_CONTEXT.ctx,
        out,
        initiator_encoding,
        responder_encoding,
        secret,
        _PARTY_INITIATOR if initiator else _PARTY_RESPONDER,
        lib.secp256k1_ellswift_xdh_hash_function_bip324,
        ffi.NULL,
    )
    if not ok:
        raise ValueError("invalid secret key")
    return bytes(ffi.buffer(out, 32))


__all__ = [
    "ELLSWIFT_ENCODING_SIZE",
    "ellswift_create",
    "ellswift_decode",
    "ellswift_decode_xonly",
    "ellswift_encode",
    "ellswift_xdh",
]
