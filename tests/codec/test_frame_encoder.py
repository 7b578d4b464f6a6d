"""FrameEncoder gives exactly ``to_frame()``'s bytes, however often it reuses an encoding.

A fan-out sends one job or SetNewPrevHash to many channel ids; the encoder encodes it once and
patches the channel id (frame bytes 6..10, U32 LE) for the others.  These tests check the
patched frames against a fresh encoding, for every message class and for any sequence.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.codec.message import FrameEncoder, Message
from sv2proxy.codec.mining import NewExtendedMiningJob, SetNewPrevHash, SetTarget, UpdateChannel
from sv2proxy.errors import ProtocolError

from .strategies import ALL_MESSAGES, any_message, message_strategy

_IDS = [cls.__name__ for cls in ALL_MESSAGES]
JOB = NewExtendedMiningJob(
    7,  # channel_id (a group id)
    42,  # job_id
    None,  # min_ntime: a future job
    0x20000000,  # version
    True,  # version_rolling_allowed
    (b"\x11" * 32,),  # merkle_path
    b"coinbase-prefix",  # coinbase_tx_prefix
    b"coinbase-suffix",  # coinbase_tx_suffix
)
PREV = SetNewPrevHash(7, 42, b"\x22" * 32, 1_700_000_000, 0x207FFFFF)


def test_a_fan_out_s_frames_are_the_ones_each_message_encodes_to():
    encoder = FrameEncoder()
    for channel_id in (7, 8, 0, 0xFFFFFFFF, 9):
        for message in (JOB, PREV):
            readdressed = dataclasses.replace(message, channel_id=channel_id)
            frame = encoder.frame(readdressed)
            assert frame == readdressed.to_frame()
            assert frame[6:10] == channel_id.to_bytes(4, "little")  # channel_id, U32 LE


def test_a_message_that_differs_beyond_the_channel_id_is_encoded_afresh():
    encoder = FrameEncoder()
    encoder.frame(JOB)
    for changed in (
        dataclasses.replace(JOB, channel_id=8, job_id=43),
        dataclasses.replace(JOB, channel_id=8, min_ntime=1_700_000_000),
        dataclasses.replace(JOB, channel_id=8, coinbase_tx_prefix=b"other"),
        dataclasses.replace(JOB, channel_id=8, merkle_path=()),
    ):
        assert encoder.frame(changed) == changed.to_frame()


def test_float_fields_are_never_reused_since_0_0_and_minus_0_0_are_equal():
    encoder = FrameEncoder()
    plus = UpdateChannel(1, 0.0, b"\x00" * 32)
    minus = UpdateChannel(2, -0.0, b"\x00" * 32)
    assert plus == dataclasses.replace(minus, channel_id=1)
    assert encoder.frame(plus) == plus.to_frame()
    assert encoder.frame(minus) == minus.to_frame() != dataclasses.replace(plus, channel_id=2).to_frame()


def test_a_channel_id_out_of_range_is_refused_as_to_frame_refuses_it():
    encoder = FrameEncoder()
    encoder.frame(SetTarget(1, b"\x00" * 32))
    with pytest.raises(ProtocolError, match="channel_id"):
        encoder.frame(SetTarget(1 << 32, b"\x00" * 32))


@pytest.mark.parametrize("cls", ALL_MESSAGES, ids=_IDS)
def test_every_message_class_frames_as_to_frame_does(cls: type[Message]) -> None:
    @given(message_strategy(cls), st.lists(st.integers(0, 0xFFFFFFFF), max_size=3))
    def check(message: Message, channel_ids: list[int]) -> None:
        encoder = FrameEncoder()
        assert encoder.frame(message) == message.to_frame()
        if any(name == "channel_id" for name, _ in cls.FIELDS):
            for channel_id in channel_ids:
                readdressed = dataclasses.replace(message, channel_id=channel_id)  # type: ignore[type-var]
                assert encoder.frame(readdressed) == readdressed.to_frame()

    check()


def test_any_sequence_of_messages_frames_as_to_frame_does():
    @given(st.lists(any_message(), max_size=8))
    def check(messages: list[Message]) -> None:
        encoder = FrameEncoder()
        for message in messages + messages:
            assert encoder.frame(message) == message.to_frame()

    check()
