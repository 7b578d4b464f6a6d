"""Where the web side reads the daemon: the mining service, the live counts, the store.

:class:`WebContext` gathers (asynchronously, since the store answers on its reader thread)
the values that :mod:`sv2proxy.web.views` and :mod:`sv2proxy.web.dashboard` turn into JSON
and HTML.  Without a store, every stored figure is None and the documents say so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from twisted.internet.interfaces import IReactorTime

from sv2proxy import __version__
from sv2proxy.merge_mining.coordinator import SecondaryChain
from sv2proxy.pool.channel import Channel
from sv2proxy.store.batched import BatchedStore
from sv2proxy.web import views
from sv2proxy.web.live import LiveState

#: Most rows the API returns for blocks and upstream events.
LIST_LIMIT = 100
#: Largest PPLNS window a request may ask for.
MAX_PAYOUT_WINDOW = 10_000_000


class MiningView(Protocol):
    """What the web side reads from the mining service."""

    def miner_channels(self) -> list[Channel]: ...

    def channel_hash_rate(self, channel_id: int) -> float: ...

    def total_hash_rate(self) -> float: ...

    def reconnect_miners(self, host: str = "", port: int = 0) -> int: ...


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

    def now(self) -> float:
        return float(self.clock.seconds())

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
            hash_rate=self.mining.total_hash_rate(),
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
        if self.store is not None:
            stored = await self.store.worker_stats(self.now(), name)
        live = self.live.workers
        channels = self.channels()
        if name is not None:
            live = {name: live[name]} if name in live else {}
            channels = [c for c in channels if c.worker == name]
        return views.worker_documents(live, channels, stored)

    async def blocks(self, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
        if self.store is not None:
            return views.block_documents(await self.store.blocks(limit))
        return views.block_documents(list(self.live.blocks)[-limit:])

    async def upstream_history(self) -> list[dict[str, Any]]:
        history = await self.store.upstream_events(LIST_LIMIT) if self.store is not None else None
        return views.upstream_documents(self.upstream_urls, self.live.upstreams, history)

    async def payouts(self, window: int) -> dict[str, Any] | None:
        """The PPLNS split, or None without a store."""
        if self.store is None:
            return None
        return views.payout_document(window, await self.store.payouts(window))

    async def hash_rate_history(
        self, span: float, buckets: int, worker: str | None = None
    ) -> list[tuple[float, float]]:
        now = self.now()
        if self.store is not None:
            return await self.store.hash_rate_history(now, span, buckets, worker)
        if worker is None:
            return self.live.pool_history.series(now, span, buckets)
        seen = self.live.workers.get(worker)
        if seen is None:
            return []
        return seen.history.series(now, span, buckets)
