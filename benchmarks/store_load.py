"""Child process of :mod:`benchmarks.bench_store`: one backend under a sustained share load.

``python -m benchmarks.store_load URL SECONDS RATE`` records shares on the reactor thread as a
busy pool would and lets the store group-commit them.  RATE 0 offers them as fast as the store
takes them (a chunk every reactor turn while fewer than MAX_QUEUED wait: the ceiling); a RATE
offers that many shares/s in 5 ms slices.  Prints one JSON line: shares made durable per second,
commits, and the delay from recording a share to its commit (p50/p99), which is what a miner's
acknowledgement waits for.

Everything goes through the store's public API: shares are counted as durable only when a
durable listener has heard of their tickets, and afterwards the store's own query
(``worker_stats``) must find exactly that many more shares than before the run, or the run fails.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from sv2proxy.store.batched import BatchedStore
from sv2proxy.store.service import backend_for

#: Shares recorded per reactor turn at full speed.
CHUNK = 2000
#: At full speed, no more than this many wait for a commit (the figure is the store's pace,
#: not a runaway queue).
MAX_QUEUED = 20_000
#: A paced load arrives in slices this long.
SLICE = 0.005
#: Shares are stamped ``AT_BASE + time.perf_counter()``.
AT_BASE = 1.8e9


async def measure(url: str, seconds: float, offered: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        store = BatchedStore(backend_for(url, Path(directory)), reactor, daemon="bench")
        await store.start()
        before = await _stored(store)
        recorded_at: list[float] = []
        delays: list[float] = []

        def durable(ticket: int) -> None:
            now = time.perf_counter()
            while len(delays) < ticket:
                delays.append(now - recorded_at[len(delays)])

        store.add_durable_listener(durable)
        start = time.perf_counter()
        worker = [f"rig{i}" for i in range(100)]
        job = 0
        while (now := time.perf_counter()) - start < seconds:
            if offered:
                due = int((now - start) * offered) - store.last_ticket
                chunk = max(0, due)
            else:
                chunk = CHUNK if store.last_ticket - store.durable < MAX_QUEUED else 0
            for i in range(chunk):
                recorded_at.append(now)
                store.record_share(worker[i % 100], i % 100, job, 1.5, AT_BASE + now, False)
            job += 1
            await deferLater(reactor, SLICE if offered else 0, lambda: None)
        while store.durable < store.last_ticket:
            await deferLater(reactor, 0.001, lambda: None)
        elapsed = time.perf_counter() - start
        commits, shares = store.commits, len(delays)
        stored = await _stored(store) - before
        await store.stop()
    if stored != shares or shares != store.last_ticket:
        raise RuntimeError(f"{shares} of {store.last_ticket} shares reported durable but {stored} found in the store")
    delays.sort()
    return {
        "shares_per_second": shares / elapsed,
        "shares": shares,
        "commits": commits,
        "p50_ms": delays[len(delays) // 2] * 1000,
        "p99_ms": delays[int(len(delays) * 0.99)] * 1000,
    }


async def _stored(store: BatchedStore) -> int:
    """How many shares the store's query finds (every share here is within its last day)."""
    stats = await store.worker_stats(AT_BASE + time.perf_counter() + 1)
    return sum(s.shares_24h for s in stats)


def main() -> None:
    url, seconds, offered = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    result: dict[str, float] = {}
    failures: list[Failure] = []

    async def run() -> None:
        try:
            result.update(await measure(url, seconds, offered))
        finally:
            reactor.stop()

    reactor.callWhenRunning(lambda: ensureDeferred(run()).addErrback(failures.append))
    reactor.run()
    if failures:
        sys.exit(f"store_load: {failures[0].getTraceback()}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
