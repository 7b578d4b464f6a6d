"""The shared store: PostgreSQL through psycopg 3, for several daemons writing at once.

Shares are loaded with COPY (an order of magnitude faster than INSERTs); the other tables are
upserts that tolerate other daemons' rows.  Migrations hold an advisory lock, so daemons that
start together apply each one exactly once.

PostgreSQL's text cannot hold NUL, and no UTF-8 holds a lone surrogate; a peer's name with one
would fail every commit of its batch.  The protocol edges refuse such names; here they are
stored with U+FFFD in place of what cannot be, as a second line of defence.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import psycopg

from sv2proxy.config import redact_url
from sv2proxy.store import schema
from sv2proxy.store.backend import Backend, Batch, ShareTuple

#: pg_advisory_xact_lock key for migrations ("sv2p" in ASCII).
MIGRATION_LOCK = 0x73763270
CONNECT_TIMEOUT = 10

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def redact(url: str) -> str:
    """``url`` without its passwords (user info, ``password`` and ``sslpassword``), for logs."""
    return redact_url(url)


def storable(text: str) -> str:
    """``text`` with U+FFFD for each character PostgreSQL text cannot hold (NUL, lone surrogates)."""
    return _UNSTORABLE.sub(REPLACEMENT, text) if _UNSTORABLE.search(text) else text


def _storable(text: str | None) -> str | None:
    return storable(text) if isinstance(text, str) else text


class PostgreSQLBackend(Backend):
    dialect = schema.POSTGRESQL

    data_errors = (*Backend.data_errors, psycopg.DataError, psycopg.IntegrityError)

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
            # Names repeat from share to share: each is checked once per batch.
            names: dict[str, str] = {}
            for row in rows:
                worker = row[0]
                name = names.get(worker)
                if name is None:
                    name = names[worker] = _storable(worker)  # type: ignore[assignment]
                if name is worker:
                    write_row((daemon, *row))
                else:
                    write_row((daemon, name, *row[1:]))

    def write(self, connection: Any, daemon: str, batch: Batch, now: float) -> None:
        # Shares are cleaned as COPY writes them; the rest of a batch is small.
        rejected: dict[tuple[str, str], int] = {}
        for (worker, reason), count in batch.rejected.items():
            # Two names may become one: their counts add up (one statement may not update a row twice).
            key = (_storable(worker), _storable(reason))
            rejected[key] = rejected.get(key, 0) + count  # type: ignore[index]
        clean = replace(
            batch,
            rejected=rejected,
            blocks={
                h: replace(b, hash=_storable(b.hash), worker=_storable(b.worker), reason=_storable(b.reason))
                for h, b in batch.blocks.items()
            },
            events=[replace(e, url=_storable(e.url), reason=_storable(e.reason)) for e in batch.events],
        )
        super().write(connection, storable(daemon), clean, now)

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
