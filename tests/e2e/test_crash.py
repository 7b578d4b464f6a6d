"""kill -9 the daemon while miners submit shares: every share it acknowledged is in the store.

The daemon is the real ``twistd sv2proxy`` in a child process, mining against a RegtestNode, with
a Stratum V1 and a Stratum V2 device submitting shares as fast as they find them.  At a random
moment of the run it is killed with SIGKILL; the acknowledgements each device had received
until then are counted, the daemon is started again on the same store (its migrations must
accept what the killed one left), and the store must hold at least that many shares of each
worker — in SQLite and in PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from _twistd import twistd_script
from sv2proxy.authority import load_or_create
from sv2proxy.link import NoiseClientFactory
from sv2proxy.testing import MiningDeviceFactory, RegtestNode, Sv1MiningDeviceFactory
from tests.e2e.test_solo_regtest import PAYOUT, until

#: Acknowledged shares each device must have before the kill (a few commits' worth).
ACKNOWLEDGED_BEFORE_KILL = 40
#: How long commits are stalled before the kill (seconds).
STALL = 0.5


class DaemonProcess(ProcessProtocol):
    """``twistd -n sv2proxy`` as a child: its output lines, and a Deferred for its end."""

    def __init__(self) -> None:
        self.output = ""
        self.ended: Deferred[int | None] = Deferred()
        self._waiting: list[tuple[str, Deferred[None]]] = []

    def outReceived(self, data: bytes) -> None:  # noqa: N802
        self.output += data.decode(errors="replace")
        for text, waiter in list(self._waiting):
            if text in self.output:
                self._waiting.remove((text, waiter))
                waiter.callback(None)

    errReceived = outReceived  # noqa: N815

    def processEnded(self, reason: Failure) -> None:  # noqa: N802
        self.ended.callback(getattr(reason.value, "signal", None) or getattr(reason.value, "exitCode", None))
        for text, waiter in self._waiting:
            waiter.errback(AssertionError(f"twistd ended before printing {text!r}:\n{self.output}"))
        self._waiting = []

    def when(self, text: str) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        if text in self.output:
            waiter.callback(None)
        else:
            self._waiting.append((text, waiter))
        return waiter


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spawn(config: Path) -> DaemonProcess:
    process = DaemonProcess()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    args = [twistd_script(), "-n", "--pidfile=", "sv2proxy", "--config", str(config)]
    reactor.spawnProcess(process, args[0], args, env=env, path=str(config.parent))
    return process


@contextmanager
def write_lock(url: str, data_dir: Path) -> Iterator[None]:
    """Hold the shares table's write lock from another client, as a busy database would."""
    if url.startswith("postgresql://"):
        with psycopg.connect(url) as connection:
            connection.execute("LOCK TABLE shares IN SHARE MODE")
            yield
            connection.rollback()
        return
    connection = sqlite3.connect(data_dir / "shares.sqlite3", isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def count_shares(url: str, data_dir: Path, worker: str) -> int:
    if url.startswith("postgresql://"):
        with psycopg.connect(url) as connection:
            return connection.execute("SELECT COUNT(*) FROM shares WHERE worker = %s", (worker,)).fetchone()[0]
    with sqlite3.connect(data_dir / "shares.sqlite3") as connection:
        return connection.execute("SELECT COUNT(*) FROM shares WHERE worker = ?", (worker,)).fetchone()[0]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest_twisted.ensureDeferred
async def test_kill_9_loses_no_acknowledged_share(tmp_path: Path, backend: str, request: pytest.FixtureRequest):
    url = "sqlite" if backend == "sqlite" else request.getfixturevalue("postgresql_url")
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    authority, _ = load_or_create(data_dir / "authority.key")
    sv1_port, sv2_port = free_port(), free_port()
    config = tmp_path / "crash.yaml"
    config.write_text(
        f"data_dir: {data_dir}\n"
        f"listen:\n  sv2: 127.0.0.1:{sv2_port}\n  sv1: 127.0.0.1:{sv1_port}\n"
        f"node:\n  embedded: false\n  rpc_url: {node.rpc_url}\n  chain: regtest\n"
        "  rpc_user: test\n  rpc_password: secret\n"
        f"coinbase:\n  payout: {PAYOUT}\n"
        # Nearly every hash a share: the devices submit faster than commits land, so shares are
        # in flight when the daemon dies.
        "mining:\n  min_difficulty: 0.000000001\n  share_batch_size: 3\n  share_batch_window: 0.2\n"
        f"store:\n  url: {url}\n"
    )
    v1 = Sv1MiningDeviceFactory(reactor, "alice.v1", "x", pause=0, nonces_per_slice=64, suggest_difficulty=1e-9)
    v2 = MiningDeviceFactory(reactor, "bob.v2", hash_rate=1e3, pause=0, nonces_per_slice=64)
    daemon = spawn(config)
    try:
        await daemon.when("sv2proxy running pid=")
        await daemon.when("share store")
        reactor.connectTCP("127.0.0.1", sv1_port, v1)
        reactor.connectTCP("127.0.0.1", sv2_port, NoiseClientFactory(v2, authority.public, reactor))
        await v1.when(lambda s: s.shares_acknowledged >= ACKNOWLEDGED_BEFORE_KILL)
        await v2.when(lambda s: s.shares_acknowledged >= ACKNOWLEDGED_BEFORE_KILL)
        # Stall the store's commits (another client holds the table's write lock) while the
        # miners go on submitting, then kill: a daemon that acknowledged before committing
        # would have acknowledged shares that die with it.
        before = v1.device.stats.shares_submitted
        with write_lock(url, data_dir):
            await deferLater(reactor, STALL, lambda: None)
            assert v1.device.stats.shares_submitted > before + 2, "no shares were in flight"
            # Acknowledgements after this line cannot arrive: the reactor does nothing in between.
            acknowledged = {
                "alice.v1": v1.device.stats.shares_acknowledged,
                "bob.v2": v2.device.stats.shares_acknowledged,
            }
            submitted = {"alice.v1": v1.device.stats.shares_submitted, "bob.v2": v2.device.stats.shares_submitted}
            os.kill(daemon.transport.pid, signal.SIGKILL)
            assert await daemon.ended == signal.SIGKILL
    finally:
        for factory in (v1, v2):
            if factory.device is not None and factory.device.transport is not None:
                factory.device.transport.loseConnection()
        if daemon.transport.pid is not None:
            daemon.transport.signalProcess("KILL")
    # The store outlives the crash: a new daemon opens it (WAL recovery, no migration twice).
    restarted = spawn(config)
    try:
        await restarted.when("share store")
        await restarted.when("sv2proxy running pid=")
        assert "cannot start" not in restarted.output, restarted.output
    finally:
        restarted.transport.signalProcess("TERM")
        await restarted.ended
        await node.stop()
    for worker, count in acknowledged.items():
        stored = count_shares(url, data_dir, worker)
        assert stored >= count, f"{worker}: {count} shares acknowledged, only {stored} in the store"
        assert stored <= submitted[worker]
    print(f"{backend}: acknowledged {acknowledged}, submitted {submitted}", file=sys.stderr)


@pytest_twisted.ensureDeferred
async def test_found_blocks_are_stored_with_the_nodes_verdict(tmp_path: Path) -> None:
    """Found blocks are in the store with the node's verdict (solo pool mode through twistd)."""
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    data_dir = tmp_path / "data"
    port = free_port()
    config = tmp_path / "blocks.yaml"
    config.write_text(
        f"data_dir: {data_dir}\n"
        f"listen:\n  sv2: null\n  sv1: 127.0.0.1:{port}\n"
        f"node:\n  embedded: false\n  rpc_url: {node.rpc_url}\n  chain: regtest\n"
        "  rpc_user: test\n  rpc_password: secret\n  tip_poll_interval: 0.2\n"
        f"coinbase:\n  payout: {PAYOUT}\n"
        "mining:\n  min_difficulty: 0.000001\n"
    )
    miner = Sv1MiningDeviceFactory(reactor, "carol", "x", pause=0.01, nonces_per_slice=16)
    daemon = spawn(config)
    try:
        await daemon.when("sv2proxy running pid=")
        start = node.height
        reactor.connectTCP("127.0.0.1", port, miner)
        await miner.when(lambda s: len(s.blocks) >= 1)
        await until(lambda: node.height > start)
        await daemon.when("accepted by the node")
    finally:
        if miner.device is not None and miner.device.transport is not None:
            miner.device.transport.loseConnection()
        daemon.transport.signalProcess("TERM")
        await daemon.ended
        await node.stop()
    with sqlite3.connect(data_dir / "shares.sqlite3") as connection:
        rows = connection.execute("SELECT worker, status, height, reward FROM blocks").fetchall()
    assert any(
        worker == "carol" and status == "accepted" and height and reward for worker, status, height, reward in rows
    ), rows
