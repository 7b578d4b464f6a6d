"""Worker for bench_tip: new tip at the node -> SetNewPrevHash on N channels (runs the reactor).

This process holds what is measured: a RegtestNode and the daemon's service tree (pool mode,
longpoll) on loopback.  The N Noise clients, one extended channel each, run in a process of
their own (:mod:`benchmarks.tip_clients`), so their decryption does not slow the daemon down;
where the machine has two cores, each process has one of its own, as remote miners would.
A block is mined straight into the node; the clock starts when the node has connected it and
stops when the first and the last channel have received the SetNewPrevHash for it, both read
from the system-wide monotonic clock.

Prints one JSON object: {"first_ms": [...], "last_ms": [...]}.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import defer, protocol, task

from sv2proxy.bitcoin.address import Network, script_for_address
from sv2proxy.tap import Options, makeService
from sv2proxy.testing import RegtestNode

PAYOUT = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
#: The core the clients' process runs on (None: not pinned).
CLIENT_CORE: int | None = None


def now() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class ClientsProcess(protocol.ProcessProtocol):
    """The clients' process: its output lines, one Deferred at a time."""

    def __init__(self) -> None:
        self.buffer = b""
        self.waiting: defer.Deferred[str] | None = None
        self.pending: list[str] = []

    def outReceived(self, data: bytes) -> None:  # noqa: N802
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        for line in lines:
            self._line(line)

    def errReceived(self, data: bytes) -> None:  # noqa: N802
        sys.stderr.write(data.decode(errors="replace"))

    def _line(self, line: bytes) -> None:
        self.pending.append(line.decode())
        self._deliver()

    def _deliver(self) -> None:
        if self.waiting is not None and self.pending:
            waiting, self.waiting = self.waiting, None
            waiting.callback(self.pending.pop(0))

    def next_line(self) -> defer.Deferred[str]:
        self.waiting = defer.Deferred()
        waiting = self.waiting
        self._deliver()
        return waiting

    def send(self, line: str) -> None:
        self.transport.write(line.encode() + b"\n")


async def measure(reactor, count: int, rounds: int) -> dict[str, list[float]]:
    tmp = Path(tempfile.mkdtemp(prefix="sv2proxy-bench-"))
    node = RegtestNode(tmp / "node", reactor, rpcuser="bench", rpcpassword="bench")
    await node.start()
    config = tmp / "bench.yaml"
    config.write_text(
        f"data_dir: {tmp / 'data'}\n"
        "listen:\n  sv2: tcp:0:interface=127.0.0.1:backlog=2048\n"
        f"node:\n  embedded: false\n  rpc_url: {node.rpc_url}\n  chain: regtest\n"
        "  rpc_user: bench\n  rpc_password: bench\n"
        f"coinbase:\n  payout: {PAYOUT}\n"
        f"mining:\n  max_messages_per_second: 100000\n"
    )
    options = Options()
    options.parseOptions(["--config", str(config)])
    daemon = makeService(options, reactor)
    daemon.privilegedStartService()
    daemon.startService()
    port = (await daemon.getServiceNamed("sv2-miners").when_listening()).getHost().port
    clients = ClientsProcess()
    args = [sys.executable, "-m", "benchmarks.tip_clients", str(port), options.authority.public.hex(), str(count)]
    if CLIENT_CORE is not None:
        args.append(str(CLIENT_CORE))
    reactor.spawnProcess(clients, sys.executable, args, env=os.environ.copy())
    assert await clients.next_line() == "ready"
    await task.deferLater(reactor, 1.0, lambda: None)  # let the first template settle
    script = script_for_address(PAYOUT, Network.REGTEST)
    first, last = [], []
    for _ in range(rounds):
        (block_hash,) = node.mine_to(script, 1)
        started = now()  # the node has connected the block
        prev_hash = bytes.fromhex(block_hash)[::-1]
        clients.send(f"expect {prev_hash.hex()}")
        reported, first_at, last_at, disordered = (await clients.next_line()).split()
        assert reported == prev_hash.hex()
        assert disordered == "0", f"{disordered} SetNewPrevHash messages came before their job"
        first.append((float(first_at) - started) * 1000)
        last.append((float(last_at) - started) * 1000)
        await task.deferLater(reactor, 0.3, lambda: None)
    clients.send("quit")
    await daemon.stopService()
    await node.stop()
    return {"first_ms": first, "last_ms": last}


def pin_cores() -> tuple[int | None, int | None]:
    """One core for the daemon (this process) and another for the clients, where there are two.

    Real miners run on machines of their own: sharing the daemon's core, the clients' process
    would add its own scheduling to what is measured (a round now and then waiting for it).
    """
    if not hasattr(os, "sched_setaffinity"):
        return None, None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, None
    os.sched_setaffinity(0, {cores[0]})
    return cores[0], cores[1]


def main() -> None:
    count, rounds = int(sys.argv[1]), int(sys.argv[2])
    global CLIENT_CORE
    _, CLIENT_CORE = pin_cores()

    async def run(reactor) -> None:
        print(json.dumps(await measure(reactor, count, rounds)), flush=True)

    task.react(lambda reactor: defer.ensureDeferred(run(reactor)))


if __name__ == "__main__":
    main()
