"""Malformed input never gets past the codec as anything but ProtocolError.

Decoding: truncated payloads, trailing bytes (TLVs for SubmitSharesExtended),
lengths that point past the buffer, bad UTF-8, OPTION counts above 1, worker
names over 32 bytes, unknown message types, and fuzzed bytes.  Encoding:
values outside their wire type raise ProtocolError naming ``Message.field``.
Framing: random valid frames cut into random chunks come out whole and in
order; oversized frames and garbage raise ProtocolError.

Parametrized property tests define their ``@given`` check inside the test
body; see test_roundtrip.py for why (pytest-twisted and shared function
objects).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.codec.framing import FRAME_HEADER_SIZE, Frame, FrameDecoder, encode_header
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import (
    CloseChannel,
    NewExtendedMiningJob,
    NewMiningJob,
    SetTarget,
    SubmitSharesExtended,
    SubmitSharesStandard,
)
from sv2proxy.codec.registry import MESSAGE_TYPES, MessageDecoder, decode_message
from sv2proxy.codec.tlv import MAX_WORKER_NAME_BYTES, Tlv, TlvList, worker_name_tlv
from sv2proxy.codec.types import (
    Bool,
    FixedBytes,
    Float32,
    Option,
    Seq,
    Str,
    UInt,
    VarBytes,
    WireType,
)
from sv2proxy.errors import ProtocolError

from .strategies import (
    ALL_MESSAGES,
    any_message,
    message_strategy,
    minimal_message,
    minimal_value,
    replace_field,
    tlv_strategy,
)


def _id(cls: type[Message]) -> str:
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


_IDS = [_id(cls) for cls in ALL_MESSAGES]
_STRICT = [cls for cls in ALL_MESSAGES if cls is not SubmitSharesExtended]

# SubmitSharesExtended's fixed part: six U32 fields, then an empty B0_32 extranonce.
_SSE_HEAD = bytes(24) + b"\x00"


def _tlv_bytes(tlv: Tlv) -> bytes:
    return (
        tlv.extension_type.to_bytes(2, "little")
        + bytes([tlv.field_type])
        + len(tlv.value).to_bytes(2, "little")
        + tlv.value
    )


# -- truncation and trailing bytes -----------------------------------------------------


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=_IDS)
def test_every_cut_of_the_minimal_message_is_rejected(cls: type[Message]) -> None:
    payload = minimal_message(cls).encode()
    for cut in range(len(payload)):
        with pytest.raises(ProtocolError):
            cls.decode(payload[:cut])


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=_IDS)
def test_truncated_payload(cls: type[Message]) -> None:
    strategy = message_strategy(cls)
    if cls is SubmitSharesExtended:
        # A TLV list may end at any TLV boundary; cuts inside TLVs are tested below.
        strategy = strategy.map(lambda m: replace_field(m, "tlvs", ()))

    @given(strategy, st.data())
    def check(msg: Message, data: st.DataObject) -> None:
        payload = msg.encode()
        last = len(payload) - 1
        cuts = {0, last, *data.draw(st.lists(st.integers(0, last), max_size=8))}
        for cut in cuts:
            with pytest.raises(ProtocolError):
                cls.decode(payload[:cut])

    check()


@pytest.mark.parametrize("cls", _STRICT, ids=[_id(c) for c in _STRICT])
def test_trailing_bytes(cls: type[Message]) -> None:
    @given(message_strategy(cls), st.binary(min_size=1, max_size=16))
    def check(msg: Message, extra: bytes) -> None:
        with pytest.raises(ProtocolError, match=rf"^{cls.__name__}\b"):
            cls.decode(msg.encode() + extra)

    check()


@given(
    message_strategy(SubmitSharesExtended),
    st.lists(tlv_strategy(), min_size=1, max_size=3).map(tuple),
)
def test_submit_shares_extended_trailing_bytes_are_tlvs(
    msg: SubmitSharesExtended, extra: tuple[Tlv, ...]
) -> None:
    payload = msg.encode() + b"".join(_tlv_bytes(t) for t in extra)
    decoded = SubmitSharesExtended.decode(payload)
    assert decoded == replace_field(msg, "tlvs", msg.tlvs + extra)


@given(
    message_strategy(SubmitSharesExtended).map(lambda m: replace_field(m, "tlvs", ())),
    st.lists(tlv_strategy(), min_size=1, max_size=3).map(tuple),
)
def test_submit_shares_extended_cut_inside_a_tlv(
    msg: SubmitSharesExtended, tlvs: tuple[Tlv, ...]
) -> None:
    head = msg.encode()
    encoded = [_tlv_bytes(t) for t in tlvs]
    boundaries = {len(head)}
    for part in encoded:
        boundaries.add(max(boundaries) + len(part))
    payload = head + b"".join(encoded)
    for cut in range(len(head), len(payload)):
        if cut in boundaries:
            # A cut between TLVs is a shorter valid list.
            count = sorted(boundaries).index(cut)
            assert SubmitSharesExtended.decode(payload[:cut]).tlvs == tlvs[:count]
        else:
            with pytest.raises(ProtocolError, match="TLV"):
                SubmitSharesExtended.decode(payload[:cut])


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"\x02", id="1-byte-header"),
        pytest.param(b"\x02\x00\x01\x06", id="4-byte-header"),
        pytest.param(b"\x02\x00\x01\x06\x00rig", id="value-shorter-than-length"),
        pytest.param(b"\x07\x00\x09\xff\xff" + bytes(10), id="length-65535-with-10-bytes"),
        pytest.param(b"\x02\x00\x01\x02\x00ab" + b"\x02\x00", id="good-tlv-then-stub"),
    ],
)
def test_submit_shares_extended_malformed_tlv(tail: bytes) -> None:
    with pytest.raises(ProtocolError, match="SubmitSharesExtended.tlvs"):
        SubmitSharesExtended.decode(_SSE_HEAD + tail)


# -- lengths, UTF-8, OPTION, worker names -------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "payload", "field"),
    [
        pytest.param(
            SubmitSharesExtended,
            bytes(24) + b"\x08" + b"\xaa" * 4,  # extranonce declares 8, 4 present
            "extranonce",
            id="B0_32-short",
        ),
        pytest.param(
            SubmitSharesExtended,
            bytes(24) + b"\x21" + b"\xaa" * 33,  # extranonce declares 33: over B0_32's bound
            "extranonce",
            id="B0_32-over-bound",
        ),
        pytest.param(
            CloseChannel,
            bytes(4) + b"\x0a" + b"abc",  # reason_code declares 10, 3 present
            "reason_code",
            id="STR0_255-short",
        ),
        pytest.param(
            NewExtendedMiningJob,
            bytes(4) + bytes(4) + b"\x00" + bytes(4) + b"\x01"  # ..., version_rolling_allowed
            + b"\x02" + bytes(32)  # merkle_path declares 2 nodes, 1 present
            + b"\x00\x00\x00\x00",
            "merkle_path",
            id="SEQ0_255-short",
        ),
        pytest.param(
            NewExtendedMiningJob,
            bytes(4) + bytes(4) + b"\x00" + bytes(4) + b"\x01" + b"\x00"
            + b"\xff\xff" + bytes(60)  # coinbase_tx_prefix declares 65535, 60 present
            + b"\x00\x00",
            "coinbase_tx_prefix",
            id="B0_64K-short",
        ),
        pytest.param(
            MESSAGE_TYPES[(0, 0x25)],  # SetGroupChannel
            bytes(4) + b"\x03\x00" + bytes(8),  # channel_ids declares 3, 2 present
            "channel_ids",
            id="SEQ0_64K-short",
        ),
        pytest.param(
            MESSAGE_TYPES[(0, 0x56)],  # ProvideMissingTransactionsSuccess
            bytes(4) + b"\x01\x00" + b"\x00\x00\x01" + bytes(100),  # tx declares 65536, 100 present
            "transaction_list",
            id="B0_16M-short",
        ),
        pytest.param(
            MESSAGE_TYPES[(0, 0x56)],
            bytes(4) + b"\xff\xff",  # transaction_list declares 65535 items, none present
            "transaction_list",
            id="SEQ0_64K-count-no-items",
        ),
    ],
)
def test_declared_length_beyond_buffer(cls: type[Message], payload: bytes, field: str) -> None:
    with pytest.raises(ProtocolError, match=rf"{cls.__name__}\.{field}"):
        cls.decode(payload)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\xff\xfe", id="invalid-bytes"),
        pytest.param(b"\xc0\x80", id="overlong-nul"),
        pytest.param(b"\xed\xa0\x80", id="utf8-encoded-surrogate"),
        pytest.param(b"ab\xe2\x82", id="truncated-sequence"),
    ],
)
def test_str0_255_invalid_utf8(raw: bytes) -> None:
    payload = bytes(4) + bytes([len(raw)]) + raw
    with pytest.raises(ProtocolError, match=r"CloseChannel\.reason_code.*UTF-8"):
        CloseChannel.decode(payload)


@pytest.mark.parametrize("count", [2, 3, 0xFF])
def test_option_count_above_one(count: int) -> None:
    payload = (
        bytes(4)  # channel_id
        + bytes(4)  # job_id
        + bytes([count]) + bytes(4)  # min_ntime OPTION with a bad count
        + bytes(4)  # version
        + bytes(32)  # merkle_root
    )
    with pytest.raises(ProtocolError, match=r"NewMiningJob\.min_ntime"):
        NewMiningJob.decode(payload)


def test_worker_name_tlv_bounds() -> None:
    assert worker_name_tlv("w" * MAX_WORKER_NAME_BYTES).value == b"w" * 32
    assert worker_name_tlv("é" * 16).value == "é".encode() * 16  # 32 bytes, 16 characters
    for name in ("w" * 33, "é" * 16 + "w"):
        with pytest.raises(ProtocolError, match="worker name"):
            worker_name_tlv(name)
    with pytest.raises(ProtocolError, match="worker name"):
        worker_name_tlv("\ud800")  # a lone surrogate has no UTF-8 form


def test_worker_name_tlv_of_33_bytes_is_rejected_both_ways() -> None:
    too_long = Tlv(0x0002, 0x01, b"w" * 33)
    with pytest.raises(ProtocolError, match=r"SubmitSharesExtended\.tlvs.*32 bytes"):
        SubmitSharesExtended.decode(_SSE_HEAD + _tlv_bytes(too_long))
    share = replace_field(minimal_message(SubmitSharesExtended), "tlvs", (too_long,))
    with pytest.raises(ProtocolError, match=r"SubmitSharesExtended\.tlvs.*32 bytes"):
        share.encode()


def test_worker_name_tlv_must_be_utf8() -> None:
    bad = Tlv(0x0002, 0x01, b"\xff")
    with pytest.raises(ProtocolError, match="UTF-8"):
        SubmitSharesExtended.decode(_SSE_HEAD + _tlv_bytes(bad))


def test_other_tlvs_are_opaque() -> None:
    # Only (0x0002, 0x01) is checked: other TLVs may hold any bytes of any length.
    other = (Tlv(0x0002, 0x02, b"\xff" * 40), Tlv(0x0003, 0x01, b"\xff" * 33))
    share = replace_field(minimal_message(SubmitSharesExtended), "tlvs", other)
    assert SubmitSharesExtended.decode(share.encode()) == share


# -- unknown messages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "msg_type"),
    [
        pytest.param(0x0000, 0x1E, id="reserved-0x1e"),
        pytest.param(0x0000, 0x05, id="core-0x05"),
        pytest.param(0x0000, 0x53, id="removed-IdentifyTransactions"),
        pytest.param(0x0000, 0xFF, id="core-0xff"),
        pytest.param(0x8000, 0x77, id="core-0x77-with-channel-bit"),
        pytest.param(0x0001, 0x03, id="ext1-0x03"),
        pytest.param(0x0002, 0x00, id="ext2-has-no-messages"),
        pytest.param(0x4000, 0x00, id="experimental"),
        pytest.param(0x7FFF, 0x1A, id="ext-0x7fff"),
    ],
)
def test_unknown_message_type(ext: int, msg_type: int) -> None:
    with pytest.raises(ProtocolError, match="unknown message type"):
        decode_message(ext, msg_type, bytes(24))
    frame = ext.to_bytes(2, "little") + bytes([msg_type]) + (24).to_bytes(3, "little") + bytes(24)
    with pytest.raises(ProtocolError, match="unknown message type"):
        MessageDecoder().feed(frame)


# -- encoding out-of-range values -------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        pytest.param(SubmitSharesStandard(1, 2, 3, 2**32, 5, 6), "nonce", id="U32-2**32"),
        pytest.param(
            replace_field(minimal_message(SubmitSharesExtended), "extranonce", bytes(33)),
            "extranonce",
            id="B0_32-33-bytes",
        ),
        pytest.param(SetTarget(1, bytes(31)), "maximum_target", id="U256-31-bytes"),
        pytest.param(
            replace_field(minimal_message(NewExtendedMiningJob), "merkle_path", (bytes(32),) * 256),
            "merkle_path",
            id="SEQ0_255-256-items",
        ),
        pytest.param(CloseChannel(1, "x" * 256), "reason_code", id="STR0_255-256-bytes"),
        pytest.param(CloseChannel(1, "é" * 128), "reason_code", id="STR0_255-256-bytes-128-chars"),
    ],
)
def test_encoding_out_of_range_names_the_field(msg: Message, field: str) -> None:
    pattern = rf"^{type(msg).__name__}\.{field}: "
    with pytest.raises(ProtocolError, match=pattern):
        msg.encode()
    with pytest.raises(ProtocolError, match=pattern):
        msg.to_frame()


def _bad_values(wire: WireType) -> list[object]:
    """Values of the right Python kind that ``wire`` cannot encode."""
    if isinstance(wire, UInt):
        return [wire.max + 1, -1]
    if isinstance(wire, Bool):
        return [1]  # an int, not a bool
    if isinstance(wire, Float32):
        return [1e39, -1e39, 10**400]
    if isinstance(wire, FixedBytes):
        assert wire.size is not None
        return [bytes(wire.size - 1), bytes(wire.size + 1)]
    if isinstance(wire, VarBytes):
        return [bytes(wire.max_len + 1)]
    if isinstance(wire, Str):
        return ["x" * 256, "\u20ac" * 86, "\ud800"]  # 256 bytes, 258 bytes, lone surrogate
    if isinstance(wire, Seq):
        too_many = (minimal_value(wire.item),) * (wire.max_len + 1)
        return [too_many, *((bad,) for bad in _bad_values(wire.item))]
    if isinstance(wire, Option):
        return _bad_values(wire.item)
    if isinstance(wire, TlvList):
        return [(Tlv(0x0002, 0x01, b"w" * 33),), (Tlv(0x0002, 0x01, b"\xff"),)]
    raise TypeError(f"no bad values for {wire!r}")


_FIELD_CASES = [
    pytest.param(cls, name, id=f"{_id(cls)}.{name}")
    for cls in ALL_MESSAGES
    for name, _ in cls.FIELDS
]


@pytest.mark.parametrize(("cls", "field"), _FIELD_CASES)
def test_every_field_rejects_out_of_range_values(cls: type[Message], field: str) -> None:
    wire = dict(cls.FIELDS)[field]
    base = minimal_message(cls)
    pattern = rf"^{cls.__name__}\.{re.escape(field)}: "
    for bad in _bad_values(wire):
        with pytest.raises(ProtocolError, match=pattern):
            replace_field(base, field, bad).encode()


# -- fuzzing decoders ------------------------------------------------------------------------


def _mutated(cls: type[Message]) -> st.SearchStrategy[bytes]:
    """A valid payload of ``cls`` with a few bytes changed, inserted or deleted."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        payload = bytearray(draw(message_strategy(cls)).encode())
        for _ in range(draw(st.integers(1, 4))):
            position = draw(st.integers(0, len(payload)))
            action = draw(st.sampled_from(("set", "insert", "delete")))
            if action == "insert" or not payload:
                payload[position:position] = draw(st.binary(min_size=1, max_size=4))
            elif action == "delete":
                del payload[min(position, len(payload) - 1)]
            else:
                payload[min(position, len(payload) - 1)] = draw(st.integers(0, 255))
        return bytes(payload)

    return build()


def _decode_or_protocol_error(cls: type[Message], payload: bytes) -> None:
    try:
        msg = cls.decode(payload)
    except ProtocolError:
        return
    # Whatever decodes is a well-formed message: it encodes, and stably.
    again = msg.encode()
    assert cls.decode(again).encode() == again


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=_IDS)
def test_arbitrary_bytes_raise_only_protocol_error(cls: type[Message]) -> None:
    @given(st.one_of(st.binary(max_size=200), _mutated(cls)))
    def check(payload: bytes) -> None:
        _decode_or_protocol_error(cls, payload)

    check()


_KNOWN_EXTENSIONS = sorted({ext for ext, _ in MESSAGE_TYPES})
_KNOWN_TYPES = sorted({msg_type for _, msg_type in MESSAGE_TYPES})


@given(
    ext=st.one_of(
        st.sampled_from(_KNOWN_EXTENSIONS).flatmap(lambda e: st.sampled_from((e, e | 0x8000))),
        st.integers(0, 0xFFFF),
    ),
    msg_type=st.one_of(st.sampled_from(_KNOWN_TYPES), st.integers(0, 0xFF)),
    payload=st.binary(max_size=200),
)
def test_decode_message_random_type_raises_only_protocol_error(
    ext: int, msg_type: int, payload: bytes
) -> None:
    try:
        msg = decode_message(ext, msg_type, payload)
    except ProtocolError:
        return
    assert MESSAGE_TYPES[(ext & 0x7FFF, msg_type)] is type(msg)


# -- framing ------------------------------------------------------------------------------------


def _expected_frame(msg: Message) -> Frame:
    return Frame(msg.EXTENSION_TYPE, msg.MSG_TYPE, msg.CHANNEL_MSG, msg.encode())


def _chunks(stream: bytes, sizes: list[int]) -> list[bytes]:
    """``stream`` cut at the given sizes (cycled), the last piece whatever is left."""
    pieces, position, i = [], 0, 0
    while position < len(stream):
        size = sizes[i % len(sizes)]
        pieces.append(stream[position : position + size])
        position += size
        i += 1
    return pieces


@given(
    messages=st.lists(any_message(), min_size=1, max_size=20),
    sizes=st.lists(st.integers(1, 300), min_size=1, max_size=10),
)
def test_frame_decoder_random_chunks(messages: list[Message], sizes: list[int]) -> None:
    stream = b"".join(m.to_frame() for m in messages)
    decoder = FrameDecoder()
    frames: list[Frame] = []
    for piece in _chunks(stream, sizes):
        frames.extend(decoder.feed(piece))
    assert frames == [_expected_frame(m) for m in messages]
    assert decoder.buffered == 0


@given(messages=st.lists(any_message(), min_size=1, max_size=8))
def test_frame_decoder_one_byte_at_a_time(messages: list[Message]) -> None:
    stream = b"".join(m.to_frame() for m in messages)
    frames = FrameDecoder()
    decoded = MessageDecoder()
    got_frames: list[Frame] = []
    got_messages: list[Message] = []
    for i in range(len(stream)):
        got_frames.extend(frames.feed(stream[i : i + 1]))
        got_messages.extend(decoded.feed(stream[i : i + 1]))
    assert got_frames == [_expected_frame(m) for m in messages]
    assert got_messages == messages


@given(messages=st.lists(any_message(), min_size=1, max_size=20))
def test_frame_decoder_whole_stream_at_once(messages: list[Message]) -> None:
    stream = b"".join(m.to_frame() for m in messages)
    assert MessageDecoder().feed(stream) == messages


def test_oversize_frame_rejected_from_its_header() -> None:
    decoder = FrameDecoder(max_payload=64)
    assert decoder.feed(encode_header(0, 0x1A, 64, True)) == []  # at the limit: waits for payload
    with pytest.raises(ProtocolError, match="exceeds the limit of 64"):
        FrameDecoder(max_payload=64).feed(encode_header(0, 0x1A, 65, True))
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        MessageDecoder(max_payload=1024).feed(encode_header(0, 0x1B, 1025, True) + bytes(10))


def test_largest_u24_length_is_buffered_not_rejected_by_default() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x00\x00\x71\xff\xff\xff" + bytes(100)) == []
    assert decoder.buffered == FRAME_HEADER_SIZE + 100


def test_frames_after_a_complete_one_stay_buffered() -> None:
    share, close = SubmitSharesStandard(1, 2, 3, 4, 5, 6), CloseChannel(1, "bye")
    second = close.to_frame()
    decoder = FrameDecoder()
    assert decoder.feed(share.to_frame() + second[:7]) == [_expected_frame(share)]
    assert decoder.buffered == 7
    assert decoder.feed(second[7:]) == [_expected_frame(close)]


_random_header_frame = st.builds(
    lambda ext, msg_type, payload: (
        ext.to_bytes(2, "little") + bytes([msg_type]) + len(payload).to_bytes(3, "little") + payload
    ),
    st.one_of(st.sampled_from(_KNOWN_EXTENSIONS), st.integers(0, 0xFFFF)),
    st.one_of(st.sampled_from(_KNOWN_TYPES), st.integers(0, 0xFF)),
    st.binary(max_size=120),
)


@given(
    st.lists(st.one_of(st.binary(max_size=64), _random_header_frame), min_size=1, max_size=10),
    st.sampled_from((64, 1024, 0xFFFFFF)),
)
def test_garbage_into_message_decoder_raises_only_protocol_error(
    pieces: list[bytes], max_payload: int
) -> None:
    decoder = MessageDecoder(max_payload=max_payload)
    for piece in pieces:
        try:
            messages = decoder.feed(piece)
        except ProtocolError:
            return  # the connection would be closed here
        assert all(isinstance(m, Message) for m in messages)
