"""The share store every backend shares: queue on the reactor thread, group-commit off it.

Recording is a list append.  One writer thread commits whatever has been queued as one
transaction; while it runs, the next batch fills, so the commit rate adapts to the share rate
(one fsync for one share at a trickle, one for thousands under load).  When a commit fails
(disk full, database restarting) the batch is kept, merged with what came since and retried
with backoff; nothing is acknowledged meanwhile.  Queries use a second thread and connection.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from sv2proxy.store import queries
from sv2proxy.store.backend import Backend, Batch, merge_block
from sv2proxy.store.interface import IShareStore
from sv2proxy.store.records import BlockRecord, UpstreamEventRecord, WorkerStats

log = Logger()

T = TypeVar("T")

#: Retry delays after a failed commit or connection: doubling from FIRST to MAX seconds.
FIRST_RETRY = 0.5
MAX_RETRY = 30.0


def default_daemon_name() -> str:
    """How this daemon's rows are told from others' in a shared database: the host name."""
    return socket.gethostname() or "sv2proxy"


class _Worker:
    """One thread with its own database connection, opened on first use and after a failure."""

    def __init__(self, backend: Backend, name: str) -> None:
        self.backend = backend
        self.pool = ThreadPool(minthreads=1, maxthreads=1, name=name)
        self._connection: Any = None

    def connection(self) -> Any:  # on the worker thread
        if self._connection is None:
            self._connection = self.backend.connect()
        return self._connection

    def forget(self) -> None:  # on the worker thread, after an error: reconnect next time
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                self.backend.close(connection)
            except Exception:
                log.debug("closing a failed store connection failed too")

    def call(self, reactor: Any, function: Callable[..., T], *args: Any) -> Deferred[T]:
        def run() -> T:
            try:
                return function(self.connection(), *args)
            except BaseException:
                self.forget()
                raise

        return deferToThreadPool(reactor, self.pool, run)

    def close(self, reactor: Any) -> Deferred[None]:
        """Close the connection on its thread, then end the thread."""

        def stopped(_: object) -> None:
            # ThreadPool.stop joins the thread: cheap now that nothing is queued on it.
            self.pool.stop()

        return deferToThreadPool(reactor, self.pool, self.forget).addBoth(stopped)


@implementer(IShareStore)
class BatchedStore:
    """An :class:`IShareStore` over one :class:`Backend`."""

    def __init__(self, backend: Backend, reactor: Any, daemon: str | None = None) -> None:
        self.backend = backend
        self.reactor = reactor
        self.daemon = daemon or default_daemon_name()
        self._writer = _Worker(backend, "sv2proxy-store-writer")
        self._reader = _Worker(backend, "sv2proxy-store-reader")
        self._queued = Batch()
        self._writing = False
        self._ready = False
        self._stopping: Deferred[None] | None = None
        self._retry_call: IDelayedCall | None = None
        self._retry_delay = FIRST_RETRY
        self._listeners: list[Callable[[int], object]] = []
        self._idle_waiters: list[Deferred[None]] = []
        self.last_ticket = 0
        self.durable = 0
        #: Commits made, and the shares in them (for the benchmarks and /metrics).
        self.commits = 0
        self.shares_committed = 0
        self.last_error: str | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Deferred[None]:
        """Start the threads and migrate; retries with backoff until the database answers."""
        self._writer.pool.start()
        self._reader.pool.start()
        ready: Deferred[None] = Deferred()
        self._migrate(ready)
        return ready

    def _migrate(self, ready: Deferred[None]) -> None:
        def migrated(version: int) -> None:
            log.info(
                "share store {store} ready (schema version {version})", store=self.backend.description, version=version
            )
            self._ready = True
            self._retry_delay = FIRST_RETRY
            self.last_error = None
            ready.callback(None)
            self._kick()

        def failed(failure: Failure) -> None:
            if self._stopping is not None:
                ready.errback(failure)
                return
            self.last_error = failure.getErrorMessage()
            delay = self._next_delay()
            log.error(
                "share store {store} cannot start: {error}; retrying in {delay:.1f} s",
                store=self.backend.description,
                error=self.last_error,
                delay=delay,
            )
            self._retry_call = self.reactor.callLater(delay, self._migrate, ready)

        self._writer.call(self.reactor, self.backend.migrate).addCallbacks(migrated, failed)

    def stop(self) -> Deferred[None]:
        """Commit what is queued (one last try if the database is failing), then close."""
        if self._stopping is not None:
            return self._stopping
        self._stopping = Deferred()
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        self._retry_call = None
        if self._ready:
            self._kick()
            idle = self._when_idle()
        else:
            idle = succeed(None)
        idle.addBoth(self._close)
        return self._stopping

    def _close(self, _: object) -> None:
        if self._queued.shares:
            log.error(
                "share store {store} stopped with {count} share(s) not written: they were never acknowledged",
                store=self.backend.description,
                count=len(self._queued.shares),
            )
        done = self._writer.close(self.reactor)
        done.addBoth(lambda _: self._reader.close(self.reactor))
        done.addBoth(lambda _: self._stopping.callback(None))  # type: ignore[union-attr]

    def _when_idle(self) -> Deferred[None]:
        if not self._writing:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    # -- recording (reactor thread) ----------------------------------------------------

    def record_share(
        self, worker: str, channel_id: int, job_id: int, difficulty: float, at: float, is_block: bool
    ) -> int:
        self.last_ticket += 1
        queued = self._queued
        queued.shares.append((worker, channel_id, job_id, difficulty, at, 1 if is_block else 0))
        queued.ticket = self.last_ticket
        if not self._writing:
            self._kick()
        return self.last_ticket

    def count_rejected(self, worker: str, reason: str) -> None:
        rejected = self._queued.rejected
        key = (worker, reason)
        rejected[key] = rejected.get(key, 0) + 1
        if not self._writing:
            self._kick()

    def record_block(self, block: BlockRecord) -> None:
        blocks = self._queued.blocks
        blocks[block.hash] = merge_block(blocks.get(block.hash), block)
        if not self._writing:
            self._kick()

    def record_upstream_event(self, event: UpstreamEventRecord) -> None:
        self._queued.events.append(event)
        if not self._writing:
            self._kick()

    def add_durable_listener(self, listener: Callable[[int], object]) -> None:
        self._listeners.append(listener)

    @property
    def pending(self) -> bool:
        """Whether some recorded share is not durable yet."""
        return self.durable < self.last_ticket

    # -- the commit loop ---------------------------------------------------------------

    def _kick(self) -> None:
        if self._writing or not self._ready or self._retry_call is not None or not self._queued:
            return
        batch, self._queued = self._queued, Batch()
        self._writing = True
        now = self.reactor.seconds()
        done = self._writer.call(self.reactor, self.backend.write, self.daemon, batch, now)
        done.addCallbacks(self._written, self._failed, callbackArgs=(batch,), errbackArgs=(batch,))

    def _written(self, _: object, batch: Batch) -> None:
        self._writing = False
        self._retry_delay = FIRST_RETRY
        self.last_error = None
        self.commits += 1
        self.shares_committed += len(batch.shares)
        if batch.ticket > self.durable:
            self.durable = batch.ticket
            for listener in tuple(self._listeners):
                try:
                    listener(self.durable)
                except Exception:
                    log.failure("a share store listener failed")
        self._kick()
        if not self._writing:
            self._settle_idle()

    def _failed(self, failure: Failure, batch: Batch) -> None:
        self._writing = False
        batch.absorb(self._queued)
        self._queued = batch
        self.last_error = failure.getErrorMessage()
        if self._stopping is not None:
            log.error(
                "share store {store}: the last commit failed at shutdown: {error}",
                store=self.backend.description,
                error=self.last_error,
            )
            self._settle_idle()
            return
        delay = self._next_delay()
        log.error(
            "share store {store}: commit of {count} share(s) failed: {error}; retrying in {delay:.1f} s"
            " (their miners are not acknowledged until it succeeds)",
            store=self.backend.description,
            count=len(batch.shares),
            error=self.last_error,
            delay=delay,
        )
        self._retry_call = self.reactor.callLater(delay, self._retry)

    def _retry(self) -> None:
        self._retry_call = None
        self._kick()

    def _next_delay(self) -> float:
        delay = self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, MAX_RETRY)
        return delay

    def _settle_idle(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    # -- queries (reader thread) --------------------------------------------------------

    def worker_stats(self, now: float, worker: str | None = None) -> Deferred[list[WorkerStats]]:
        return self._reader.call(self.reactor, queries.worker_stats, self.backend, now, worker)

    def blocks(self, limit: int = 50) -> Deferred[list[BlockRecord]]:
        return self._reader.call(self.reactor, queries.blocks, self.backend, limit)

    def upstream_events(self, limit: int = 50) -> Deferred[list[UpstreamEventRecord]]:
        return self._reader.call(self.reactor, queries.upstream_events, self.backend, limit)

    def payouts(self, window: int) -> Deferred[list[tuple[str, float, float]]]:
        return self._reader.call(self.reactor, queries.payouts, self.backend, window)

    def hash_rate_history(
        self, now: float, span: float, buckets: int, worker: str | None = None
    ) -> Deferred[list[tuple[float, float]]]:
        return self._reader.call(self.reactor, queries.hash_rate_history, self.backend, now, span, buckets, worker)
