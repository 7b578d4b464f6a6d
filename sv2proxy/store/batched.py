"""The share store every backend shares: queue on the reactor thread, group-commit off it.

Recording is a list append.  One writer thread commits whatever has been queued as one
transaction; while it runs, the next batch fills, so the commit rate adapts to the share rate
(one fsync for one share at a trickle, one for thousands under load).  When a commit fails
(disk full, database restarting) the batch is kept, merged with what came since and retried
with backoff; nothing is acknowledged meanwhile.  Queries use a second thread and connection.

A commit that fails on the data itself (the backend's ``data_errors``: text the database refuses,
a number out of range) would fail the same way forever, and hold every later acknowledgement
with it.  That batch is bisected instead: its good records are committed, and each record that
fails on its own is *set aside*: appended (and fsynced) to the quarantine file, a JSON object a
line, and logged.  Only then does the batch's ticket advance.  So a set-aside share is still
durable, just not in the database: its miner is acknowledged like the others (a batched
SubmitShares.Success cannot leave one share out), and the operator finds it, with the database's
error, in the file.  If the file cannot be written either, the records stay queued and are
retried like an outage's.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from sv2proxy.store import queries
from sv2proxy.store.backend import SHARE, Backend, Batch, Entry, merge_block
from sv2proxy.store.interface import IShareStore
from sv2proxy.store.records import BlockRecord, UpstreamEventRecord, WorkerStats

log = Logger()

T = TypeVar("T")

#: Retry delays after a failed commit or connection: doubling from FIRST to MAX seconds.
FIRST_RETRY = 0.5
MAX_RETRY = 30.0

#: Set-aside records logged one by one per commit; the rest are counted.
LOGGED_SET_ASIDE = 5


@dataclass(frozen=True, slots=True)
class SetAside:
    """A record the database refused on its own, and why."""

    entry: Entry
    error: str

    @property
    def kind(self) -> str:
        return self.entry[0]

    def describe(self) -> str:
        """The record for a log line: every text repr'd (a worker name may hold anything)."""
        kind, record = self.entry
        if kind == SHARE:
            worker, channel_id, job_id, difficulty, at, _ = record
            return f"share of worker {worker!r} (channel {channel_id}, job {job_id}, difficulty {difficulty!r})"
        return f"{kind} {record!r}"

    def as_json(self, daemon: str, now: float) -> dict[str, Any]:
        kind, record = self.entry
        if kind == SHARE:
            fields = dict(zip(("worker", "channel_id", "job_id", "difficulty", "at", "is_block"), record, strict=True))
        elif isinstance(record, tuple):  # a rejected-share count: ((worker, reason), count)
            (worker, reason), count = record
            fields = {"worker": worker, "reason": reason, "count": count}
        else:
            fields = asdict(record)
        return {"set_aside_at": now, "daemon": daemon, "kind": kind, "error": self.error, "record": fields}


class _Interrupted(Exception):
    """An outage in the middle of a bisected commit: what is left to commit, what was set aside."""

    def __init__(self, cause: BaseException, remaining: Batch, set_aside: list[SetAside], shares: int) -> None:
        super().__init__(str(cause))
        self.remaining = remaining
        self.set_aside = set_aside
        #: Shares committed before the outage.
        self.shares = shares


def _error_text(error: BaseException) -> str:
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def default_daemon_name() -> str:
    """How this daemon's rows are told from others' in a shared database: the host name."""
    return socket.gethostname() or "sv2proxy"


class StoreNotReady(Exception):
    """A read asked before the store is up (starting, migrating, or its database unreachable)."""


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

    def __init__(
        self, backend: Backend, reactor: Any, daemon: str | None = None, quarantine: Path | None = None
    ) -> None:
        self.backend = backend
        self.reactor = reactor
        self.daemon = daemon or default_daemon_name()
        #: Where records the database refuses are kept (None: only in the log; tests and tools).
        self.quarantine = quarantine
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
        #: Records the database refused, kept in the quarantine file instead.
        self.set_aside = 0
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
        done = self._writer.call(self.reactor, self._commit, batch, now)
        done.addCallbacks(self._written, self._failed, callbackArgs=(batch,), errbackArgs=(batch,))

    def _commit(self, connection: Any, batch: Batch, now: float) -> list[SetAside]:  # on the writer thread
        """Commit ``batch``; the records set aside (in the quarantine file already) if some failed alone."""
        backend = self.backend
        try:
            backend.write(connection, self.daemon, batch, now)
            return []
        except backend.data_errors as e:
            error: BaseException = e
        return self._salvage(connection, batch.entries(), error, now)

    def _salvage(self, connection: Any, entries: list[Entry], error: BaseException, now: float) -> list[SetAside]:
        """Commit all of ``entries`` (which failed together with ``error``) but the records that
        fail alone: halves are committed in order, a failing half is halved again, so k bad
        records among n cost about 2k log2(n) small commits."""
        backend = self.backend
        set_aside: list[SetAside] = []
        shares = 0
        # Parts not committed yet, the next one last; None: not tried on its own yet.
        pending: list[tuple[list[Entry], BaseException | None]] = [(entries, error)]
        while pending:
            part, failed = pending.pop()
            if failed is None:
                try:
                    backend.write(connection, self.daemon, Batch.of(part), now)
                    shares += sum(1 for kind, _ in part if kind == SHARE)
                    continue
                except backend.data_errors as e:
                    failed = e
                except Exception as e:
                    left = part + [entry for later, _ in reversed(pending) for entry in later]
                    self._keep_set_aside(set_aside, now, left, e, shares)
                    raise _Interrupted(e, Batch.of(left), set_aside, shares) from e
            if len(part) == 1:
                set_aside.append(SetAside(part[0], _error_text(failed)))
                continue
            half = len(part) // 2
            pending.append((part[half:], None))
            pending.append((part[:half], None))
        self._keep_set_aside(set_aside, now, [], error, shares)
        return set_aside

    def _keep_set_aside(
        self, set_aside: list[SetAside], now: float, left: list[Entry], cause: BaseException, shares: int
    ) -> None:
        """Append ``set_aside`` to the quarantine file, durably; if it cannot be, they stay queued."""
        if not set_aside or self.quarantine is None:
            return
        lines = "".join(
            json.dumps(record.as_json(self.daemon, now), ensure_ascii=True, default=repr) + "\n" for record in set_aside
        )
        try:
            self.quarantine.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            created = not self.quarantine.exists()
            with open(self.quarantine, "a", encoding="ascii", opener=_private) as file:
                file.write(lines)
                file.flush()
                os.fsync(file.fileno())
            if created:
                # A new file's name lives in its directory: made durable too, or a power cut
                # could lose the file with records whose shares were acknowledged.
                directory = os.open(self.quarantine.parent, os.O_RDONLY)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)
        except OSError as e:
            kept = [record.entry for record in set_aside] + left
            raise _Interrupted(e, Batch.of(kept), [], shares) from cause

    def _written(self, set_aside: Sequence[SetAside], batch: Batch) -> None:
        self._writing = False
        self._retry_delay = FIRST_RETRY
        self.last_error = None
        self.commits += 1
        self.shares_committed += len(batch.shares) - sum(1 for record in set_aside if record.kind == SHARE)
        self._report_set_aside(set_aside)
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
        if isinstance(failure.value, _Interrupted):
            # Part of the batch is committed (or set aside): only the rest may be written again.
            interrupted = failure.value
            self.shares_committed += interrupted.shares
            self._report_set_aside(interrupted.set_aside)
            interrupted.remaining.ticket = batch.ticket
            batch = interrupted.remaining
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

    def _report_set_aside(self, set_aside: Sequence[SetAside]) -> None:
        if not set_aside:
            return
        self.set_aside += len(set_aside)
        where = f"kept in {self.quarantine}" if self.quarantine is not None else "kept nowhere else"
        for record in set_aside[:LOGGED_SET_ASIDE]:
            log.error(
                "share store {store} refused a record on its own, set aside ({where}): {record}: {error}",
                store=self.backend.description,
                where=where,
                record=record.describe(),
                error=record.error,
            )
        if len(set_aside) > LOGGED_SET_ASIDE:
            log.error(
                "share store {store}: {count} more records of the same commit set aside ({where})",
                store=self.backend.description,
                count=len(set_aside) - LOGGED_SET_ASIDE,
                where=where,
            )

    def _next_delay(self) -> float:
        delay = self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, MAX_RETRY)
        return delay

    def _settle_idle(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    # -- queries (reader thread) --------------------------------------------------------

    def _read(self, query: Callable[..., T], *args: Any) -> Deferred[T]:
        """A query on the reader thread, once the schema exists (StoreNotReady before)."""
        if not self._ready or self._stopping is not None:
            # Stopping, the reader's pool may be gone: a query queued there would never answer.
            return fail(StoreNotReady(f"share store {self.backend.description} is not ready yet ({self._why_not()})"))
        return self._reader.call(self.reactor, query, *args)

    def _why_not(self) -> str:
        if self._stopping is not None:
            return "stopping"
        return f"failing: {self.last_error}" if self.last_error else "starting"

    def worker_stats(self, now: float, worker: str | None = None) -> Deferred[list[WorkerStats]]:
        return self._read(queries.worker_stats, self.backend, now, worker)

    def blocks(self, limit: int = 50) -> Deferred[list[BlockRecord]]:
        return self._read(queries.blocks, self.backend, limit)

    def upstream_events(self, limit: int = 50) -> Deferred[list[UpstreamEventRecord]]:
        return self._read(queries.upstream_events, self.backend, limit)

    def payouts(self, window: int) -> Deferred[list[tuple[str, float, float]]]:
        return self._read(queries.payouts, self.backend, window)

    def hash_rate_history(
        self, now: float, span: float, buckets: int, worker: str | None = None
    ) -> Deferred[list[tuple[float, float]]]:
        return self._read(queries.hash_rate_history, self.backend, now, span, buckets, worker)
