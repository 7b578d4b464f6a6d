"""The store's tables and their migrations, for both SQL dialects.

Migrations are numbered; ``schema_version`` holds the last one applied.  A migration is a list of
statements run in one transaction, so a daemon killed half-way leaves the previous version.  Each
is written once per dialect where they differ (types, auto-increment); queries stay portable.
"""

from __future__ import annotations

from collections.abc import Sequence

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

_ID = {SQLITE: "INTEGER PRIMARY KEY", POSTGRESQL: "BIGSERIAL PRIMARY KEY"}
_FLOAT = {SQLITE: "REAL", POSTGRESQL: "DOUBLE PRECISION"}


def _v1(dialect: str) -> list[str]:
    id_, real = _ID[dialect], _FLOAT[dialect]
    return [
        f"""CREATE TABLE shares (
            id {id_},
            daemon TEXT NOT NULL,
            worker TEXT NOT NULL,
            channel_id BIGINT NOT NULL,
            job_id BIGINT NOT NULL,
            difficulty {real} NOT NULL,
            at {real} NOT NULL,
            is_block SMALLINT NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX shares_at ON shares (at)",
        "CREATE INDEX shares_worker_at ON shares (worker, at)",
        """CREATE TABLE rejected_shares (
            daemon TEXT NOT NULL,
            worker TEXT NOT NULL,
            reason TEXT NOT NULL,
            count BIGINT NOT NULL,
            PRIMARY KEY (daemon, worker, reason)
        )""",
        f"""CREATE TABLE blocks (
            hash TEXT PRIMARY KEY,
            daemon TEXT NOT NULL,
            worker TEXT,
            height BIGINT,
            reward BIGINT,
            status TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            found_at {real} NOT NULL,
            updated_at {real} NOT NULL
        )""",
        f"""CREATE TABLE upstream_events (
            id {id_},
            daemon TEXT NOT NULL,
            url TEXT NOT NULL,
            event TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            at {real} NOT NULL
        )""",
        "CREATE INDEX upstream_events_at ON upstream_events (at)",
    ]


#: Migration n (1-based) is MIGRATIONS[n - 1]; append, never edit one that has shipped.
MIGRATIONS = (_v1,)

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"


def pending(dialect: str, current: int) -> Sequence[tuple[int, list[str]]]:
    """``(version, statements)`` of every migration after ``current``."""
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"the store is at schema version {current}, newer than this sv2proxy knows ({len(MIGRATIONS)}):"
            " upgrade sv2proxy or use another store"
        )
    return [(number, MIGRATIONS[number - 1](dialect)) for number in range(current + 1, len(MIGRATIONS) + 1)]
