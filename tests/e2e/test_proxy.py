"""Proxy mode end to end: miners -> proxy daemon -> pool daemon -> Bitcoin Core's consensus engine.

Both daemons are the real service trees of ``tap.makeService`` (one in pool mode on a RegtestNode,
one in proxy mode pointed at it); V1 and V2 CPU miners connect to the proxy's one port.  A block
counts only when libbitcoinkernel connects it.
"""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
from twisted.internet import reactor

from sv2proxy.events import MiningPoolConnected, ShareSubmitted
from sv2proxy.link import NoiseClientFactory
from sv2proxy.tap import Options, makeService
from sv2proxy.testing import MiningDeviceFactory, RegtestNode, Sv1MiningDeviceFactory
from tests.e2e.test_solo_regtest import PAYOUT, rpc, until


def start(config: Path, text: str):
    config.write_text(text)
    options = Options()
    options.parseOptions(["--config", str(config)])
    daemon = makeService(options, reactor)
    daemon.privilegedStartService()
    daemon.startService()
    return options, daemon


def start_pool(tmp_path: Path, name: str, rpc_url: str):
    return start(
        tmp_path / f"{name}.yaml",
        f"data_dir: {tmp_path / name}\n"
        "listen:\n  sv2: 127.0.0.1:0\n"
        f"node:\n  embedded: false\n  rpc_url: {rpc_url}\n  chain: regtest\n  rpc_user: test\n  rpc_password: secret\n"
        "  tip_poll_interval: 0.2\n"
        f"coinbase:\n  payout: {PAYOUT}\n  pool_tag: /{name}/\n"
        "mining:\n  min_difficulty: 0.000001\n  share_batch_size: 1\n",
    )


async def pool_url(options: Options, daemon) -> str:
    port = (await daemon.getServiceNamed("sv2-miners").when_listening()).getHost().port
    return f"stratum2+tcp://127.0.0.1:{port}/{options.authority.public_text}"


def start_proxy(tmp_path: Path, primary: str, backups: list[str] = ()):
    backup_text = "".join(f"\n    - {url}" for url in backups) or " []"
    return start(
        tmp_path / "proxy.yaml",
        f"data_dir: {tmp_path / 'proxy'}\n"
        f"pool_url: {primary}\n"
        f"upstream:\n  user_identity: farm\n  backup_urls:{backup_text}\n"
        "listen:\n  sv2: 127.0.0.1:0\n  sv1: 127.0.0.1:0\n"
        "mining:\n  min_difficulty: 0.000001\n  share_batch_size: 1\n",
    )


async def miners_port(daemon) -> int:
    return (await daemon.getServiceNamed("miners").when_listening()).getHost().port


async def kill(daemon) -> None:
    """What a pool's process dying looks like to its peers: it stops and its connections drop."""
    listener = daemon.getServiceNamed("sv2-miners")
    await daemon.stopService()
    for connection in list(listener.factory.protocols):
        connection.transport.abortConnection()


def connect_miners(port: int, proxy_options: Options, v1, v2) -> None:
    """A Stratum V1 device and a Stratum V2 one (Noise, pinned to the proxy's key) to ``port``."""
    reactor.connectTCP("127.0.0.1", port, v1)
    reactor.connectTCP("127.0.0.1", port, NoiseClientFactory(v2, proxy_options.authority.public, reactor))


async def shut_down(node: RegtestNode, *daemons) -> None:
    """Stop whichever of ``daemons`` still run (first to last), then the node."""
    for daemon in daemons:
        if daemon is not None and daemon.running:
            await daemon.stopService()
    await node.stop()


def disconnect(*factories) -> None:
    for factory in factories:
        if factory.device is not None and factory.device.transport is not None:
            factory.device.transport.loseConnection()


@pytest_twisted.ensureDeferred
async def test_v1_and_v2_miners_find_blocks_through_the_proxy_and_the_pool(tmp_path: Path):
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    pool_options, pool = start_pool(tmp_path, "pool", node.rpc_url)
    proxy_options, proxy = start_proxy(tmp_path, await pool_url(pool_options, pool))
    v1 = Sv1MiningDeviceFactory(reactor, "alice.v1", "x", pause=0.05, nonces_per_slice=8)
    v2 = MiningDeviceFactory(reactor, "bob.v2", pause=0.05, nonces_per_slice=8)
    at_pool: list[ShareSubmitted] = []
    pool.events.subscribe(ShareSubmitted, at_pool.append)
    try:
        await until(lambda: proxy.getServiceNamed("upstream").session is not None)
        port = await miners_port(proxy)
        start_height = node.height
        connect_miners(port, proxy_options, v1, v2)
        v1_stats = await v1.when(lambda s: len(s.blocks) >= 1)
        await v2.when(lambda s: len(s.blocks) >= 1)
        await until(lambda: node.height >= start_height + 2)
        # The pool sees one channel: the proxy's, under its user identity.
        (channel,) = pool.getServiceNamed("mining").manager.channels.values()
        assert channel.user_identity == "farm"
        # ... and, through extension 0x0002, which local worker found each share.
        assert {"alice.v1", "bob.v2"} <= {event.worker for event in at_pool if event.accepted}
        # Blocks on the chain are the pool's (its tag, its payout), and the V1 miner's are there.
        chain = set()
        for height in range(start_height + 1, node.height + 1):
            block = await rpc(node, "getblock", await rpc(node, "getblockhash", height), 2)
            coinbase = block["tx"][0]
            assert bytes.fromhex(coinbase["vin"][0]["coinbase"]).find(b"/pool/") > 0
            assert any(out["scriptPubKey"].get("address") == PAYOUT for out in coinbase["vout"])
            chain.add(block["hash"])
        assert chain & {found[::-1].hex() for found in v1_stats.blocks}
    finally:
        disconnect(v1, v2)
        await shut_down(node, proxy, pool)


@pytest_twisted.ensureDeferred
async def test_losing_the_pool_moves_the_miners_to_the_backup_within_seconds(tmp_path: Path):
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    primary_options, primary = start_pool(tmp_path, "primary", node.rpc_url)
    backup_options, backup = start_pool(tmp_path, "backup", node.rpc_url)
    primary_url = await pool_url(primary_options, primary)
    backup_url = await pool_url(backup_options, backup)
    proxy_options, proxy = start_proxy(tmp_path, primary_url, [backup_url])
    connected: list[MiningPoolConnected] = []
    proxy.events.subscribe(MiningPoolConnected, connected.append)
    v1 = Sv1MiningDeviceFactory(reactor, "carol.v1", "x", pause=0.05, nonces_per_slice=8)
    v2 = MiningDeviceFactory(reactor, "dave.v2", pause=0.05, nonces_per_slice=8)
    try:
        await until(lambda: len(connected) == 1)
        port = await miners_port(proxy)
        connect_miners(port, proxy_options, v1, v2)
        await v1.when(lambda s: s.shares_acknowledged >= 2)
        await v2.when(lambda s: s.shares_acknowledged >= 2)
        v1_device, v2_device = v1.device, v2.device

        await kill(primary)  # the pool goes away mid-run
        lost_at = reactor.seconds()
        await until(lambda: len(connected) == 2, seconds=10)
        assert connected[1].url == backup_url
        v1_before, v2_before = v1_device.stats.shares_acknowledged, v2_device.stats.shares_acknowledged
        height = node.height
        # Same connections (nobody was dropped), new work, accepted shares and blocks via the backup.
        await v1.when(lambda s: s.shares_acknowledged > v1_before)
        await v2.when(lambda s: s.shares_acknowledged > v2_before)
        assert reactor.seconds() - lost_at < 5
        assert v1.device is v1_device and v2.device is v2_device
        await until(lambda: node.height > height)
        best = await rpc(node, "getblock", await rpc(node, "getbestblockhash"), 2)
        assert bytes.fromhex(best["tx"][0]["vin"][0]["coinbase"]).find(b"/backup/") > 0
    finally:
        disconnect(v1, v2)
        await shut_down(node, proxy, backup, primary)


@pytest_twisted.ensureDeferred
async def test_two_hundred_miners_connecting_at_once_open_exactly_one_upstream_channel(tmp_path: Path):
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    pool_options, pool = start_pool(tmp_path, "pool", node.rpc_url)
    # The miners connect before the proxy even reached the pool.
    proxy_options, proxy = start_proxy(tmp_path, await pool_url(pool_options, pool))
    port = await miners_port(proxy)
    devices = [
        Sv1MiningDeviceFactory(reactor, f"rig{i}", "x", pause=1.0, nonces_per_slice=1) for i in range(200)
    ]
    try:
        for device in devices:
            reactor.connectTCP("127.0.0.1", port, device)
        await until(lambda: all(d.device is not None and d.device.stats.jobs > 0 for d in devices), seconds=30)
        assert len(pool.getServiceNamed("mining").manager.channels) == 1
        assert len(proxy.getServiceNamed("mining").manager.channels) == 200
    finally:
        disconnect(*devices)
        await shut_down(node, proxy, pool)
