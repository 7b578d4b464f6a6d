"""Stand-ins for what the web side reads: the mining service, a channel, the share store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from sv2proxy.events import EventBus
from sv2proxy.store.records import BlockRecord, UpstreamEventRecord, WorkerStats
from sv2proxy.web.context import WebContext
from sv2proxy.web.live import LiveState

#: Where the tests' clocks start (a plausible Unix time, so no timestamp is a falsy 0).
T0 = 1_800_000_000.0


@dataclass
class FakeChannel:
    """What the web side reads of a :class:`~sv2proxy.pool.channel.Channel`."""

    channel_id: int
    user_identity: str


@dataclass
class FakeMining:
    """A mining service with fixed channels and hash rates (``rates`` by channel id)."""

    channels: list[FakeChannel] = field(default_factory=list)
    rates: dict[int, float] = field(default_factory=dict)

    def miner_channels(self) -> list[FakeChannel]:
        return list(self.channels)

    def channel_hash_rate(self, channel_id: int) -> float:
        return self.rates.get(channel_id, 0.0)

    def total_hash_rate(self) -> float:
        return sum(self.rates.get(c.channel_id, 0.0) for c in self.channels)


@dataclass
class FakeBackend:
    description: str = "sqlite /tmp/shares.sqlite3"


@dataclass
class FakeStore:
    """The share store's counters and queries, answering at once (the real one on a thread)."""

    durable: int = 7
    last_ticket: int = 10
    commits: int = 3
    shares_committed: int = 7
    last_error: str | None = None
    backend: FakeBackend = field(default_factory=FakeBackend)
    stats: list[WorkerStats] = field(default_factory=list)
    stored_blocks: list[BlockRecord] = field(default_factory=list)
    upstream: list[UpstreamEventRecord] = field(default_factory=list)
    payout_rows: list[tuple[str, float, float]] = field(default_factory=list)
    history: list[tuple[float, float]] = field(default_factory=list)
    asked: list[tuple[str, Any]] = field(default_factory=list)

    def worker_stats(self, now: float, worker: str | None = None) -> Deferred[list[WorkerStats]]:
        self.asked.append(("worker_stats", worker))
        return succeed([s for s in self.stats if worker is None or s.worker == worker])

    def blocks(self, limit: int = 50) -> Deferred[list[BlockRecord]]:
        self.asked.append(("blocks", limit))
        return succeed(self.stored_blocks[:limit])

    def upstream_events(self, limit: int = 50) -> Deferred[list[UpstreamEventRecord]]:
        self.asked.append(("upstream_events", limit))
        return succeed(self.upstream[:limit])

    def payouts(self, window: int) -> Deferred[list[tuple[str, float, float]]]:
        self.asked.append(("payouts", window))
        return succeed(self.payout_rows)

    def hash_rate_history(
        self, now: float, span: float, buckets: int, worker: str | None = None
    ) -> Deferred[list[tuple[float, float]]]:
        self.asked.append(("hash_rate_history", (span, buckets, worker)))
        return succeed(self.history)


def make_context(
    mining: FakeMining | None = None,
    store: FakeStore | None = None,
    upstream_urls: tuple[str, ...] = (),
    mode: str = "pool",
    start: bool = True,
) -> tuple[WebContext, EventBus, Clock]:
    """A context over a fresh bus and a Clock at :data:`T0`; ``start``: its live state subscribed
    (a :class:`~sv2proxy.web.service.WebService` subscribes it itself)."""
    clock = Clock()
    clock.advance(T0)
    bus = EventBus()
    live = LiveState(bus, clock, upstream_urls)
    if start:
        live.start()
    context = WebContext(
        mode,
        mining if mining is not None else FakeMining(),
        live,
        clock,
        store,  # type: ignore[arg-type]
        upstream_urls,
        started_at=T0,
        version="9.9.9",
    )
    return context, bus, clock
