"""What a SQL backend gives the store: connections, the dialect's statements, one batch's commit.

Everything here runs on a store thread, never on the reactor: each thread keeps its own
connection.  Statements are written with ``?`` placeholders; :meth:`Backend.sql` turns them
into the driver's own.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sv2proxy.store import schema
from sv2proxy.store.records import BlockRecord, UpstreamEventRecord

#: One accepted share as queued: (worker, channel_id, job_id, difficulty, at, is_block).  The
#: daemon's name, the same for every row, is added by the backend when it writes the batch.
ShareTuple = tuple[str, int, int, float, float, int]

#: The kinds of record a batch holds, as :meth:`Batch.entries` names them.
SHARE = "share"
REJECTED = "rejected"
BLOCK = "block"
EVENT = "event"

#: One record of a batch on its own: ``(SHARE, ShareTuple)``, ``(REJECTED, ((worker, reason),
#: count))``, ``(BLOCK, BlockRecord)`` or ``(EVENT, UpstreamEventRecord)``.
Entry = tuple[str, Any]


@dataclass(slots=True)
class Batch:
    """Everything queued between two commits; ``ticket`` is its last share's."""

    shares: list[ShareTuple] = field(default_factory=list)
    rejected: dict[tuple[str, str], int] = field(default_factory=dict)
    blocks: dict[str, BlockRecord] = field(default_factory=dict)
    events: list[UpstreamEventRecord] = field(default_factory=list)
    ticket: int = 0

    def __bool__(self) -> bool:
        return bool(self.shares or self.rejected or self.blocks or self.events)

    def absorb(self, later: Batch) -> None:
        """Add ``later``'s contents after this batch's own (a failed batch retried with new work)."""
        self.shares.extend(later.shares)
        for key, count in later.rejected.items():
            self.rejected[key] = self.rejected.get(key, 0) + count
        for block in later.blocks.values():
            self.blocks[block.hash] = merge_block(self.blocks.get(block.hash), block)
        self.events.extend(later.events)
        self.ticket = max(self.ticket, later.ticket)

    def entries(self) -> list[Entry]:
        """Every record of the batch on its own, in the order a commit writes them."""
        entries: list[Entry] = [(SHARE, share) for share in self.shares]
        entries.extend((REJECTED, item) for item in self.rejected.items())
        entries.extend((BLOCK, block) for block in self.blocks.values())
        entries.extend((EVENT, event) for event in self.events)
        return entries

    @classmethod
    def of(cls, entries: Iterable[Entry], ticket: int = 0) -> Batch:
        """The batch of ``entries`` (as :meth:`entries` gives them)."""
        batch = cls(ticket=ticket)
        for kind, record in entries:
            if kind == SHARE:
                batch.shares.append(record)
            elif kind == REJECTED:
                key, count = record
                batch.rejected[key] = batch.rejected.get(key, 0) + count
            elif kind == BLOCK:
                batch.blocks[record.hash] = merge_block(batch.blocks.get(record.hash), record)
            else:
                batch.events.append(record)
        return batch


def merge_block(older: BlockRecord | None, newer: BlockRecord) -> BlockRecord:
    """The newer status of a block, keeping what only the older record knew."""
    if older is None:
        return newer
    return BlockRecord(
        newer.hash,
        newer.status,
        older.at,
        newer.worker if newer.worker is not None else older.worker,
        newer.height if newer.height is not None else older.height,
        newer.reward if newer.reward is not None else older.reward,
        newer.reason or older.reason,
    )


INSERT_SHARE = (
    "INSERT INTO shares (daemon, worker, channel_id, job_id, difficulty, at, is_block) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
ADD_REJECTED = (
    "INSERT INTO rejected_shares (daemon, worker, reason, count) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (daemon, worker, reason) DO UPDATE SET count = rejected_shares.count + excluded.count"
)
UPSERT_BLOCK = (
    "INSERT INTO blocks (hash, daemon, worker, height, reward, status, reason, found_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (hash) DO UPDATE SET status = excluded.status, reason = excluded.reason,"
    " updated_at = excluded.updated_at, worker = COALESCE(excluded.worker, blocks.worker),"
    " height = COALESCE(excluded.height, blocks.height), reward = COALESCE(excluded.reward, blocks.reward)"
)
INSERT_EVENT = "INSERT INTO upstream_events (daemon, url, event, reason, at) VALUES (?, ?, ?, ?, ?)"


class Backend(ABC):
    """One kind of database: how to connect, migrate and commit a batch."""

    dialect: str
    #: Where the data is, for logs (never with a password).
    description: str
    #: What a write raises when the batch holds a value this database cannot store (text it
    #: refuses, a number out of range, a NULL where none may be): the same rows fail the same
    #: way however often they are retried, unlike an outage.  The drivers' own value errors
    #: (text that is not UTF-8, an int wider than 64 bits) come before the database sees the row.
    data_errors: tuple[type[BaseException], ...] = (UnicodeError, OverflowError)

    @abstractmethod
    def connect(self) -> Any:
        """A new DB-API connection in autocommit mode (transactions are begun explicitly)."""

    @abstractmethod
    def migrate(self, connection: Any) -> int:
        """Bring the schema up to date; returns the version it is at."""

    def sql(self, statement: str) -> str:
        return statement

    def floor(self, expression: str) -> str:
        """SQL for the floor of a non-negative ``expression``."""
        return f"CAST({expression} AS INTEGER)"  # SQLite truncates, which is the floor here

    def insert_shares(self, cursor: Any, daemon: str, rows: list[ShareTuple]) -> None:
        cursor.executemany(self.sql(INSERT_SHARE), [(daemon, *row) for row in rows])

    def add_rejected(self, cursor: Any, daemon: str, counts: dict[tuple[str, str], int]) -> None:
        cursor.executemany(
            self.sql(ADD_REJECTED), [(daemon, worker, reason, count) for (worker, reason), count in counts.items()]
        )

    def write(self, connection: Any, daemon: str, batch: Batch, now: float) -> None:
        """Commit ``batch`` in one transaction: all of it is durable when this returns, or none."""
        cursor = connection.cursor()
        self.begin(cursor)
        try:
            if batch.shares:
                self.insert_shares(cursor, daemon, batch.shares)
            if batch.rejected:
                self.add_rejected(cursor, daemon, batch.rejected)
            if batch.blocks:
                cursor.executemany(
                    self.sql(UPSERT_BLOCK),
                    [
                        (b.hash, daemon, b.worker, b.height, b.reward, b.status, b.reason, b.at, now)
                        for b in batch.blocks.values()
                    ],
                )
            if batch.events:
                cursor.executemany(
                    self.sql(INSERT_EVENT), [(daemon, e.url, e.event, e.reason, e.at) for e in batch.events]
                )
            cursor.execute("COMMIT")
        except BaseException:
            self.rollback(connection, cursor)
            raise
        finally:
            cursor.close()

    def begin(self, cursor: Any) -> None:
        cursor.execute("BEGIN")

    def rollback(self, connection: Any, cursor: Any) -> None:
        # A failed ROLLBACK means a broken connection, which the caller drops anyway.
        with contextlib.suppress(Exception):
            cursor.execute("ROLLBACK")

    def close(self, connection: Any) -> None:
        connection.close()

    def run_migrations(self, cursor: Any, current: int) -> int:
        """Apply the migrations after ``current`` inside the caller's transaction."""
        steps = schema.pending(self.dialect, current)
        for _, statements in steps:
            for statement in statements:
                cursor.execute(statement)
        version = steps[-1][0] if steps else current
        if version != current:
            cursor.execute("DELETE FROM schema_version")
            cursor.execute(self.sql("INSERT INTO schema_version (version) VALUES (?)"), (version,))
        return version


def fetch_all(connection: Any, backend: Backend, statement: str, parameters: Iterable[Any] = ()) -> list[tuple]:
    """Run a read query on ``connection``; its rows."""
    cursor = connection.cursor()
    try:
        cursor.execute(backend.sql(statement), tuple(parameters))
        return list(cursor.fetchall())
    finally:
        cursor.close()
