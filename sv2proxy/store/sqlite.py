"""The embedded store: one SQLite file in the data directory, in WAL mode.

``synchronous=FULL`` makes every commit reach the disk before it returns (WAL's default,
NORMAL, can lose the last commits on a power cut, and those are shares we acknowledged).  Group
commit keeps that affordable: one fsync covers every share queued while the last one ran.
Readers (the HTTP API) use their own connection and never block the writer.

A batch's shares and rejected-share counts go in as multi-row statements, not ``executemany``:
the sqlite3 module releases the GIL around every statement it steps, and each time the writer
thread wants it back it may wait a whole switch interval (5 ms) while the reactor thread is busy,
which is exactly when shares pour in.  One step per row made a commit of 10,000 shares take from
20 ms to seconds depending on the reactor's load; one step per 4,096 rows pays a few such waits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from itertools import chain, repeat
from pathlib import Path
from typing import Any

from sv2proxy.store import schema
from sv2proxy.store.backend import Backend, ShareTuple

#: How long a statement waits for another process's lock before failing (seconds).
BUSY_TIMEOUT = 10.0

#: Rows per multi-row statement: powers of two up to 4,096 (4,096 shares of 6 parameters, plus
#: the daemon's name and the row count, stay under the 32,766 bound parameters of SQLite's default
#: build; a build with a lower limit gets smaller statements).  A batch goes in as statements of
#: the largest size while it fills one, then one statement of the smallest size that holds the
#: rest, padded with NULLs the statement skips: one statement per 4,096 rows, and never more
#: padding than rows (binding a parameter, not SQLite, is most of a row's cost).  So a table
#: needs at most thirteen statement texts, each compiled once per connection, then taken from the
#: sqlite3 module's statement cache.
LARGEST_STATEMENT = 4096


class _ManyRows:
    """An INSERT of many rows in one statement; the daemon's name is bound once, first.

    Placeholders are plain ``?``, numbered as written: ``?NNN`` ones make SQLite's compile time
    grow with the square of their count (most of a second for 4,096 rows).  The last parameter is
    how many rows are real: the padding after them is never read.

    ``OR ROLLBACK``: a statement that writes many rows and may fail half-way otherwise keeps a
    statement journal, to undo just itself, which SQLite spills to a temporary file past 64 KiB:
    it cost more than the rows (3 µs a share instead of 1).  A failed write rolls the whole batch back
    and retries it anyway, so ending the transaction on the spot loses nothing.
    """

    def __init__(self, table: str, columns: Sequence[str], conflict: str = "") -> None:
        self.width = len(columns)
        self._head = (
            f"INSERT OR ROLLBACK INTO {table} (daemon, {', '.join(columns)})"
            f" SELECT ?, {', '.join(f'column{i}' for i in range(1, self.width + 1))} FROM (VALUES "
        )
        self._tail = ") LIMIT ?" + (f" {conflict}" if conflict else "")
        self._row = "(" + ", ".join("?" * self.width) + ")"
        #: Statement texts by row count, built on first use (by the writer thread only).
        self._statements: dict[int, str] = {}

    def statement(self, rows: int) -> str:
        text = self._statements.get(rows)
        if text is None:
            text = self._statements[rows] = self._head + ", ".join([self._row] * rows) + self._tail
        return text

    def largest(self, connection: sqlite3.Connection) -> int:
        """The most rows, a power of two up to LARGEST_STATEMENT, whose parameters SQLite binds."""
        rows = (connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 2) // self.width
        return min(LARGEST_STATEMENT, 1 << (rows.bit_length() - 1))

    def run(self, cursor: sqlite3.Cursor, daemon: str, rows: Sequence[Iterable[Any]]) -> None:
        # Rows keep their order: a VALUES list is inserted, and numbered, as written.
        largest = self.largest(cursor.connection)
        start, count = 0, len(rows)
        while start < count:
            left = count - start
            size = largest if left >= largest else 1 << (left - 1).bit_length()
            parameters: list[Any] = [daemon]
            parameters.extend(chain.from_iterable(rows[start : start + size]))
            if left < size:
                parameters.extend(repeat(None, (size - left) * self.width))
            parameters.append(min(left, size))
            cursor.execute(self.statement(size), parameters)
            start += size


class SQLiteBackend(Backend):
    dialect = schema.SQLITE
    data_errors = (*Backend.data_errors, sqlite3.DataError, sqlite3.IntegrityError)

    def __init__(self, path: Path, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.description = f"SQLite {path}"
        self._shares = _ManyRows("shares", ("worker", "channel_id", "job_id", "difficulty", "at", "is_block"))
        self._rejected = _ManyRows(
            "rejected_shares",
            ("worker", "reason", "count"),
            "ON CONFLICT (daemon, worker, reason) DO UPDATE SET count = rejected_shares.count + excluded.count",
        )

    def connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout)
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise sqlite3.OperationalError(f"{self.path}: cannot use WAL journal mode (got {mode})")
        connection.execute("PRAGMA synchronous = FULL")
        return connection

    def insert_shares(self, cursor: sqlite3.Cursor, daemon: str, rows: list[ShareTuple]) -> None:
        self._shares.run(cursor, daemon, rows)

    def add_rejected(self, cursor: sqlite3.Cursor, daemon: str, counts: dict[tuple[str, str], int]) -> None:
        # The keys are unique within a batch, so no row of the statement conflicts with another.
        self._rejected.run(cursor, daemon, [(worker, reason, count) for (worker, reason), count in counts.items()])

    def begin(self, cursor: sqlite3.Cursor) -> None:
        # IMMEDIATE takes the write lock now, so two daemons on one file queue rather than deadlock.
        cursor.execute("BEGIN IMMEDIATE")

    def migrate(self, connection: sqlite3.Connection) -> int:
        cursor = connection.cursor()
        self.begin(cursor)
        try:
            cursor.execute(schema.VERSION_TABLE)
            row = cursor.execute("SELECT version FROM schema_version").fetchone()
            version = self.run_migrations(cursor, row[0] if row else 0)
            cursor.execute("COMMIT")
        except BaseException:
            self.rollback(connection, cursor)
            raise
        finally:
            cursor.close()
        return version
