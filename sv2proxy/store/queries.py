"""The operators' questions, as SQL both dialects accept; each runs on a store reader thread."""

from __future__ import annotations

from typing import Any

from sv2proxy.store.backend import Backend, fetch_all
from sv2proxy.store.records import WINDOWS, BlockRecord, UpstreamEventRecord, WorkerStats, hash_rate

_WINDOW_SUMS = ", ".join("SUM(CASE WHEN at >= ? THEN difficulty ELSE 0 END)" for _ in WINDOWS)


def worker_stats(connection: Any, backend: Backend, now: float, worker: str | None = None) -> list[WorkerStats]:
    """Every worker seen in the last day (or just ``worker``), busiest over the last hour first."""
    longest = max(WINDOWS)
    where = "at >= ?" + (" AND worker = ?" if worker is not None else "")
    parameters: list[Any] = [now - window for window in WINDOWS] + [now - longest]
    if worker is not None:
        parameters.append(worker)
    rows = fetch_all(
        connection,
        backend,
        f"SELECT worker, {_WINDOW_SUMS}, COUNT(*), SUM(difficulty), MAX(at) FROM shares WHERE {where} GROUP BY worker",
        parameters,
    )
    blocks = dict(
        fetch_all(
            connection,
            backend,
            "SELECT worker, COUNT(*) FROM blocks WHERE worker IS NOT NULL"
            + (" AND worker = ?" if worker is not None else "")
            + " GROUP BY worker",
            [worker] if worker is not None else [],
        )
    )
    rejected: dict[str, dict[str, int]] = {}
    for name, reason, count in fetch_all(
        connection,
        backend,
        "SELECT worker, reason, SUM(count) FROM rejected_shares"
        + (" WHERE worker = ?" if worker is not None else "")
        + " GROUP BY worker, reason",
        [worker] if worker is not None else [],
    ):
        rejected.setdefault(name, {})[reason] = int(count)
    stats = []
    for row in rows:
        name = row[0]
        sums = row[1 : 1 + len(WINDOWS)]
        count, total, last = row[1 + len(WINDOWS) :]
        stats.append(
            WorkerStats(
                name,
                tuple(hash_rate(float(s or 0), window) for s, window in zip(sums, WINDOWS, strict=True)),
                int(count),
                float(total or 0),
                int(blocks.get(name, 0)),
                float(last) if last is not None else None,
                rejected.get(name, {}),
            )
        )
    # Workers with only rejected shares or old blocks still deserve a row when asked by name.
    if worker is not None and not stats and (worker in rejected or worker in blocks):
        stats.append(
            WorkerStats(
                worker, (0.0,) * len(WINDOWS), 0, 0.0, int(blocks.get(worker, 0)), None, rejected.get(worker, {})
            )
        )
    stats.sort(key=lambda s: (-s.hash_rates[2], s.worker))
    return stats


def blocks(connection: Any, backend: Backend, limit: int) -> list[BlockRecord]:
    rows = fetch_all(
        connection,
        backend,
        "SELECT hash, status, found_at, worker, height, reward, reason FROM blocks ORDER BY found_at DESC LIMIT ?",
        [limit],
    )
    return [
        BlockRecord(
            h, status, float(at), worker, int(height) if height is not None else None, reward and int(reward), reason
        )
        for h, status, at, worker, height, reward, reason in rows
    ]


def upstream_events(connection: Any, backend: Backend, limit: int) -> list[UpstreamEventRecord]:
    rows = fetch_all(
        connection,
        backend,
        "SELECT url, event, at, reason FROM upstream_events ORDER BY at DESC, id DESC LIMIT ?",
        [limit],
    )
    return [UpstreamEventRecord(url, event, float(at), reason) for url, event, at, reason in rows]


def payouts(connection: Any, backend: Backend, window: int) -> list[tuple[str, float, float]]:
    """PPLNS: each worker's share of the difficulty of the last ``window`` accepted shares."""
    rows = fetch_all(
        connection,
        backend,
        "SELECT worker, SUM(difficulty) FROM"
        " (SELECT worker, difficulty FROM shares ORDER BY at DESC, id DESC LIMIT ?) AS recent"
        " GROUP BY worker",
        [window],
    )
    total = sum(float(d) for _, d in rows)
    result = [(worker, float(d), float(d) / total if total > 0 else 0.0) for worker, d in rows]
    result.sort(key=lambda r: (-r[1], r[0]))
    return result


def hash_rate_history(
    connection: Any, backend: Backend, now: float, span: float, buckets: int, worker: str | None
) -> list[tuple[float, float]]:
    """``buckets`` equal slices of the last ``span`` seconds: (slice start, H/s), oldest first."""
    width = span / buckets
    start = now - span
    slot = backend.floor("(at - ?) / ?")
    where = "at >= ? AND at < ?" + (" AND worker = ?" if worker is not None else "")
    parameters: list[Any] = [start, width, start, now] + ([worker] if worker is not None else [])
    rows = fetch_all(
        connection,
        backend,
        f"SELECT {slot} AS slot, SUM(difficulty) FROM shares WHERE {where} GROUP BY slot",
        parameters,
    )
    sums = dict.fromkeys(range(buckets), 0.0)
    for slot, total in rows:
        slot = min(int(slot), buckets - 1)
        sums[slot] += float(total or 0)
    return [(start + slot * width, hash_rate(sums[slot], width)) for slot in range(buckets)]
