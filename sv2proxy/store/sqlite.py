"""The embedded store: one SQLite file in the data directory, in WAL mode.

``synchronous=FULL`` makes every commit reach the disk before it returns (WAL's default,
NORMAL, can lose the last commits on a power cut, and those are shares we acknowledged).  Group
commit keeps that affordable: one fsync covers every share queued while the last one ran.
Readers (the HTTP API) use their own connection and never block the writer.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sv2proxy.store import schema
from sv2proxy.store.backend import Backend

#: How long a statement waits for another process's lock before failing (seconds).
BUSY_TIMEOUT = 10.0


class SQLiteBackend(Backend):
    dialect = schema.SQLITE

    def __init__(self, path: Path, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.description = f"SQLite {path}"

    def connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout)
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise sqlite3.OperationalError(f"{self.path}: cannot use WAL journal mode (got {mode})")
        connection.execute("PRAGMA synchronous = FULL")
        return connection

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
