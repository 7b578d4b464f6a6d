"""Stratum V1 miners end to end: the daemon, Bitcoin Core's consensus engine, CPU miners.

One listening port serves a V1 device (JSON lines) and a V2 device (Noise) at once; blocks
count only when libbitcoinkernel connects them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from sv2proxy.link import NoiseClientFactory
from sv2proxy.tap import Options, makeService
from sv2proxy.testing import MiningDeviceFactory, RegtestNode, Sv1MiningDeviceFactory
from tests.e2e.test_solo_regtest import PAYOUT, rpc, until


def start_daemon(tmp_path: Path, rpc_url: str, listen: str, extra: str = ""):
    config = tmp_path / "sv1.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"listen:\n{listen}"
        f"node:\n  embedded: false\n  rpc_url: {rpc_url}\n  chain: regtest\n  rpc_user: test\n  rpc_password: secret\n"
        "  tip_poll_interval: 0.2\n"
        f"coinbase:\n  payout: {PAYOUT}\n  pool_tag: /e2e-v1/\n"
        f"mining:\n  min_difficulty: 0.000001\n  share_batch_size: 1\n{extra}"
    )
    options = Options()
    options.parseOptions(["--config", str(config)])
    daemon = makeService(options, reactor)
    daemon.privilegedStartService()
    daemon.startService()
    return options, daemon


@pytest_twisted.ensureDeferred
async def test_v1_and_v2_miners_share_one_port_and_both_find_connected_blocks(tmp_path: Path):
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    options, daemon = start_daemon(tmp_path, node.rpc_url, "  sv2: 127.0.0.1:0\n  sv1: 127.0.0.1:0\n")
    v1 = Sv1MiningDeviceFactory(reactor, "alice.v1", "x", pause=0.05, nonces_per_slice=8)
    v2 = MiningDeviceFactory(reactor, "bob.v2", pause=0.05, nonces_per_slice=8)
    try:
        # "127.0.0.1:0" twice is one endpoint: one port for both protocols.
        port = (await daemon.getServiceNamed("miners").when_listening()).getHost().port
        start = node.height
        reactor.connectTCP("127.0.0.1", port, v1)
        reactor.connectTCP("127.0.0.1", port, NoiseClientFactory(v2, options.authority.public, reactor))
        v1_stats = await v1.when(lambda s: len(s.blocks) >= 1 and s.shares_acknowledged >= 2)
        v2_stats = await v2.when(lambda s: len(s.blocks) >= 1 and s.shares_acknowledged >= 1)
        await until(lambda: node.height >= start + 2)
        assert all(text.startswith("21 ") for text in v1_stats.rejections), v1_stats.rejections
        assert set(v2_stats.rejections) <= {"stale-share"}, v2_stats.rejections
        # Every block on the chain since is ours, and the V1 miner's blocks are among them.
        ours = set()
        for height in range(start + 1, node.height + 1):
            block = await rpc(node, "getblock", await rpc(node, "getblockhash", height), 2)
            assert bytes.fromhex(block["tx"][0]["vin"][0]["coinbase"]).find(b"/e2e-v1/") > 0
            ours.add(block["hash"])
        v1_hashes = {block[::-1].hex() for block in v1_stats.blocks}
        assert ours & v1_hashes, "no V1 block reached the chain"
    finally:
        for factory in (v1, v2):
            if factory.device is not None and factory.device.transport is not None:
                factory.device.transport.loseConnection()
        await daemon.stopService()
        await node.stop()


@pytest.mark.parametrize("extranonce2_size", [2, 8])
@pytest_twisted.ensureDeferred
async def test_v1_miners_with_small_and_large_extranonce2_find_blocks(tmp_path: Path, extranonce2_size: int):
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    options, daemon = start_daemon(
        tmp_path,
        node.rpc_url,
        "  sv2: null\n  sv1: 127.0.0.1:0\n",
        f"  sv1_extranonce2_size: {extranonce2_size}\n",
    )
    v1 = Sv1MiningDeviceFactory(reactor, "carol", version_rolling=False, pause=0.05, nonces_per_slice=8)
    try:
        port = (await daemon.getServiceNamed("sv1-miners").when_listening()).getHost().port
        start = node.height
        reactor.connectTCP("127.0.0.1", port, v1)
        await v1.when(lambda s: len(s.blocks) >= 1)
        await until(lambda: node.height > start)
        assert v1.device.extranonce2_size == extranonce2_size
    finally:
        if v1.device is not None and v1.device.transport is not None:
            v1.device.transport.loseConnection()
        await daemon.stopService()
        await node.stop()
