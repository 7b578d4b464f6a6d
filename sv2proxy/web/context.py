"""Where the web side reads the daemon: the mining service, the live counts, the store.

:class:`WebContext` gathers (asynchronously, since the store answers on its reader thread)
the values that :mod:`sv2proxy.web.views` and :mod:`sv2proxy.web.dashboard` turn into JSON
and HTML.  Without a store, every stored figure is None and the documents say so.

A store query can take seconds (a day of shares is millions of rows), and dashboards and
scrapers ask the same things again and again: identical queries in flight share one answer,
and an answer is reused for :data:`STORE_CACHE_SECONDS`, so a crowd of requests costs the
reader thread one query each few seconds rather than a queue that only grows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from sv2proxy import __version__
from sv2proxy.merge_mining.coordinator import SecondaryChain
from sv2proxy.pool.channel import Channel
from sv2proxy.store.batched import BatchedStore, StoreNotReady
from sv2proxy.web import views
from sv2proxy.web.live import LiveState

#: Most rows the API returns for blocks and upstream events.
LIST_LIMIT = 100
#: Largest PPLNS window a request may ask for.
MAX_PAYOUT_WINDOW = 10_000_000
#: Seconds a store answer is reused for the same question.
STORE_CACHE_SECONDS = 5.0
#: Store answers kept at once (questions name workers, which requests choose).
STORE_CACHE_ENTRIES = 256

T = TypeVar("T")


class MiningView(Protocol):
    """What the web side reads from the mining service."""

    def miner_channels(self) -> list[Channel]: ...

    def channel_hash_rate(self, channel_id: int) -> float: ...

    def total_hash_rate(self) -> float: ...

    def reconnect_miners(self, host: str = "", port: int = 0) -> int | tuple[int, bool]:
        """How many miner connections are told; with a flag when the message still waits for
        the share store to make their accepted shares durable."""
        ...


class OwnerView(Protocol):
    """The channel manager's answer to who owns a channel (for counting connections)."""

    def owner_of(self, channel_id: int) -> object: ...


@dataclass
class WebContext:
    """Everything the resources read; ``started_at`` is set when the web service starts."""

    mode: str
    mining: MiningView
    live: LiveState
    clock: IReactorTime
    store: BatchedStore | None = None
    upstream_urls: Sequence[str] = ()
    #: The merge-mining coordinator's chain list (None: no aux chains configured).
    aux_chains: Callable[[], Sequence[SecondaryChain]] | None = None
    started_at: float = 0.0
    version: str = __version__
    _answers: dict[Hashable, tuple[float, Any]] = field(default_factory=dict, init=False, repr=False)
    _asking: dict[Hashable, list[Deferred[Any]]] = field(default_factory=dict, init=False, repr=False)

    def now(self) -> float:
        return float(self.clock.seconds())

    def _stored(self, key: Hashable, query: Callable[[float], Deferred[T]]) -> Deferred[T]:
        """``query(now)``'s answer: shared with every caller asking ``key`` while it runs,
        then reused for :data:`STORE_CACHE_SECONDS`.  A failure is shared, never reused."""
        now = self.now()
        answered = self._answers.get(key)
        if answered is not None and now - answered[0] < STORE_CACHE_SECONDS:
            return succeed(answered[1])
        mine: Deferred[T] = Deferred()
        waiting = self._asking.get(key)
        if waiting is not None:
            waiting.append(mine)
            return mine
        waiting = self._asking[key] = [mine]

        def settle(result: T | Failure) -> None:
            del self._asking[key]
            if isinstance(result, Failure):
                for waiter in waiting:
                    waiter.errback(result)
                return
            self._remember(key, result)
            for waiter in waiting:
                waiter.callback(result)

        maybeDeferred(query, now).addBoth(settle)
        return mine

    def _remember(self, key: Hashable, answer: object) -> None:
        now = self.now()
        answers = self._answers
        answers.pop(key, None)
        if len(answers) >= STORE_CACHE_ENTRIES:
            for old in [k for k, (at, _) in answers.items() if now - at >= STORE_CACHE_SECONDS]:
                del answers[old]
        while len(answers) >= STORE_CACHE_ENTRIES:
            del answers[next(iter(answers))]  # the oldest (dicts keep insertion order)
        answers[key] = (now, answer)

    # -- live ------------------------------------------------------------------------------

    def channels(self) -> list[views.ChannelView]:
        mining = self.mining
        return [
            views.ChannelView(channel.user_identity, mining.channel_hash_rate(channel.channel_id))
            for channel in mining.miner_channels()
        ]

    def connections(self) -> int:
        """Miner connections with at least one open channel."""
        manager = getattr(self.mining, "manager", None)
        channels = self.mining.miner_channels()
        if manager is None:
            return len(channels)
        return len({id(manager.owner_of(channel.channel_id)) for channel in channels})

    def store_state(self) -> views.StoreState | None:
        store = self.store
        if store is None:
            return None
        return views.StoreState(
            backend=store.backend.description,
            durable=store.durable,
            last_ticket=store.last_ticket,
            commits=store.commits,
            shares_committed=store.shares_committed,
            last_error=store.last_error,
            set_aside=getattr(store, "set_aside", 0),
        )

    def merge_mining(self) -> list[dict[str, Any]]:
        if self.aux_chains is None:
            return []
        return views.merge_mining_documents(self.aux_chains(), self.live.aux)

    def upstreams(self) -> list[dict[str, Any]]:
        return views.upstream_documents(self.upstream_urls, self.live.upstreams, None)

    # -- documents -------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now = self.now()
        live = self.live
        return views.status_document(
            mode=self.mode,
            version=self.version,
            now=now,
            started_at=self.started_at,
            connections=self.connections(),
            channels=len(self.mining.miner_channels()),
            hash_rate=live.pool_rate(now),
            hash_rate_estimate=self.mining.total_hash_rate(),
            hash_rate_window=live.rate_window(now),
            accepted=live.accepted,
            rejected=live.rejected,
            template_age=live.template_age(now),
            template_height=live.template_height,
            upstreams=[{k: v for k, v in u.items() if k != "events"} for u in self.upstreams()],
            store=self.store_state(),
            blocks_found=live.blocks_found,
            merge_mining=self.merge_mining(),
        )

    async def workers(self, name: str | None = None) -> list[dict[str, Any]]:
        stored = None
        store = self.store
        if store is not None:
            with contextlib.suppress(StoreNotReady):  # live figures meanwhile (FIELD-NOTES)
                stored = await self._stored(("worker_stats", name), lambda now: store.worker_stats(now, name))
        live = self.live.workers
        channels = self.channels()
        if name is not None:
            live = {name: live[name]} if name in live else {}
            channels = [c for c in channels if c.worker == name]
        now = self.now()
        return views.worker_documents(live, channels, stored, lambda worker: self.live.worker_rate(worker, now))

    async def blocks(self, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
        store = self.store
        if store is not None:
            with contextlib.suppress(StoreNotReady):
                return views.block_documents(await self._stored(("blocks", limit), lambda _: store.blocks(limit)))
        return views.block_documents(list(self.live.blocks)[-limit:])

    async def upstream_history(self) -> list[dict[str, Any]]:
        store = self.store
        history = None
        if store is not None:
            with contextlib.suppress(StoreNotReady):
                history = await self._stored(
                    ("upstream_events", LIST_LIMIT), lambda _: store.upstream_events(LIST_LIMIT)
                )
        return views.upstream_documents(self.upstream_urls, self.live.upstreams, history)

    async def payouts(self, window: int) -> dict[str, Any] | None:
        """The PPLNS split, or None without a store."""
        store = self.store
        if store is None:
            return None
        return views.payout_document(window, await self._stored(("payouts", window), lambda _: store.payouts(window)))

    async def hash_rate_history(
        self, span: float, buckets: int, worker: str | None = None
    ) -> list[tuple[float, float]]:
        now = self.now()
        store = self.store
        if store is not None:
            with contextlib.suppress(StoreNotReady):
                return await self._stored(
                    ("hash_rate_history", span, buckets, worker),
                    lambda at: store.hash_rate_history(at, span, buckets, worker),
                )
        if worker is None:
            return self.live.pool_history.series(now, span, buckets)
        seen = self.live.workers.get(worker)
        if seen is None:
            return []
        return seen.history.series(now, span, buckets)
