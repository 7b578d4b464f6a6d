"""sv2proxy benchmarks: ``python -m benchmarks [--quick] [NAME ...]`` prints one table.

Adding a benchmark: create ``benchmarks/bench_<name>.py`` with a function
``run(quick: bool) -> list[Row]``.  ``python -m benchmarks`` imports every
``bench_*.py`` module in this directory, calls its ``run`` and prints all rows;
``python -m benchmarks codec`` runs only ``bench_codec.py``.  Measure with
:func:`rate` (best of several repeats, :func:`time.perf_counter`, one core) so
every figure is taken the same way, and give a row a ``goal`` when an issue
names a target: the table then says whether it is met.

Benchmarks are never timed assertions in tests (STYLE.md): they only report.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from time import perf_counter
from typing import NamedTuple


class Row(NamedTuple):
    """One figure: ``value`` ``unit``; ``goal`` the minimum wanted (the maximum for latencies)."""

    name: str
    value: float
    unit: str
    goal: float | None = None
    lower_is_better: bool = False

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        return self.value <= self.goal if self.lower_is_better else self.value >= self.goal


def _elapsed(op: Callable[[], object], n: int) -> float:
    loop = itertools.repeat(None, n)
    start = perf_counter()
    for _ in loop:
        op()
    return perf_counter() - start


def rate(op: Callable[[], object], *, quick: bool, work: float = 1.0) -> float:
    """The best rate of ``op`` in ``work`` units per second.

    ``op`` is called back to back (bind arguments with functools.partial to
    keep the call overhead out of the figure).  The loop is sized so one repeat
    takes about 40 ms (20 ms with ``quick``); the fastest of 7 repeats (3 with
    ``quick``) counts, which filters out scheduler noise.
    """
    repeat_seconds, repeats = (0.02, 3) if quick else (0.04, 7)
    n = 1
    while (elapsed := _elapsed(op, n)) < repeat_seconds / 4:
        n *= 4
    n = max(1, round(n * repeat_seconds / elapsed))
    best = min(_elapsed(op, n) for _ in range(repeats))
    return n * work / best


def rates(*ops: Callable[[], object], quick: bool) -> list[float]:
    """Best rates of several ops measured in alternation, for figures compared as a ratio.

    Repeats of each op alternate, so a burst of load from elsewhere on the machine slows them
    alike instead of skewing the ratio; more repeats than :func:`rate` because a ratio is
    judged against a goal.
    """
    repeat_seconds, repeats = (0.02, 5) if quick else (0.04, 15)
    sizes = []
    for op in ops:
        n = 1
        while (elapsed := _elapsed(op, n)) < repeat_seconds / 4:
            n *= 4
        sizes.append(max(1, round(n * repeat_seconds / elapsed)))
    best = [float("inf")] * len(ops)
    for _ in range(repeats):
        for i, (op, n) in enumerate(zip(ops, sizes, strict=True)):
            best[i] = min(best[i], _elapsed(op, n))
    return [n / elapsed for n, elapsed in zip(sizes, best, strict=True)]


__all__ = ["Row", "rate", "rates"]
