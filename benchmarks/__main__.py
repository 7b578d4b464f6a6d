"""``python -m benchmarks [--quick] [NAME ...]``: run every benchmarks/bench_*.py, print one table.

See :mod:`benchmarks` for how to add a benchmark module.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import Row

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    """The names of every ``bench_<name>.py`` here, sorted."""
    return sorted(path.stem.removeprefix("bench_") for path in HERE.glob("bench_*.py"))


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def format_table(rows: Sequence[Row]) -> str:
    """A plain text table, columns aligned, numbers right-aligned."""
    header = ("benchmark", "result", "unit", "goal", "met")
    body = [
        (
            row.name,
            _number(row.value),
            row.unit,
            "-" if row.goal is None else ("<= " if row.lower_is_better else ">= ") + _number(row.goal),
            {None: "-", True: "yes", False: "NO"}[row.met],
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in (header, *body)) for i in range(len(header))]
    right = {1, 3}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(cells) for cells in body)])


def main(argv: Sequence[str] | None = None) -> int:
    available = discover()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs, noisier figures")
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"only these modules ({', '.join(available)})"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(available))
    if unknown:
        parser.error(f"no benchmark module named {', '.join(unknown)}")

    started = time.perf_counter()
    rows: list[Row] = []
    for name in args.names or available:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        rows.extend(module.run(quick=args.quick))

    mode = "quick" if args.quick else "full"
    print(
        f"sv2proxy benchmarks ({mode}; {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.machine()}, one core)"
    )
    print()
    print(format_table(rows))
    print()
    print(f"{len(rows)} figures in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
