"""Proxy mode end to end, the upstream options: one upstream channel per miner, and fail-back.

As in test_proxy.py, both daemons are the real service trees of ``tap.makeService`` on
loopback, the pool on a RegtestNode whose blocks Bitcoin Core's consensus engine connects.
"""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
from twisted.internet import reactor

from sv2proxy.events import MiningPoolConnected, ShareSubmitted
from sv2proxy.testing import MiningDeviceFactory, RegtestNode, Sv1MiningDeviceFactory
from tests.e2e.test_proxy import connect_miners, disconnect, kill, miners_port, pool_url, shut_down, start, start_pool
from tests.e2e.test_solo_regtest import PAYOUT, rpc, until

#: A second regtest address (P2WSH), for the second solo miner.
OTHER_PAYOUT = "bcrt1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qzf4jry"


async def soon(waiter, seconds: float = 20.0):
    """A device's ``when`` waiter, failing the test after ``seconds`` instead of hanging it."""
    return await waiter.addTimeout(seconds, reactor)


def start_proxy(tmp_path: Path, primary: str, backups: list[str] = (), upstream: str = ""):
    backup_text = "".join(f"\n    - {url}" for url in backups) or " []"
    return start(
        tmp_path / "proxy.yaml",
        f"data_dir: {tmp_path / 'proxy'}\n"
        f"pool_url: {primary}\n"
        f"upstream:\n  user_identity: farm\n  backup_urls:{backup_text}\n{upstream}"
        "listen:\n  sv2: 127.0.0.1:0\n  sv1: 127.0.0.1:0\n"
        "mining:\n  min_difficulty: 0.000001\n  share_batch_size: 1\n",
    )


def start_solo_pool(tmp_path: Path, name: str, rpc_url: str):
    options, pool = start(
        tmp_path / f"{name}.yaml",
        f"data_dir: {tmp_path / name}\n"
        "listen:\n  sv2: 127.0.0.1:0\n"
        f"node:\n  embedded: false\n  rpc_url: {rpc_url}\n  chain: regtest\n  rpc_user: test\n  rpc_password: secret\n"
        "  tip_poll_interval: 0.2\n"
        f"coinbase:\n  payout: {PAYOUT}\n  pool_tag: /{name}/\n  solo: true\n"
        "mining:\n  min_difficulty: 0.000001\n  share_batch_size: 1\n",
    )
    return options, pool


@pytest_twisted.ensureDeferred
async def test_per_miner_channels_carry_each_miners_identity_to_a_solo_pool(tmp_path: Path):
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    pool_options, pool = start_solo_pool(tmp_path, "solo", node.rpc_url)
    proxy_options, proxy = start_proxy(tmp_path, await pool_url(pool_options, pool), upstream="  channels: per-miner\n")
    alice, bob = f"{PAYOUT}.rig1", f"{OTHER_PAYOUT}.rig2"
    v1 = Sv1MiningDeviceFactory(reactor, alice, "x", pause=0.05, nonces_per_slice=8)
    v2 = MiningDeviceFactory(reactor, bob, pause=0.05, nonces_per_slice=8)
    at_pool: list[ShareSubmitted] = []
    pool.events.subscribe(ShareSubmitted, at_pool.append)
    pool_channels = pool.getServiceNamed("mining").manager.channels
    try:
        await until(lambda: proxy.getServiceNamed("upstream").session is not None)
        assert pool_channels == {}  # set up, but no miner yet: no channel
        port = await miners_port(proxy)
        start_height = node.height
        connect_miners(port, proxy_options, v1, v2)
        # The pool sees one channel per miner, under each miner's own username ...
        await until(lambda: len(pool_channels) == 2)
        identities = {channel.channel_id: channel.user_identity for channel in pool_channels.values()}
        assert sorted(identities.values()) == sorted([alice, bob])
        # ... accepts shares on both, and the blocks each finds pay its own address in full.
        v1_stats = await soon(v1.when(lambda s: len(s.blocks) >= 1 and s.shares_acknowledged >= 3))
        v2_stats = await soon(v2.when(lambda s: len(s.blocks) >= 1 and s.shares_acknowledged >= 3))
        accepted = {identities.get(event.channel_id) for event in at_pool if event.accepted}
        assert {alice, bob} <= accepted
        await until(lambda: node.height >= start_height + 2)
        paid = {}
        for height in range(start_height + 1, node.height + 1):
            block = await rpc(node, "getblock", await rpc(node, "getblockhash", height), 2)
            outputs = block["tx"][0]["vout"]
            paid[block["hash"]] = {out["scriptPubKey"].get("address") for out in outputs if out["value"] > 0}
        for stats, address in ((v1_stats, PAYOUT), (v2_stats, OTHER_PAYOUT)):
            mined = [paid[h] for h in (found[::-1].hex() for found in stats.blocks) if h in paid]
            assert mined and all(addresses == {address} for addresses in mined)
        # A miner leaving closes its upstream channel; the other keeps mining on its own.
        disconnect(v1)
        await until(lambda: sorted(c.user_identity for c in pool_channels.values()) == [bob])
        before = v2.device.stats.shares_acknowledged
        await soon(v2.when(lambda s: s.shares_acknowledged > before))
    finally:
        disconnect(v1, v2)
        await shut_down(node, proxy, pool)


@pytest_twisted.ensureDeferred
async def test_per_miner_channels_are_opened_again_on_the_backup_after_a_failover(tmp_path: Path):
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    primary_options, primary = start_pool(tmp_path, "primary", node.rpc_url)
    backup_options, backup = start_pool(tmp_path, "backup", node.rpc_url)
    proxy_options, proxy = start_proxy(
        tmp_path,
        await pool_url(primary_options, primary),
        [await pool_url(backup_options, backup)],
        upstream="  channels: per-miner\n",
    )
    connected: list[MiningPoolConnected] = []
    proxy.events.subscribe(MiningPoolConnected, connected.append)
    v1 = Sv1MiningDeviceFactory(reactor, "carol.v1", "x", pause=0.05, nonces_per_slice=8)
    v2 = MiningDeviceFactory(reactor, "dave.v2", pause=0.05, nonces_per_slice=8)
    try:
        await until(lambda: len(connected) == 1)
        port = await miners_port(proxy)
        connect_miners(port, proxy_options, v1, v2)
        await soon(v1.when(lambda s: s.shares_acknowledged >= 2))
        await soon(v2.when(lambda s: s.shares_acknowledged >= 2))
        await kill(primary)
        await until(lambda: len(connected) == 2, seconds=10)
        backup_channels = backup.getServiceNamed("mining").manager.channels
        await until(lambda: sorted(c.user_identity for c in backup_channels.values()) == ["carol.v1", "dave.v2"])
        v1_before, v2_before = v1.device.stats.shares_acknowledged, v2.device.stats.shares_acknowledged
        await soon(v1.when(lambda s: s.shares_acknowledged > v1_before))
        await soon(v2.when(lambda s: s.shares_acknowledged > v2_before))
    finally:
        disconnect(v1, v2)
        await shut_down(node, proxy, backup, primary)


@pytest_twisted.ensureDeferred
async def test_a_restarted_primary_gets_the_miners_back_within_the_failback_interval(tmp_path: Path):
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    primary_options, primary = start_pool(tmp_path, "primary", node.rpc_url)
    backup_options, backup = start_pool(tmp_path, "backup", node.rpc_url)
    primary_url = await pool_url(primary_options, primary)
    backup_url = await pool_url(backup_options, backup)
    interval = 2.0
    proxy_options, proxy = start_proxy(
        tmp_path, primary_url, [backup_url], upstream=f"  failback_interval: {interval}\n"
    )
    connected: list[MiningPoolConnected] = []
    proxy.events.subscribe(MiningPoolConnected, connected.append)
    v1 = Sv1MiningDeviceFactory(reactor, "erin.v1", "x", pause=0.05, nonces_per_slice=8)
    v2 = MiningDeviceFactory(reactor, "frank.v2", pause=0.05, nonces_per_slice=8)
    restarted = None
    try:
        await until(lambda: len(connected) == 1)
        port = await miners_port(proxy)
        connect_miners(port, proxy_options, v1, v2)
        await soon(v1.when(lambda s: s.shares_acknowledged >= 2))
        await soon(v2.when(lambda s: s.shares_acknowledged >= 2))
        v1_device, v2_device = v1.device, v2.device

        await kill(primary)
        await until(lambda: len(connected) == 2, seconds=10)
        assert connected[1].url == backup_url
        # While the primary is down, probing it changes nothing: the miners stay on the backup.
        on_backup = v1_device.stats.shares_acknowledged
        await soon(v1.when(lambda s: s.shares_acknowledged > on_backup))
        primary_port = int(primary_url.rsplit(":", 1)[1].split("/")[0])
        restarted_options, restarted = start(
            tmp_path / "primary-again.yaml",
            (tmp_path / "primary.yaml").read_text().replace("sv2: 127.0.0.1:0", f"sv2: 127.0.0.1:{primary_port}"),
        )
        assert restarted_options.authority.public_text == primary_options.authority.public_text  # same key file
        back_at = reactor.seconds()
        await until(lambda: len(connected) == 3, seconds=interval + 5)
        assert connected[2].url == primary_url
        assert reactor.seconds() - back_at <= interval + 1
        # The same miner connections, now mining and acknowledged through the primary again.
        at_primary: list[ShareSubmitted] = []
        restarted.events.subscribe(ShareSubmitted, at_primary.append)
        v1_before, v2_before = v1_device.stats.shares_acknowledged, v2_device.stats.shares_acknowledged
        await soon(v1.when(lambda s: s.shares_acknowledged > v1_before))
        await soon(v2.when(lambda s: s.shares_acknowledged > v2_before))
        assert v1.device is v1_device and v2.device is v2_device
        await until(lambda: any(event.accepted for event in at_primary))
        assert proxy.getServiceNamed("upstream").url.text == primary_url
    finally:
        disconnect(v1, v2)
        await shut_down(node, proxy, backup, restarted, primary)
