"""SIGNATURE_NOISE_MESSAGE: layout, signing and every way verification fails (PROTOCOL.md §5.3)."""

from __future__ import annotations

import hashlib

import pytest
from coincurve import PrivateKey, PublicKeyXOnly
from hypothesis import given, settings
from hypothesis import strategies as st

from sv2proxy.errors import ProtocolError
from sv2proxy.noise.certificate import (
    CertificateError,
    CertificateFailure,
    SignatureNoiseMessage,
)
from sv2proxy.noise.keys import encode_authority_public_key

AUTHORITY_SECRET = bytes([0x44]) * 32
AUTHORITY = PrivateKey(AUTHORITY_SECRET).public_key_xonly.format()
OTHER_AUTHORITY_SECRET = bytes([0x55]) * 32
SERVER = PrivateKey(bytes([0x33]) * 32).public_key_xonly.format()
VALID_FROM = 1_700_000_000
NOT_VALID_AFTER = 1_700_003_600


def _cert(secret: bytes = AUTHORITY_SECRET, **changes: int) -> SignatureNoiseMessage:
    fields = {"valid_from": VALID_FROM, "not_valid_after": NOT_VALID_AFTER, "version": 0}
    fields.update(changes)
    return SignatureNoiseMessage.sign(
        secret,
        SERVER,
        fields["valid_from"],
        fields["not_valid_after"],
        version=fields["version"],
        aux_rand=bytes(32),
    )


def _failure(certificate: SignatureNoiseMessage, now: int, leeway: int = 10) -> CertificateError:
    with pytest.raises(CertificateError) as info:
        certificate.verify(AUTHORITY, SERVER, now, leeway)
    assert isinstance(info.value, ProtocolError)
    return info.value


def test_wire_layout() -> None:
    signature = bytes(range(64))
    encoded = bytes.fromhex(
        "0000"  # version U16 LE = 0
        "00f15365"  # valid_from U32 LE = 1_700_000_000
        "10ff5365"  # not_valid_after U32 LE = 1_700_003_600
    ) + signature  # BIP340 signature
    message = SignatureNoiseMessage(0, VALID_FROM, NOT_VALID_AFTER, signature)
    assert message.encode() == encoded
    assert SignatureNoiseMessage.decode(encoded) == message
    assert len(encoded) == 74


@settings(max_examples=100, deadline=None)
@given(
    version=st.integers(0, 0xFFFF),
    valid_from=st.integers(0, 0xFFFFFFFF),
    not_valid_after=st.integers(0, 0xFFFFFFFF),
    signature=st.binary(min_size=64, max_size=64),
)
def test_round_trip(version: int, valid_from: int, not_valid_after: int, signature: bytes) -> None:
    message = SignatureNoiseMessage(version, valid_from, not_valid_after, signature)
    assert SignatureNoiseMessage.decode(message.encode()) == message


@pytest.mark.parametrize("size", [0, 73, 75])
def test_decode_refuses_wrong_size(size: int) -> None:
    with pytest.raises(ProtocolError, match="74 bytes"):
        SignatureNoiseMessage.decode(bytes(size))


def test_signature_is_bip340_over_the_digest() -> None:
    certificate = _cert()
    digest = hashlib.sha256(certificate.encode()[:10] + SERVER).digest()
    assert certificate.digest(SERVER) == digest
    assert PublicKeyXOnly(AUTHORITY).verify(certificate.signature, digest)


def test_valid_certificate_passes_inside_and_at_the_bounds() -> None:
    certificate = _cert()
    for now in (VALID_FROM, VALID_FROM + 1800, NOT_VALID_AFTER):
        certificate.verify(AUTHORITY, SERVER, now, leeway=0)
    certificate.verify(AUTHORITY, SERVER, VALID_FROM - 10)  # default leeway 10 s
    certificate.verify(AUTHORITY, SERVER, NOT_VALID_AFTER + 10)


def test_expired_without_leeway() -> None:
    error = _failure(_cert(), NOT_VALID_AFTER + 1, leeway=0)
    assert error.reason is CertificateFailure.EXPIRED
    assert str(error).startswith("certificate expired 1 s ago")


def test_expired_beyond_leeway() -> None:
    error = _failure(_cert(), NOT_VALID_AFTER + 11)
    assert error.reason is CertificateFailure.EXPIRED
    assert str(error).startswith("certificate expired 11 s ago")
    assert "leeway 10 s" in str(error)


def test_not_yet_valid_without_leeway() -> None:
    error = _failure(_cert(), VALID_FROM - 5, leeway=0)
    assert error.reason is CertificateFailure.NOT_YET_VALID
    assert str(error).startswith("certificate not yet valid for 5 s")


def test_not_yet_valid_beyond_leeway() -> None:
    error = _failure(_cert(), VALID_FROM - 11)
    assert error.reason is CertificateFailure.NOT_YET_VALID
    assert str(error).startswith("certificate not yet valid for 11 s")


def test_bad_signature() -> None:
    good = _cert()
    forged = SignatureNoiseMessage(
        good.version, good.valid_from, good.not_valid_after, good.signature[:-1] + bytes([good.signature[-1] ^ 1])
    )
    error = _failure(forged, VALID_FROM)
    assert error.reason is CertificateFailure.BAD_SIGNATURE
    assert str(error).startswith("bad signature")


def test_altered_dates_break_the_signature() -> None:
    good = _cert()
    stretched = SignatureNoiseMessage(0, good.valid_from, good.not_valid_after + 86400, good.signature)
    assert _failure(stretched, VALID_FROM).reason is CertificateFailure.BAD_SIGNATURE


def test_certificate_for_another_server_key() -> None:
    with pytest.raises(CertificateError) as info:
        _cert().verify(AUTHORITY, bytes([0x77]) * 32, VALID_FROM)
    assert info.value.reason is CertificateFailure.BAD_SIGNATURE


def test_wrong_authority_names_the_expected_key() -> None:
    """Another authority's signature cannot be told from a forgery; the message names the pin."""
    error = _failure(_cert(OTHER_AUTHORITY_SECRET), VALID_FROM)
    assert error.reason is CertificateFailure.BAD_SIGNATURE
    assert str(error).startswith("bad signature: the certificate is not signed by the expected authority key")
    assert encode_authority_public_key(AUTHORITY) in str(error)


def test_signature_is_checked_before_dates() -> None:
    error = _failure(_cert(OTHER_AUTHORITY_SECRET), NOT_VALID_AFTER + 1000)
    assert error.reason is CertificateFailure.BAD_SIGNATURE


def test_unsupported_version() -> None:
    error = _failure(_cert(version=1), VALID_FROM)
    assert error.reason is CertificateFailure.UNSUPPORTED_VERSION
    assert str(error) == "unsupported certificate version 1 (only 0 is defined)"


def test_error_kind_closes_the_connection() -> None:
    assert _failure(_cert(), NOT_VALID_AFTER + 100).error_code is None


def test_invalid_pinned_key_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        _cert().verify(bytes(32), SERVER, VALID_FROM)  # x = 0 is not on the curve


def test_random_aux_gives_a_valid_signature() -> None:
    certificate = SignatureNoiseMessage.sign(AUTHORITY_SECRET, SERVER, VALID_FROM, NOT_VALID_AFTER)
    certificate.verify(AUTHORITY, SERVER, VALID_FROM)


@pytest.mark.parametrize(
    "fields",
    [(0x10000, 0, 0, bytes(64)), (0, -1, 0, bytes(64)), (0, 0, 2**32, bytes(64)), (0, 0, 0, bytes(63))],
)
def test_out_of_range_fields(fields: tuple[int, int, int, bytes]) -> None:
    with pytest.raises(ValueError):
        SignatureNoiseMessage(*fields)
