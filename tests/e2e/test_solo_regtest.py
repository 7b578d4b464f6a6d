"""Solo mining end to end: the daemon, Bitcoin Core's consensus engine, a CPU miner.

The daemon's service tree (tap.makeService, pool mode) takes templates from a RegtestNode
over JSON-RPC; a MiningDevice mines through Noise; a block counts only when libbitcoinkernel
connects it, and its coinbase must pay the configured address the template's whole value.
"""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.task import deferLater

from sv2proxy.link import NoiseClientFactory
from sv2proxy.tap import Options, makeService
from sv2proxy.testing import MiningDeviceFactory, RegtestNode

PAYOUT = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


async def rpc(node: RegtestNode, method: str, *params):
    response = await treq.post(
        node.rpc_url,
        json={"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)},
        auth=("test", "secret"),
    )
    answer = await response.json()
    assert answer["error"] is None, answer
    return answer["result"]


@pytest_twisted.ensureDeferred
async def test_blocks_found_through_the_daemon_are_connected_by_bitcoin_core(tmp_path: Path):
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    config = tmp_path / "solo.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "listen:\n  sv2: 127.0.0.1:0\n"
        f"node:\n  rpc_url: {node.rpc_url}\n  chain: regtest\n  rpc_user: test\n  rpc_password: secret\n"
        f"coinbase:\n  payout: {PAYOUT}\n  pool_tag: /e2e/\n"
        "mining:\n  min_difficulty: 0.000001\n  share_batch_size: 1\n"
    )
    options = Options()
    options.parseOptions(["--config", str(config)])
    daemon = makeService(options, reactor)
    daemon.privilegedStartService()
    daemon.startService()
    # Capped at ~160 hashes/s: on regtest about half of them are blocks (and so shares).
    miners = MiningDeviceFactory(reactor, "alice.rig1", pause=0.05, nonces_per_slice=8)
    try:
        port = (await daemon.getServiceNamed("sv2-miners").when_listening()).getHost().port
        start_height = node.height
        reactor.connectTCP("127.0.0.1", port, NoiseClientFactory(miners, options.authority.public, reactor))
        stats = await miners.when(lambda s: len(s.blocks) >= 2 and s.shares_acknowledged >= 2)
        for _ in range(200):  # the node answers submitblock asynchronously
            if node.height >= start_height + 2:
                break
            await deferLater(reactor, 0.05, lambda: None)
        assert node.height >= start_height + 2
        assert stats.rejections == [] or set(stats.rejections) <= {"stale-share"}

        best = await rpc(node, "getbestblockhash")
        block = await rpc(node, "getblock", best, 2)
        coinbase = block["tx"][0]
        paid = [out for out in coinbase["vout"] if out["scriptPubKey"].get("address") == PAYOUT]
        assert paid and paid[0]["value"] == 50.0  # the whole subsidy (no fees on an empty chain)
        assert bytes.fromhex(coinbase["vin"][0]["coinbase"]).find(b"/e2e/") > 0
        accepted = list((tmp_path / "data" / "blocks" / "accepted").glob("*.hex"))
        assert len(accepted) >= 2
    finally:
        if miners.device is not None and miners.device.transport is not None:
            miners.device.transport.loseConnection()
        await daemon.stopService()
        await node.stop()
