"""New tip at the node -> SetNewPrevHash on 1,000 channels (issue: solo mining), end to end.

The anchor: ckpool hands one miner new work a median 32 ms after the block reaches a regtest
Bitcoin Core (-blocknotify).  Goals: first channel <= 25 ms p50, last of 1,000 <= 50 ms p99.
Runs :mod:`benchmarks.tip_latency` in a subprocess (it needs a reactor of its own).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from benchmarks import Row

CHANNELS = 1_000
FIRST_P50_GOAL_MS = 25.0
LAST_P99_GOAL_MS = 50.0


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run(quick: bool) -> list[Row]:
    rounds = 5 if quick else 20
    worker = subprocess.run(
        [sys.executable, "-m", "benchmarks.tip_latency", str(CHANNELS), str(rounds)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result = json.loads(worker.stdout.strip().splitlines()[-1])
    first, last = result["first_ms"], result["last_ms"]
    return [
        Row(
            f"new tip -> SetNewPrevHash, first of {CHANNELS:,} channels p50",
            statistics.median(first),
            "ms",
            FIRST_P50_GOAL_MS,
            lower_is_better=True,
        ),
        Row(f"new tip -> SetNewPrevHash, last of {CHANNELS:,} channels p50", statistics.median(last), "ms"),
        Row(
            f"new tip -> SetNewPrevHash, last of {CHANNELS:,} channels p99",
            _percentile(last, 0.99),
            "ms",
            LAST_P99_GOAL_MS,
            lower_is_better=True,
        ),
    ]
