"""Encrypted SV2 frames (PROTOCOL.md §5.5)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from sv2proxy.codec.framing import Frame, encode_frame
from sv2proxy.errors import ProtocolError
from sv2proxy.noise.cipher import CipherState
from sv2proxy.noise.transport import (
    ENCRYPTED_HEADER_SIZE,
    MAX_CHUNK_PLAINTEXT,
    FrameDecryptor,
    FrameEncryptor,
    encrypted_payload_length,
)

KEY = bytes(range(32))


def _pair(max_payload: int = 0xFFFFFF) -> tuple[FrameEncryptor, FrameDecryptor]:
    return FrameEncryptor(CipherState(KEY)), FrameDecryptor(CipherState(KEY), max_payload)


def _payload(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


def test_empty_payload_is_exactly_the_encrypted_header() -> None:
    encryptor, decryptor = _pair()
    wire = encryptor.encrypt_frame(encode_frame(0, 0x1B, b"", False))
    assert len(wire) == ENCRYPTED_HEADER_SIZE == 22
    assert encryptor.nonce == 1
    assert decryptor.feed(wire) == [Frame(0, 0x1B, False, b"")]
    assert decryptor.nonce == 1


def test_layout_header_then_chunks_each_with_its_own_nonce() -> None:
    encryptor, _ = _pair()
    payload = _payload(MAX_CHUNK_PLAINTEXT + 10)
    frame = encode_frame(0, 0x15, payload, True)
    wire = encryptor.encrypt_frame(frame)
    aead = ChaCha20Poly1305(KEY)

    def nonce(n: int) -> bytes:
        return bytes(4) + n.to_bytes(8, "little")

    assert wire == (
        aead.encrypt(nonce(0), frame[:6], b"")  # 6-byte header + tag
        + aead.encrypt(nonce(1), payload[:MAX_CHUNK_PLAINTEXT], b"")  # 65,519 + tag
        + aead.encrypt(nonce(2), payload[MAX_CHUNK_PLAINTEXT:], b"")  # 10 + tag
    )


@pytest.mark.parametrize(
    ("size", "wire_size"),
    [
        (1, 22 + 1 + 16),
        (65_519, 22 + 65_535),  # exactly one full chunk
        (65_520, 22 + 65_535 + 1 + 16),  # one byte spills into a second chunk
        (200_000, 22 + 200_000 + 4 * 16),
    ],
)
def test_sizes_and_round_trip(size: int, wire_size: int) -> None:
    encryptor, decryptor = _pair()
    payload = _payload(size)
    wire = encryptor.encrypt_frame(encode_frame(0, 0x71, payload, False))
    assert len(wire) == wire_size == ENCRYPTED_HEADER_SIZE + encrypted_payload_length(size)
    assert decryptor.feed(wire) == [Frame(0, 0x71, False, payload)]
    assert decryptor.buffered == 0
    assert decryptor.nonce == encryptor.nonce


def test_multi_chunk_frame_fed_one_byte_at_a_time() -> None:
    encryptor, decryptor = _pair()
    payload = _payload(140_000)
    wire = encryptor.encrypt_frame(encode_frame(0, 0x73, payload, False))
    wire += encryptor.encrypt_frame(encode_frame(0, 0x00, b"", False))
    frames: list[Frame] = []
    for i in range(len(wire)):
        frames += decryptor.feed(wire[i : i + 1])
    assert frames == [Frame(0, 0x73, False, payload), Frame(0, 0x00, False, b"")]
    assert decryptor.buffered == 0


def test_several_frames_in_one_feed_and_channel_bit() -> None:
    encryptor, decryptor = _pair()
    wire = b"".join(
        encryptor.encrypt_frame(encode_frame(ext, t, p, ch))
        for ext, t, p, ch in [(0, 0x1A, b"\x01\x00\x00\x00", True), (0x4001, 0x02, b"x", False)]
    )
    assert decryptor.feed(wire) == [
        Frame(0, 0x1A, True, b"\x01\x00\x00\x00"),
        Frame(0x4001, 0x02, False, b"x"),
    ]


@settings(max_examples=50, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=5),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
)
def test_any_split_of_the_stream(payloads: list[bytes], cuts: list[int]) -> None:
    encryptor, decryptor = _pair()
    wire = b"".join(encryptor.encrypt_frame(encode_frame(0, 0x20, p, False)) for p in payloads)
    frames: list[Frame] = []
    start = 0
    for cut in sorted({min(c, len(wire)) for c in cuts}) + [len(wire)]:
        frames += decryptor.feed(wire[start:cut])
        start = cut
    assert [f.payload for f in frames] == payloads


def test_tampered_header_raises_and_does_not_advance_the_nonce() -> None:
    encryptor, decryptor = _pair()
    wire = bytearray(encryptor.encrypt_frame(encode_frame(0, 0x00, b"hello", False)))
    wire[3] ^= 0x80
    with pytest.raises(ProtocolError, match="failed authentication"):
        decryptor.feed(bytes(wire))
    assert decryptor.nonce == 0


def test_tampered_payload_raises() -> None:
    encryptor, decryptor = _pair()
    wire = bytearray(encryptor.encrypt_frame(encode_frame(0, 0x00, b"hello", False)))
    wire[-1] ^= 0x01
    with pytest.raises(ProtocolError, match="failed authentication"):
        decryptor.feed(bytes(wire))
    assert decryptor.nonce == 1  # the header decrypted; the chunk did not


def test_a_failed_stream_stays_failed() -> None:
    _, decryptor = _pair()
    with pytest.raises(ProtocolError):
        decryptor.feed(bytes(22))
    with pytest.raises(ProtocolError, match="already failed"):
        decryptor.feed(b"")


def test_oversized_frame_refused_right_after_its_header() -> None:
    encryptor, decryptor = _pair(max_payload=1000)
    wire = encryptor.encrypt_frame(encode_frame(0, 0x71, _payload(1001), False))
    with pytest.raises(ProtocolError, match="frame of 1001 bytes exceeds the limit of 1000"):
        decryptor.feed(wire[:ENCRYPTED_HEADER_SIZE])  # no payload byte needed to refuse it


def test_frame_at_the_limit_passes() -> None:
    encryptor, decryptor = _pair(max_payload=1000)
    wire = encryptor.encrypt_frame(encode_frame(0, 0x71, _payload(1000), False))
    assert len(decryptor.feed(wire)[0].payload) == 1000


def test_wrong_key_fails() -> None:
    encryptor = FrameEncryptor(CipherState(bytes(32)))
    _, decryptor = _pair()
    with pytest.raises(ProtocolError):
        decryptor.feed(encryptor.encrypt_frame(encode_frame(0, 0, b"", False)))


@pytest.mark.parametrize(
    "frame",
    [b"\x00" * 5, encode_frame(0, 0, b"abc", False)[:-1], encode_frame(0, 0, b"abc", False) + b"x"],
)
def test_encrypt_refuses_a_malformed_frame(frame: bytes) -> None:
    encryptor, _ = _pair()
    with pytest.raises(ValueError):
        encryptor.encrypt_frame(frame)
    assert encryptor.nonce == 0


def test_encrypted_payload_length() -> None:
    assert encrypted_payload_length(0) == 0
    assert encrypted_payload_length(1) == 17
    assert encrypted_payload_length(65_519) == 65_535
    assert encrypted_payload_length(65_520) == 65_552
    assert encrypted_payload_length(0xFFFFFF) == 0xFFFFFF + 16 * 257


# -- the share-sized fast paths (24-byte payloads) -----------------------------------------


def _share_pair():
    from sv2proxy.codec import SubmitSharesStandard
    from sv2proxy.noise.cipher import CipherState
    from sv2proxy.noise.transport import NoiseSession

    key_a, key_b = bytes(range(32)), bytes(range(1, 33))
    sender = NoiseSession(CipherState(key_a), CipherState(key_b), handshake_hash=b"")
    receiver = NoiseSession(CipherState(key_b), CipherState(key_a), handshake_hash=b"")
    return sender, receiver, SubmitSharesStandard(1, 2, 3, 4, 5, 6).to_frame()


def test_share_sized_frames_round_trip_and_advance_two_nonces():
    sender, receiver, frame = _share_pair()
    for _ in range(3):
        (got,) = receiver.feed(sender.encrypt_frame(frame))
        assert got.payload == frame[6:] and got.channel_msg
    assert sender.encryptor.nonce == receiver.decryptor.nonce == 6


def test_a_forged_share_payload_fails_after_the_header_nonce():
    import pytest

    from sv2proxy.errors import ProtocolError

    sender, receiver, frame = _share_pair()
    wire = bytearray(sender.encrypt_frame(frame))
    wire[-1] ^= 1
    with pytest.raises(ProtocolError, match="failed authentication"):
        receiver.feed(bytes(wire))
    assert receiver.decryptor.nonce == 1  # the header authenticated, the payload did not
    with pytest.raises(ProtocolError, match="already failed"):
        receiver.feed(sender.encrypt_frame(frame))


def test_a_forged_share_header_does_not_advance_the_nonce():
    import pytest

    from sv2proxy.errors import ProtocolError

    sender, receiver, frame = _share_pair()
    wire = bytearray(sender.encrypt_frame(frame))
    wire[0] ^= 1
    with pytest.raises(ProtocolError, match="failed authentication"):
        receiver.feed(bytes(wire))
    assert receiver.decryptor.nonce == 0


def test_the_last_nonces_are_refused_on_the_fast_paths():
    import pytest

    from sv2proxy.errors import ProtocolError
    from sv2proxy.noise.cipher import MAX_NONCE

    sender, receiver, frame = _share_pair()
    sender.encryptor._cipher._nonce = MAX_NONCE - 1
    with pytest.raises(ProtocolError, match="exhausted"):
        sender.encrypt_frame(frame)
