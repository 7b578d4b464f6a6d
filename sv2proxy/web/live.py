"""What the daemon saw since it started, from the event bus: the live half of the API.

The store answers for history (and for every daemon sharing it); this answers for *this*
process, with or without a store: shares accepted and rejected per worker and reason, a short
hash-rate history in one-minute buckets, found blocks, upstream connections, handshake
failures and when the last work arrived.  Everything is plain counting on the reactor thread;
time comes from the injected clock.

Worker names are the miners' to choose (one Stratum V1 connection may authorize any number
of them), so at most :data:`MAX_LIVE_WORKERS` are remembered: a new name past that forgets
the worker whose last share is the oldest (its figures live on in the store, if there is one).
Rejection reasons are the pool's, a small fixed set, but a proxy's upstream pool chooses them:
past :data:`MAX_REJECT_REASONS` distinct reasons, new ones count as ``other``.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from twisted.internet.interfaces import IReactorTime

from sv2proxy.events import (
    BlockMined,
    BlockSubmitted,
    BlockTemplateUpdated,
    EventBus,
    HandshakeFailed,
    MergeMiningReward,
    MiningJobCreated,
    MiningPoolConnected,
    MiningPoolDisconnected,
    ShareSubmitted,
)
from sv2proxy.store.records import BlockRecord, hash_rate

#: The window of the headline hash rates (pool and per worker): accepted difficulty over the
#: last fifteen minutes -- the formula, and once the daemon is older the very figure, of the
#: store's "15m" window, and what an upstream pool computes (FIELD-NOTES).
HASH_RATE_WINDOW = 900.0
#: Width of the live hash-rate buckets, and how many are kept (an hour's worth).
BUCKET = 60.0
KEPT_BUCKETS = 60
#: Found blocks remembered for the API when there is no store.
KEPT_BLOCKS = 50
#: Workers remembered at once, the least recently seen forgotten first.
MAX_LIVE_WORKERS = 10_000
#: Distinct rejection reasons counted (per worker and in all); any further ones are ``other``.
MAX_REJECT_REASONS = 32
OTHER_REASON = "other"


def _count_reason(counts: dict[str, int], reason: str) -> None:
    if reason not in counts and len(counts) >= MAX_REJECT_REASONS:
        reason = OTHER_REASON
    counts[reason] = counts.get(reason, 0) + 1


class RateHistory:
    """Accepted difficulty per :data:`BUCKET` seconds, the last :data:`KEPT_BUCKETS` of them."""

    __slots__ = ("_buckets",)

    def __init__(self) -> None:
        self._buckets: deque[list[float]] = deque()  # [bucket start, difficulty sum]

    def add(self, at: float, difficulty: float) -> None:
        start = at - at % BUCKET
        buckets = self._buckets
        if buckets and buckets[-1][0] == start:
            buckets[-1][1] += difficulty
            return
        if buckets and buckets[-1][0] > start:
            return  # the clock went back: not worth a reordering
        buckets.append([start, difficulty])
        while len(buckets) > KEPT_BUCKETS:
            buckets.popleft()

    def rate(self, now: float, window: float, origin: float | None = None) -> float:
        """H/s the accepted difficulty of the last ``window`` seconds stands for."""
        return self.series(now, window, 1, origin)[0][1]

    def series(
        self, now: float, span: float, buckets: int, origin: float | None = None
    ) -> list[tuple[float, float]]:
        """Like the store's ``hash_rate_history``: ``buckets`` slices of the last ``span`` s.

        ``origin``: when counting began, so the first, partial minute is not spread over the
        part of it before then (the figures would read low after every start).
        """
        width = span / buckets
        start = now - span
        sums = [0.0] * buckets
        for bucket_start, difficulty in self._buckets:
            # A live bucket is a minute of shares (the current one only up to now): spread it
            # over the slices it overlaps, so slices narrower than a minute show no spikes.
            bucket_end = min(bucket_start + BUCKET, now)
            if origin is not None and bucket_start < origin:
                bucket_start = origin  # the minute counting began in: only its part since then
            length = bucket_end - bucket_start
            if length <= 0 or bucket_end <= start:
                continue
            first = max(0, int((bucket_start - start) // width))
            last = min(buckets - 1, int((bucket_end - start) // width))
            for i in range(first, last + 1):
                low, high = start + i * width, start + (i + 1) * width
                overlap = min(high, bucket_end) - max(low, bucket_start)
                if overlap > 0:
                    sums[i] += difficulty * overlap / length
        return [(start + i * width, hash_rate(sums[i], width)) for i in range(buckets)]


@dataclass(slots=True)
class WorkerLive:
    """One worker's shares since the daemon started."""

    accepted: int = 0
    difficulty: float = 0.0
    rejected: dict[str, int] = field(default_factory=dict)
    blocks: int = 0
    last_share_at: float | None = None
    history: RateHistory = field(default_factory=RateHistory)


@dataclass(slots=True)
class AuxLive:
    """One merge-mined chain's blocks accepted since the daemon started."""

    blocks: int = 0
    rewards: int = 0  # in the chain's smallest unit
    last_height: int | None = None
    last_at: float | None = None


@dataclass(slots=True)
class UpstreamLive:
    """One upstream pool URL as this daemon last saw it."""

    url: str
    connected: bool = False
    since: float | None = None
    connects: int = 0
    disconnects: int = 0
    last_reason: str = ""


class LiveState:
    """Counts the bus's events; :meth:`start` subscribes, :meth:`stop` unsubscribes."""

    def __init__(
        self,
        events: EventBus,
        clock: IReactorTime,
        upstream_urls: tuple[str, ...] = (),
        max_workers: int = MAX_LIVE_WORKERS,
    ) -> None:
        self.events = events
        self.clock = clock
        self.max_workers = max_workers
        #: By name, the least recently seen first (see :data:`MAX_LIVE_WORKERS`).
        self.workers: OrderedDict[str, WorkerLive] = OrderedDict()
        self.pool_history = RateHistory()
        self.accepted = 0
        self.accepted_difficulty = 0.0
        self.rejected: dict[str, int] = {}
        self.blocks: deque[BlockRecord] = deque(maxlen=KEPT_BLOCKS)
        self.blocks_found = 0
        self.upstreams: dict[str, UpstreamLive] = {url: UpstreamLive(url) for url in upstream_urls}
        self.handshake_failures: dict[str, int] = {}
        self.aux: dict[str, AuxLive] = {}
        self.last_work_at: float | None = None
        self.template_height: int | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        #: When :meth:`start` began counting (None: not yet).
        self.started_at: float | None = None

    def rate_window(self, now: float) -> float:
        """The headline window, shorter while the daemon is younger than it (never empty)."""
        if self.started_at is None:
            return HASH_RATE_WINDOW
        return max(1.0, min(HASH_RATE_WINDOW, now - self.started_at))

    def pool_rate(self, now: float) -> float:
        return self.pool_history.rate(now, self.rate_window(now), self.started_at)

    def worker_rate(self, name: str, now: float) -> float:
        seen = self.workers.get(name)
        return 0.0 if seen is None else seen.history.rate(now, self.rate_window(now), self.started_at)

    def start(self) -> None:
        if self._unsubscribe:
            return  # already counting: a second subscription would count every event twice
        self.started_at = self.clock.seconds()
        subscribe = self.events.subscribe
        self._unsubscribe = [
            subscribe(ShareSubmitted, self._share),
            subscribe(BlockMined, self._block_mined),
            subscribe(BlockSubmitted, self._block_submitted),
            subscribe(BlockTemplateUpdated, self._template),
            subscribe(MiningJobCreated, self._job),
            subscribe(MiningPoolConnected, self._connected),
            subscribe(MiningPoolDisconnected, self._disconnected),
            subscribe(HandshakeFailed, self._handshake_failed),
            subscribe(MergeMiningReward, self._aux_reward),
        ]

    def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def template_age(self, now: float) -> float | None:
        """Seconds since the job source last gave new work (None: it never did)."""
        return None if self.last_work_at is None else max(0.0, now - self.last_work_at)

    # -- subscribers -----------------------------------------------------------------------

    def _share(self, event: ShareSubmitted) -> None:
        workers = self.workers
        worker = workers.get(event.worker)
        if worker is None:
            while len(workers) >= self.max_workers:
                workers.popitem(last=False)
            worker = workers[event.worker] = WorkerLive()
        else:
            workers.move_to_end(event.worker)
        now = self.clock.seconds()
        worker.last_share_at = now
        if event.accepted:
            worker.accepted += 1
            worker.difficulty += event.difficulty
            worker.history.add(now, event.difficulty)
            self.accepted += 1
            self.accepted_difficulty += event.difficulty
            self.pool_history.add(now, event.difficulty)
        else:
            reason = event.error_code or "rejected"
            _count_reason(worker.rejected, reason)
            _count_reason(self.rejected, reason)

    def _block_mined(self, event: BlockMined) -> None:
        if event.worker is None:
            return  # a block of the network's, not ours
        self.blocks_found += 1
        worker = self.workers.get(event.worker)
        if worker is not None:
            worker.blocks += 1
        self._remember(BlockRecord(event.block_hash, "found", self.clock.seconds(), event.worker, event.height))

    def _block_submitted(self, event: BlockSubmitted) -> None:
        status = "accepted" if event.accepted else "rejected"
        found = next((b for b in self.blocks if b.hash == event.block_hash), None)
        at = found.at if found is not None else self.clock.seconds()
        worker = event.worker or (found.worker if found is not None else None)
        # A node's answer may not repeat what the found record already knew (a TDP answer has no height).
        height = event.height if event.height is not None or found is None else found.height
        reward = event.reward if event.reward is not None or found is None else found.reward
        self._remember(BlockRecord(event.block_hash, status, at, worker, height, reward, event.reason))

    def _remember(self, block: BlockRecord) -> None:
        kept = [b for b in self.blocks if b.hash != block.hash]
        kept.append(block)
        self.blocks = deque(kept, maxlen=KEPT_BLOCKS)

    def _template(self, event: BlockTemplateUpdated) -> None:
        self.last_work_at = self.clock.seconds()
        height = getattr(event.template, "height", None)
        if isinstance(height, int):
            self.template_height = height

    def _job(self, event: MiningJobCreated) -> None:
        self.last_work_at = self.clock.seconds()

    def _upstream(self, url: str) -> UpstreamLive:
        upstream = self.upstreams.get(url)
        if upstream is None:
            upstream = self.upstreams[url] = UpstreamLive(url)
        return upstream

    def _connected(self, event: MiningPoolConnected) -> None:
        upstream = self._upstream(event.url)
        upstream.connected = True
        upstream.since = self.clock.seconds()
        upstream.connects += 1

    def _disconnected(self, event: MiningPoolDisconnected) -> None:
        upstream = self._upstream(event.url)
        upstream.connected = False
        upstream.since = self.clock.seconds()
        upstream.disconnects += 1
        upstream.last_reason = event.reason

    def _handshake_failed(self, event: HandshakeFailed) -> None:
        # The reason text names the peer's mistake; as a label it would grow without bound.
        kind = "timeout" if event.reason == "timeout" else "invalid"
        self.handshake_failures[kind] = self.handshake_failures.get(kind, 0) + 1

    def _aux_reward(self, event: MergeMiningReward) -> None:
        chain = self.aux.get(event.chain)
        if chain is None:
            chain = self.aux[event.chain] = AuxLive()
        chain.blocks += 1
        chain.rewards += event.amount
        chain.last_height = event.height
        chain.last_at = self.clock.seconds()
