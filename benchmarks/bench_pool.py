"""Share validation throughput (issue: the pool core), beside a bare SHA256d loop for scale."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from benchmarks import Row, rate
from sv2proxy.bitcoin.target import MAX_TARGET
from sv2proxy.pool.channel import Channel, ChannelKind
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.pool.validation import validate_share

NOW = 1_800_000_000
STANDARD_GOAL = 250_000
EXTENDED_GOAL = 80_000


def _channel(kind: ChannelKind) -> Channel:
    standard = kind is ChannelKind.STANDARD
    prefix = b"\x00\x00\x00\x01" + (b"\x00" * 8 if standard else b"")
    ch = Channel(1, kind, "bench", 1e12, 1, prefix, 0 if standard else 8, MAX_TARGET, MAX_TARGET)
    path = tuple(hashlib.sha256(bytes([i])).digest() for i in range(12))
    # Realistic coinbase sizes: ~60 bytes before the extranonce, ~120 after (payout + commitment).
    work = Work(1, 0x20000000, True, b"\x01" * 60, b"\x02" * 120, path, True)
    ch.add_job(1, work)
    ch.activate(1, PrevHash(hashlib.sha256(b"tip").digest(), NOW - 10, 0x1D00FFFF))
    return ch


def _validator(kind: ChannelKind) -> Callable[[], object]:
    ch = _channel(kind)
    extranonce = b"\x00" * 8 if kind is ChannelKind.EXTENDED else None
    nonce = iter(range(1 << 32)).__next__

    def one() -> object:
        # Every share is new (no duplicates) and meets the all-accepting target.
        return validate_share(ch, 1, nonce(), NOW, 0x20000000, extranonce, NOW)

    return one


def _bare_sha256d() -> Callable[[], object]:
    header = b"\x00" * 80
    sha256 = hashlib.sha256

    def one() -> object:
        return sha256(sha256(header).digest()).digest()

    return one


def run(quick: bool) -> list[Row]:
    bare = rate(_bare_sha256d(), quick=quick)
    standard = rate(_validator(ChannelKind.STANDARD), quick=quick)
    extended = rate(_validator(ChannelKind.EXTENDED), quick=quick)
    return [
        Row("bare SHA256d of 80 bytes (scale)", bare, "hashes/s"),
        Row("validate_share, standard channel", standard, "shares/s", STANDARD_GOAL),
        Row("validate_share, extended channel (12-node path)", extended, "shares/s", EXTENDED_GOAL),
        Row("  standard / bare SHA256d", 100 * standard / bare, "%"),
        *_fanout_rows(quick),
    ]


FANOUT_GOAL_MS = 100.0


def _fanout_ms(channels: int, quick: bool) -> float:
    """Milliseconds to turn one new work into encoded job frames for ``channels`` extended channels."""
    from sv2proxy.bitcoin.target import target_to_u256
    from sv2proxy.codec.mining import OpenExtendedMiningChannel
    from sv2proxy.pool.manager import ChannelManager

    manager = ChannelManager()
    request = OpenExtendedMiningChannel(1, "bench", 1e12, target_to_u256(MAX_TARGET), 4)
    for owner in range(channels):
        manager.open_extended(owner, request, NOW)
    path = tuple(hashlib.sha256(bytes([i])).digest() for i in range(12))
    best = float("inf")
    for source_id in range(2 if quick else 5):
        work = Work(source_id, 0x20000000, True, b"\x01" * 60, b"\x02" * 120, path, True)
        started = time.perf_counter()
        _, out = manager.new_work(work)
        frames = [message.to_frame() for _, message in out]
        best = min(best, (time.perf_counter() - started) * 1000)
        assert len(frames) == channels
    return best


def _fanout_rows(quick: bool) -> list[Row]:
    return [
        Row("new work to 1,000 extended channels (frames)", _fanout_ms(1_000, quick), "ms"),
        Row(
            "new work to 10,000 extended channels (frames)",
            _fanout_ms(10_000, quick),
            "ms",
            FANOUT_GOAL_MS,
            lower_is_better=True,
        ),
    ]
