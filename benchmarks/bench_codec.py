"""Codec throughput: encode/decode msgs/s for the hot messages, FrameDecoder MB/s.

The messages are the ones a busy proxy handles most: shares upstream
(SubmitSharesStandard, SubmitSharesExtended with an 8-byte extranonce, with and
without the 0x0002 worker-name TLV) and jobs downstream (NewExtendedMiningJob
with a 12-node merkle path, i.e. a ~4000-transaction block, and coinbase
prefix/suffix of 60/120 bytes).  "registry decode" goes through
``decode_message`` as a connection does.  The stream figures feed many
SubmitSharesExtended frames in 64 KiB chunks, as a socket read delivers them.
"""

from __future__ import annotations

from functools import partial

from benchmarks import Row, rate
from benchmarks.samples import SHARE_FIELDS
from sv2proxy.codec.framing import FrameDecoder
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import NewExtendedMiningJob, SubmitSharesExtended, SubmitSharesStandard
from sv2proxy.codec.registry import MessageDecoder, decode_message
from sv2proxy.codec.tlv import worker_name_tlv

#: Issue goal: a single core decodes at least this many SubmitSharesStandard a second.
SUBMIT_SHARES_STANDARD_DECODE_GOAL = 500_000.0

CHUNK = 64 * 1024
STREAM_BYTES = 1 << 20

_SHARE_FIELDS = SHARE_FIELDS

SUBMIT_SHARES_STANDARD = SubmitSharesStandard(**_SHARE_FIELDS)
SUBMIT_SHARES_EXTENDED = SubmitSharesExtended(**_SHARE_FIELDS, extranonce=bytes(range(8)))
SUBMIT_SHARES_EXTENDED_WORKER = SubmitSharesExtended(
    **_SHARE_FIELDS, extranonce=bytes(range(8)), tlvs=(worker_name_tlv("bitaxe-garage.rig07"),)
)
NEW_EXTENDED_MINING_JOB = NewExtendedMiningJob(
    channel_id=7,
    job_id=43,
    min_ntime=None,
    version=0x20000000,
    version_rolling_allowed=True,
    merkle_path=tuple(bytes([i]) * 32 for i in range(12)),
    coinbase_tx_prefix=bytes(range(60)),
    coinbase_tx_suffix=bytes(range(120)),
)


def _message_rows(label: str, msg: Message, quick: bool, decode_goal: float | None) -> list[Row]:
    cls = type(msg)
    payload = msg.encode()
    assert cls.decode(payload) == msg
    return [
        Row(f"{label} encode", rate(msg.encode, quick=quick), "msgs/s"),
        Row(
            f"{label} decode",
            rate(partial(cls.decode, payload), quick=quick),
            "msgs/s",
            decode_goal,
        ),
        Row(
            f"{label} registry decode",
            rate(partial(decode_message, cls.EXTENSION_TYPE, cls.MSG_TYPE, payload), quick=quick),
            "msgs/s",
        ),
    ]


def _stream_chunks(msg: Message) -> tuple[list[bytes], int, int]:
    """About 1 MiB of ``msg`` frames cut into 64 KiB chunks: (chunks, frames, bytes)."""
    frame = msg.to_frame()
    count = STREAM_BYTES // len(frame)
    stream = frame * count
    return [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)], count, len(stream)


def _feed_frames(chunks: list[bytes], expected: int) -> None:
    decoder = FrameDecoder()
    got = 0
    for chunk in chunks:
        got += len(decoder.feed(chunk))
    assert got == expected


def _feed_messages(chunks: list[bytes], expected: int) -> None:
    decoder = MessageDecoder()
    got = 0
    for chunk in chunks:
        got += len(decoder.feed(chunk))
    assert got == expected


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    rows += _message_rows(
        "SubmitSharesStandard", SUBMIT_SHARES_STANDARD, quick, SUBMIT_SHARES_STANDARD_DECODE_GOAL
    )
    rows += _message_rows("SubmitSharesExtended", SUBMIT_SHARES_EXTENDED, quick, None)
    rows += _message_rows("SubmitSharesExtended+worker", SUBMIT_SHARES_EXTENDED_WORKER, quick, None)
    rows += _message_rows("NewExtendedMiningJob(12 nodes)", NEW_EXTENDED_MINING_JOB, quick, None)

    chunks, frames, size = _stream_chunks(SUBMIT_SHARES_EXTENDED)
    megabytes = size / 1e6
    rows.append(
        Row(
            "FrameDecoder, SubmitSharesExtended frames in 64 KiB chunks",
            rate(partial(_feed_frames, chunks, frames), quick=quick, work=megabytes),
            "MB/s",
        )
    )
    rows.append(
        Row(
            "FrameDecoder, same stream",
            rate(partial(_feed_frames, chunks, frames), quick=quick, work=frames),
            "frames/s",
        )
    )
    rows.append(
        Row(
            "MessageDecoder (frames + decode), same stream",
            rate(partial(_feed_messages, chunks, frames), quick=quick, work=megabytes),
            "MB/s",
        )
    )
    return rows
