"""Proxy mode (issue: proxy mode): shares/s through the proxy, V1 in, V2 out, with 100 miners,
and the latency it adds per share against the same miners connected straight to the pool.

Two setups on loopback, each daemon a ``twistd sv2proxy`` configuration in its own process
(:mod:`benchmarks.proxy_daemon`), the miners in another (:mod:`benchmarks.proxy_clients`):

A. through the proxy: 100 Stratum V1 miners -> proxy (MiningService + V1 listener +
   UpstreamService) -> one extended channel, Noise -> pool (MiningService + V2 listener);
B. direct: the same 100 miners -> the pool's own V1 listener (same pool configuration).

The pool is a process of its own in A, as it is a machine of its own in a real deployment: in
the proxy's process it would charge the proxy with the pool's share validation, and the figure
would no longer be the proxy's.  The measured daemon (the proxy in A, the pool in B) gets the
first CPU to itself; the miners (and, in A, the pool) share the others (no pinning on a one-CPU
machine).  The "CPU use" rows say how much of its CPU the measured daemon used while shares/s
was counted: near 100 %, the figure is its own limit; well below, the miners or the pool held
it back (on a two-CPU machine they share one CPU in A).

Every share is real: the miners hash the job they were sent to find nonces meeting the channel's
difficulty (1e-9, about one hash in four), fixed by vardiff min = max at the proxy and at the
pool, so every share the proxy accepts also meets the pool's target and goes upstream; the run
fails unless the pool accepted exactly as many shares as the proxy forwarded and the miners had
accepted, with no share refused anywhere.

Figures (``time.monotonic()``, one clock for every process of the machine):

- shares/s: a closed loop, each miner keeping 16 submits in flight (the next one sent as each
  answer comes, as a miner submits what it finds without waiting for answers; with one in
  flight the two processes take turns and the daemon idles); answers counted over a fixed
  window (4 s; ``--quick`` 0.5 s) after a warm-up;
- submit -> answer: a miner's round trip from writing ``mining.submit`` to reading its answer,
  at a paced load of 10 shares/s per miner (1,000/s in all, far below either capacity, so the
  figure is work per share, not queueing); the proxy answers once its own check accepted the
  share (after forwarding it), without waiting for the pool;
- submit -> pool accepts: from the miner writing ``mining.submit`` to the pool's MiningService
  accepting the share (A: the share the proxy forwarded), same paced load;
- added latency: "submit -> pool accepts" through the proxy minus the same direct, at p50 and
  at p99 (the difference of the percentiles, the shares being different ones): how much later
  a share reaches the pool because a proxy is in between -- the proxy's work, Noise, one more
  loopback TCP hop and any time the share waits in the kernel (Nagle's algorithm holds a small
  segment until the pool acknowledges the previous one on a socket without TCP_NODELAY).

The latency phase lasts 4 s (``--quick`` 0.5 s: 500 samples, so its p99 is rough).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import Row

MINERS = 100
WINDOW = 16  # submits in flight per miner in the throughput phase
PACED_RATE = 10.0  # shares a second per miner in the latency phase
ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _cpu_sets() -> tuple[str, str]:
    """(the measured daemon's CPUs, everyone else's) as worker arguments."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return "-", "-"
    return str(cpus[0]), ",".join(str(cpu) for cpu in cpus[1:])


class _Worker:
    """A worker process: one JSON line when ready, one line in to stop, one JSON line out."""

    def __init__(self, *args: str) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )

    def line(self) -> dict:
        stdout = self.process.stdout
        assert stdout is not None
        if not select.select([stdout], [], [], TIMEOUT)[0]:
            self.fail("no answer in time")
        text = stdout.readline()
        if not text:
            self.fail("exited")
        return json.loads(text)

    def finish(self, message: str = "") -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(message + "\n")
        self.process.stdin.close()
        report = self.line()
        self.process.wait(TIMEOUT)
        return report

    def fail(self, what: str) -> None:
        self.process.kill()
        self.process.wait()
        self.stderr.seek(0)
        errors = self.stderr.read().decode(errors="replace")[-4000:]
        raise RuntimeError(f"{' '.join(self.process.args[2:])}: {what}\n{errors}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


def _clients(cpus: str, port: int, quick: bool) -> dict:
    seconds = (0.2, 0.5, 0.5) if quick else (0.5, 4.0, 4.0)  # warm-up, throughput, latency
    clients = _Worker(
        "benchmarks.proxy_clients", cpus, str(port), str(MINERS), str(WINDOW), *map(str, seconds), str(PACED_RATE)
    )
    try:
        out, _ = clients.process.communicate(timeout=TIMEOUT)
        if clients.process.returncode:
            clients.fail(f"exit status {clients.process.returncode}")
        return json.loads(out.strip().splitlines()[-1])
    finally:
        clients.close()


def _busy(samples: list[list[float]], started: float, ended: float) -> float:
    """The fraction of one CPU a process used between two instants, from its (time, cpu) samples."""
    inside = [(t, cpu) for t, cpu in samples if started <= t <= ended]
    if len(inside) < 2:
        return float("nan")
    (t0, cpu0), (t1, cpu1) = inside[0], inside[-1]
    return (cpu1 - cpu0) / (t1 - t0)


def _measure(quick: bool, through_proxy: bool) -> dict:
    measured_cpus, other_cpus = _cpu_sets()
    workers: list[_Worker] = []
    try:
        pool = _Worker("benchmarks.proxy_daemon", "pool", other_cpus if through_proxy else measured_cpus)
        workers.append(pool)
        ready = pool.line()
        port = ready["v1_port"]
        proxy = None
        if through_proxy:
            proxy = _Worker("benchmarks.proxy_daemon", "proxy", measured_cpus, str(ready["sv2_port"]), ready["key"])
            workers.append(proxy)
            port = proxy.line()["v1_port"]
        result = _clients(other_cpus, port, quick)
        forwarded = result["accepted"]
        if proxy is not None:
            proxy_report = proxy.finish()
            result["proxy"] = proxy_report
            forwarded = proxy_report["forwarded"]
        pool_report = pool.finish(str(forwarded))
        result["pool"] = pool_report
        measured = proxy_report if proxy is not None else pool_report
        closed = result["closed"]
        result["busy"] = _busy(measured["cpu"], closed["started"], closed["ended"])
        _check(result, forwarded)
        return result
    finally:
        for worker in workers:
            worker.close()


def _check(result: dict, forwarded: int) -> None:
    """Fail the run if any share was refused or did not reach the pool."""
    pool, proxy = result["pool"], result.get("proxy")
    problems = []
    if result["refused"]:
        problems.append(f"miners' shares refused: {result['refused']}")
    if pool["rejected"]:
        problems.append(f"shares refused by the pool: {pool['rejected'][:5]}")
    if proxy is not None and (proxy["refused_upstream"] or proxy["below_target"] or proxy["not_forwarded"]):
        problems.append(f"shares not forwarded or refused upstream: {proxy}")
    if not result["accepted"] == forwarded == pool["accepted"]:
        problems.append(
            f"{result['accepted']} shares accepted by the miners' daemon, {forwarded} forwarded,"
            f" {pool['accepted']} accepted by the pool"
        )
    if problems:
        raise RuntimeError("bench_proxy: " + "; ".join(problems))


def _to_pool_ms(result: dict) -> list[float]:
    """Per paced share: milliseconds from the miner's submit to the pool's acceptance."""
    accepted_at = dict(result["pool"]["stamps"])
    return [(accepted_at[nonce] - sent) * 1000 for nonce, sent in result["paced_sent"]]


def run(quick: bool) -> list[Row]:
    direct = _measure(quick, through_proxy=False)
    proxied = _measure(quick, through_proxy=True)
    for result in (direct, proxied):
        if result["extra_shares"]:
            print(f"bench_proxy: the miners found {result['extra_shares']} shares during the run", file=sys.stderr)

    def rate(result: dict) -> float:
        closed = result["closed"]
        return closed["answered"] / (closed["ended"] - closed["started"])

    to_pool = {"direct": _to_pool_ms(direct), "via proxy": _to_pool_ms(proxied)}
    answer = {"direct": direct["paced_rtt_ms"], "via proxy": proxied["paced_rtt_ms"]}
    rows = [
        Row(f"proxy: shares/s ({MINERS} V1 miners -> V2 pool)", rate(proxied), "shares/s"),
        Row("  CPU use of the proxy process meanwhile", 100 * proxied["busy"], "%"),
        Row(f"  direct to the pool ({MINERS} V1 miners), for scale", rate(direct), "shares/s"),
        Row("  CPU use of the pool process meanwhile", 100 * direct["busy"], "%"),
    ]
    for label, fraction in (("p50", 0.5), ("p99", 0.99)):
        p = {way: _percentile(values, fraction) for way, values in to_pool.items()}
        rows.append(Row(f"proxy: added latency {label} (ms)", p["via proxy"] - p["direct"], "ms", lower_is_better=True))
    paced = f"{MINERS * PACED_RATE:,.0f} shares/s"
    for label, fraction in (("p50", 0.5), ("p99", 0.99)):
        for what, samples in ((f"submit -> pool accepts {label}", to_pool), (f"submit -> answer {label}", answer)):
            for way, values in samples.items():
                rows.append(Row(f"  {what}, {way} ({paced})", _percentile(values, fraction), "ms"))
    return rows
