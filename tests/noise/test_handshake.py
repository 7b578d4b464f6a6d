"""Initiator and Responder against each other (PROTOCOL.md §5.2)."""

from __future__ import annotations

import pytest
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from sv2proxy.codec.framing import encode_frame
from sv2proxy.errors import ProtocolError
from sv2proxy.noise import (
    ACT1_SIZE,
    ACT2_SIZE,
    AuthorityKey,
    CertificateError,
    CertificateFailure,
    Initiator,
    NoiseSession,
    Responder,
    SignatureNoiseMessage,
)

AUTHORITY = AuthorityKey(bytes([0x44]) * 32)
NOW = 1_700_000_000
# secp256k1 group order: valid secrets are 1..N-1.
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
secrets = st.integers(min_value=1, max_value=N - 1).map(lambda k: k.to_bytes(32, "big"))


def _handshake(initiator: Initiator, responder: Responder, now: int = NOW) -> tuple[NoiseSession, NoiseSession]:
    act1 = initiator.write_act1()
    assert len(act1) == ACT1_SIZE == 64
    act2, server = responder.read_act1(act1)
    assert len(act2) == ACT2_SIZE == 234
    return initiator.read_act2(act2, now), server


def _assert_link(client: NoiseSession, server: NoiseSession) -> None:
    setup = encode_frame(0, 0x00, b"SetupConnection", False)
    frames = server.feed(client.encrypt_frame(setup))
    assert [(f.msg_type, f.payload) for f in frames] == [(0x00, b"SetupConnection")]
    reply = encode_frame(0, 0x01, b"Success", False)
    frames = client.feed(server.encrypt_frame(reply))
    assert [(f.msg_type, f.payload) for f in frames] == [(0x01, b"Success")]


def test_round_trip_with_pinned_authority() -> None:
    responder = Responder.from_authority(AUTHORITY.secret, NOW)
    client, server = _handshake(Initiator(AUTHORITY.public), responder)
    assert client.handshake_hash == server.handshake_hash
    assert client.certificate == responder.certificate
    assert server.remote_static_key is None and server.certificate is None
    _assert_link(client, server)


def test_round_trip_with_a_prebuilt_certificate() -> None:
    """sv2-tp style: a configured static key and a long-lived certificate."""
    static = bytes([0x33]) * 32
    static_xonly = PrivateKey(static).public_key_xonly.format()
    certificate = SignatureNoiseMessage.sign(AUTHORITY.secret, static_xonly, NOW - 3600, 0xFFFFFFFF)
    client, server = _handshake(Initiator(AUTHORITY.public), Responder(static, certificate))
    assert client.remote_static_key == static_xonly
    _assert_link(client, server)


def test_without_pinned_key_the_certificate_is_not_checked() -> None:
    """SRI's ``Initiator::without_pk`` for local Template Provider links."""
    expired = Responder.from_authority(AUTHORITY.secret, NOW - 10**6, validity=60, backdate=0)
    client, server = _handshake(Initiator(None), expired)
    _assert_link(client, server)


def test_wrong_authority_fails_the_handshake() -> None:
    other = AuthorityKey(bytes([0x55]) * 32)
    with pytest.raises(CertificateError) as info:
        _handshake(Initiator(other.public), Responder.from_authority(AUTHORITY.secret, NOW))
    assert info.value.reason is CertificateFailure.BAD_SIGNATURE


def test_expired_certificate_fails_the_handshake() -> None:
    responder = Responder.from_authority(AUTHORITY.secret, NOW, validity=3600)
    with pytest.raises(CertificateError, match="certificate expired 20 s ago"):
        _handshake(Initiator(AUTHORITY.public), responder, now=NOW + 3620)


def test_leeway_is_configurable() -> None:
    responder = Responder.from_authority(AUTHORITY.secret, NOW, validity=3600)
    _handshake(Initiator(AUTHORITY.public, leeway=30), responder, now=NOW + 3620)


def test_from_authority_backdates_valid_from() -> None:
    """A client whose clock lags ours by minutes still accepts a fresh certificate."""
    responder = Responder.from_authority(AUTHORITY.secret, NOW, validity=600, backdate=120)
    assert (responder.certificate.valid_from, responder.certificate.not_valid_after) == (NOW - 120, NOW + 600)
    _handshake(Initiator(AUTHORITY.public, leeway=0), responder, now=NOW - 100)


def test_from_authority_uses_a_fresh_static_key_each_time() -> None:
    first = Responder.from_authority(AUTHORITY.secret, NOW)
    second = Responder.from_authority(AUTHORITY.secret, NOW)
    a, _ = _handshake(Initiator(AUTHORITY.public), first)
    b, _ = _handshake(Initiator(AUTHORITY.public), second)
    assert a.remote_static_key != b.remote_static_key


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (0, "static key does not authenticate"),  # E_r changes every derived key
        (64, "static key does not authenticate"),
        (143, "static key does not authenticate"),
        (144, "certificate does not authenticate"),
        (233, "certificate does not authenticate"),
    ],
)
def test_tampered_act2_is_refused(offset: int, message: str) -> None:
    initiator = Initiator(AUTHORITY.public)
    act2, _ = Responder.from_authority(AUTHORITY.secret, NOW).read_act1(initiator.write_act1())
    tampered = act2[:offset] + bytes([act2[offset] ^ 0x01]) + act2[offset + 1 :]
    with pytest.raises(ProtocolError, match=message):
        initiator.read_act2(tampered, NOW)


def test_tampered_act1_gives_unrelated_keys() -> None:
    """Act 1 has no MAC; a changed E_i makes act 2 fail on the client instead."""
    initiator = Initiator(AUTHORITY.public)
    act1 = initiator.write_act1()
    act2, _ = Responder.from_authority(AUTHORITY.secret, NOW).read_act1(bytes([act1[0] ^ 1]) + act1[1:])
    with pytest.raises(ProtocolError):
        initiator.read_act2(act2, NOW)


@pytest.mark.parametrize("size", [0, 63, 65])
def test_act1_size(size: int) -> None:
    with pytest.raises(ProtocolError, match="act 1 is 64 bytes"):
        Responder.from_authority(AUTHORITY.secret, NOW).read_act1(bytes(size))


@pytest.mark.parametrize("size", [170, 233, 235])
def test_act2_size(size: int) -> None:
    initiator = Initiator(AUTHORITY.public)
    initiator.write_act1()
    with pytest.raises(ProtocolError, match="act 2 is 234 bytes"):
        initiator.read_act2(bytes(size), NOW)


def test_initiator_steps_run_once_and_in_order() -> None:
    initiator = Initiator()
    with pytest.raises(RuntimeError):
        initiator.read_act2(bytes(ACT2_SIZE), NOW)
    initiator.write_act1()
    with pytest.raises(RuntimeError):
        initiator.write_act1()
    with pytest.raises(ProtocolError):
        initiator.read_act2(bytes(ACT2_SIZE), NOW)
    with pytest.raises(RuntimeError):  # a failed handshake is not retried on the same object
        initiator.read_act2(bytes(ACT2_SIZE), NOW)


def test_responder_runs_once() -> None:
    responder = Responder.from_authority(AUTHORITY.secret, NOW)
    responder.read_act1(Initiator().write_act1())
    with pytest.raises(RuntimeError):
        responder.read_act1(Initiator().write_act1())


def test_invalid_configuration_is_refused_up_front() -> None:
    with pytest.raises(ValueError):
        Initiator(bytes(32))  # not a point
    with pytest.raises(ValueError):
        Initiator(leeway=-1)
    with pytest.raises(ValueError):
        Initiator(ephemeral_secret=bytes(32))
    with pytest.raises(ValueError):
        Responder(bytes(32), Responder.from_authority(AUTHORITY.secret, NOW).certificate)


def test_max_payload_reaches_the_session() -> None:
    responder = Responder.from_authority(AUTHORITY.secret, NOW, max_payload=10)
    client, server = _handshake(Initiator(AUTHORITY.public, max_payload=10), responder)
    assert client.decryptor.max_payload == server.decryptor.max_payload == 10


@settings(max_examples=10, deadline=None)
@given(
    ephemeral_i=secrets,
    ephemeral_r=secrets,
    rnd=st.none() | st.binary(min_size=32, max_size=32),
)
def test_any_keys_interoperate(ephemeral_i: bytes, ephemeral_r: bytes, rnd: bytes | None) -> None:
    client, server = _handshake(
        Initiator(AUTHORITY.public, ephemeral_secret=ephemeral_i, ellswift_rnd=rnd),
        Responder.from_authority(AUTHORITY.secret, NOW, ephemeral_secret=ephemeral_r, ellswift_rnd=rnd),
    )
    _assert_link(client, server)
