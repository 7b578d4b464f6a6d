"""Worker for bench_tip: new tip at the node -> SetNewPrevHash on N channels (runs the reactor).

Everything in one process on loopback: a RegtestNode, the daemon's service tree (pool mode,
longpoll), and N Noise clients with one extended channel each.  A block is mined straight into
the node; the clock starts when the node has connected it and stops when the first and the
last channel have received the SetNewPrevHash for it.  The clients decrypt in this same process,
so "last" includes their work too: an upper bound for the daemon's.

Prints one JSON object: {"first_ms": [...], "last_ms": [...]}.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import defer, task
from twisted.internet.protocol import ClientFactory

from sv2proxy.bitcoin.address import Network, script_for_address
from sv2proxy.bitcoin.target import MAX_TARGET, target_to_u256
from sv2proxy.codec.common import SetupConnection, SetupConnectionSuccess
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import OpenExtendedMiningChannel, OpenExtendedMiningChannelSuccess, SetNewPrevHash
from sv2proxy.link import FramedProtocol, NoiseClientFactory
from sv2proxy.tap import Options, makeService
from sv2proxy.testing import RegtestNode

PAYOUT = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


class Client(FramedProtocol):
    def connectionMade(self) -> None:  # noqa: N802
        self.sendMessage(SetupConnection(0, 2, 2, 0, "127.0.0.1", 0, "bench", "cpu", "1", "tip"))

    def messageReceived(self, message: Message) -> None:  # noqa: N802
        factory = self.factory
        if isinstance(message, SetupConnectionSuccess):
            self.sendMessage(OpenExtendedMiningChannel(1, "bench", 1e12, target_to_u256(MAX_TARGET), 4))
        elif isinstance(message, OpenExtendedMiningChannelSuccess):
            factory.opened()
        elif isinstance(message, SetNewPrevHash):
            factory.prev_hash(message.prev_hash)


class Clients(ClientFactory):
    protocol = Client
    noisy = False

    def __init__(self, count: int) -> None:
        self.count = count
        self.open = 0
        self.all_open: defer.Deferred[None] = defer.Deferred()
        self.waiting_for: bytes | None = None
        self.arrivals: list[float] = []
        self.all_arrived: defer.Deferred[list[float]] | None = None

    def opened(self) -> None:
        self.open += 1
        if self.open == self.count:
            self.all_open.callback(None)

    def prev_hash(self, prev_hash: bytes) -> None:
        if prev_hash != self.waiting_for or self.all_arrived is None:
            return
        self.arrivals.append(time.perf_counter())
        if len(self.arrivals) == self.count:
            done, self.all_arrived = self.all_arrived, None
            done.callback(self.arrivals)


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
    clients = Clients(count)
    for _ in range(count):
        reactor.connectTCP("127.0.0.1", port, NoiseClientFactory(clients, options.authority.public, reactor, 60.0))
    await clients.all_open
    await task.deferLater(reactor, 1.0, lambda: None)  # let the first template settle
    script = script_for_address(PAYOUT, Network.REGTEST)
    first, last = [], []
    for _ in range(rounds):
        clients.arrivals = []
        clients.all_arrived = defer.Deferred()
        (block_hash,) = node.mine_to(script, 1)
        started = time.perf_counter()  # the node has connected the block
        clients.waiting_for = bytes.fromhex(block_hash)[::-1]
        arrivals = await clients.all_arrived
        first.append((arrivals[0] - started) * 1000)
        last.append((arrivals[-1] - started) * 1000)
        await task.deferLater(reactor, 0.3, lambda: None)
    await daemon.stopService()
    await node.stop()
    return {"first_ms": first, "last_ms": last}


def main() -> None:
    count, rounds = int(sys.argv[1]), int(sys.argv[2])

    async def run(reactor) -> None:
        print(json.dumps(await measure(reactor, count, rounds)), flush=True)

    task.react(lambda reactor: defer.ensureDeferred(run(reactor)))


if __name__ == "__main__":
    main()
