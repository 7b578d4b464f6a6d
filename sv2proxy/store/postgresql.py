"""The shared store: PostgreSQL through psycopg 3, for several daemons writing at once.

Shares are loaded with COPY (an order of magnitude faster than INSERTs); the other tables are
upserts that tolerate other daemons' rows.  Migrations hold an advisory lock, so daemons that
start together apply each one exactly once.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from sv2proxy.store import schema
from sv2proxy.store.backend import Backend, ShareTuple

#: pg_advisory_xact_lock key for migrations ("sv2p" in ASCII).
MIGRATION_LOCK = 0x73763270
CONNECT_TIMEOUT = 10


def redact(url: str) -> str:
    """``url`` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


class PostgreSQLBackend(Backend):
    dialect = schema.POSTGRESQL

    def __init__(self, url: str) -> None:
        self.url = url
        self.description = f"PostgreSQL {redact(url)}"

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def floor(self, expression: str) -> str:
        return f"CAST(FLOOR({expression}) AS BIGINT)"  # PostgreSQL's CAST rounds

    def insert_shares(self, cursor: Any, daemon: str, rows: list[ShareTuple]) -> None:
        with cursor.copy(
            "COPY shares (daemon, worker, channel_id, job_id, difficulty, at, is_block) FROM STDIN"
        ) as copy:
            write_row = copy.write_row
            for row in rows:
                write_row((daemon, *row))

    def migrate(self, connection: psycopg.Connection[Any]) -> int:
        cursor = connection.cursor()
        self.begin(cursor)
        try:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            cursor.execute(schema.VERSION_TABLE)
            cursor.execute("SELECT version FROM schema_version")
            row = cursor.fetchone()
            version = self.run_migrations(cursor, row[0] if row else 0)
            cursor.execute("COMMIT")
        except BaseException:
            self.rollback(connection, cursor)
            raise
        finally:
            cursor.close()
        return version
