"""The store inside the daemon: opened at start, fed by the event bus, committed at stop.

Accepted shares are recorded by the mining service itself (it must hold their acknowledgements
until they are durable); everything else reaches the store as events: found blocks and the
node's verdict on them, and the proxy's upstream connections.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from sv2proxy.config import StoreConfig
from sv2proxy.events import BlockMined, BlockSubmitted, EventBus, MiningPoolConnected, MiningPoolDisconnected
from sv2proxy.store.backend import Backend
from sv2proxy.store.batched import BatchedStore
from sv2proxy.store.records import BlockRecord, UpstreamEventRecord

log = Logger()

#: The SQLite file in the data directory when ``store.url`` is ``sqlite``.
DEFAULT_SQLITE_FILE = "shares.sqlite3"
#: Where, in the data directory, records the database refused are kept (see store.batched).
QUARANTINE_FILE = "store-quarantine.jsonl"


def backend_for(url: str, data_dir: Path) -> Backend:
    """The backend ``store.url`` names (validated by the configuration already)."""
    if url.startswith(("postgresql://", "postgres://")):
        from sv2proxy.store.postgresql import PostgreSQLBackend

        return PostgreSQLBackend(url)
    from sv2proxy.store.sqlite import SQLiteBackend

    path = url.removeprefix("sqlite").removeprefix(":").removeprefix("//")
    if not path:
        return SQLiteBackend(data_dir / DEFAULT_SQLITE_FILE)
    file = Path(path).expanduser()
    return SQLiteBackend(file if file.is_absolute() else data_dir / file)


def open_store(config: StoreConfig, data_dir: Path, reactor: Any) -> BatchedStore | None:
    """The daemon's share store, or None when ``store.url`` is null."""
    if config.url is None:
        return None
    return BatchedStore(backend_for(config.url, data_dir), reactor, config.daemon_name, data_dir / QUARANTINE_FILE)


class StoreService(Service):
    """Runs a :class:`BatchedStore` for the daemon's lifetime and feeds it the bus's events."""

    name = "store"

    def __init__(self, store: BatchedStore, events: EventBus) -> None:
        self.store = store
        self.events = events
        self._unsubscribe: list[Callable[[], None]] = []

    def startService(self) -> None:  # noqa: N802
        super().startService()
        subscribe = self.events.subscribe
        self._unsubscribe = [
            subscribe(BlockMined, self._block_mined),
            subscribe(BlockSubmitted, self._block_submitted),
            subscribe(MiningPoolConnected, self._pool_connected),
            subscribe(MiningPoolDisconnected, self._pool_disconnected),
        ]
        # Failures are retried inside the store; this only reports a store that was stopped
        # before it ever became ready.
        self.store.start().addErrback(lambda failure: log.failure("the share store never started", failure))

    def stopService(self) -> Deferred[None]:  # noqa: N802
        super().stopService()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        return self.store.stop()

    def _now(self) -> float:
        return float(self.store.reactor.seconds())

    def _block_mined(self, event: BlockMined) -> None:
        if event.worker is None:
            return  # a block seen on the network, not one of ours
        self.store.record_block(
            BlockRecord(event.block_hash, "found", self._now(), event.worker, event.height, event.reward)
        )

    def _block_submitted(self, event: BlockSubmitted) -> None:
        status = "accepted" if event.accepted else "rejected"
        self.store.record_block(
            BlockRecord(event.block_hash, status, self._now(), event.worker, event.height, event.reward, event.reason)
        )

    def _pool_connected(self, event: MiningPoolConnected) -> None:
        self.store.record_upstream_event(UpstreamEventRecord(event.url, "connected", self._now()))

    def _pool_disconnected(self, event: MiningPoolDisconnected) -> None:
        self.store.record_upstream_event(UpstreamEventRecord(event.url, "disconnected", self._now(), event.reason))
