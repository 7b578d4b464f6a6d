"""Durable share accounting (issue: store): sustained shares/s made durable, with group commit.

Each backend runs in a child process (:mod:`benchmarks.store_load`) with a real reactor and the
store's real writer thread: SQLite in a temporary file (WAL, ``synchronous=FULL``: every commit
is on disk before the shares in it are acknowledged) and PostgreSQL on a private server started
from the distribution's binaries (skipped, with a note, when none is installed).  "durable
shares/s" offers shares as fast as the store takes them (its ceiling); "ack delay" offers 20,000
shares/s, the issue's goal, and measures from recording a share to the commit that makes it
durable: what a miner's acknowledgement waits for at that load.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks import Row
from sv2proxy.testing import postgresql

ROOT = Path(__file__).resolve().parent.parent


#: The paced load of the ack delay rows (shares/s).
PACED = 20_000


def _load(url: str, seconds: float, offered: float = 0) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.store_load", url, str(seconds), str(offered)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def _rows(name: str, url: str, seconds: float, goal: float | None) -> list[Row]:
    ceiling = _load(url, seconds)
    paced = _load(url, seconds, PACED)
    return [
        Row(f"store: durable shares/s into {name}", ceiling["shares_per_second"], "shares/s", goal),
        Row(
            f"store: shares per commit at the ceiling ({name})",
            ceiling["shares"] / max(1, ceiling["commits"]),
            "shares",
        ),
        Row(f"store: ack delay at {PACED:,}/s p50 ({name})", paced["p50_ms"], "ms"),
        Row(f"store: ack delay at {PACED:,}/s p99 ({name})", paced["p99_ms"], "ms"),
    ]


def run(quick: bool) -> list[Row]:
    seconds = 1.0 if quick else 5.0
    rows = _rows("SQLite", "sqlite:bench.sqlite3", seconds, 20_000)
    try:
        with postgresql.server() as server:
            url = postgresql.with_database(server, "sv2proxy_bench")
            rows += _rows("PostgreSQL", url, seconds, None)
    except postgresql.Unavailable as e:
        print(f"store: PostgreSQL skipped: {e}", file=sys.stderr)
    return rows
