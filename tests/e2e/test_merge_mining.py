"""Merge mining end to end: the daemon mines Bitcoin (RegtestNode) and two AuxPoW chains at once.

Real loopback sockets throughout: the daemon (tap.makeService, pool mode) takes templates from a
RegtestNode, aux work from two AuxNodes with different chain ids, and a MiningDevice mines
through Noise.  Parent blocks count when libbitcoinkernel connects them; aux blocks when the
AuxNode's strict AuxPoW check accepts the proof.  Killing one AuxNode mid-run must not stop
parent blocks.
"""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
import treq
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.internet.task import deferLater

from e2e.test_solo_regtest import PAYOUT, connect, rpc, stop, until
from sv2proxy.events import MergeMiningReward
from sv2proxy.tap import Options, makeService
from sv2proxy.testing import AuxNode, MiningDeviceFactory, RegtestNode


def start_daemon(tmp_path: Path, rpc_url: str, aux: list[AuxNode]):
    chains = "".join(
        f"    - name: {node.name}\n"
        f"      rpc_url: {node.rpc_url}\n"
        "      rpc_user: aux\n      rpc_password: secret\n"
        f"      payout_address: {PAYOUT}\n"
        f"      chain_id: {node.chain_id}\n"
        for node in aux
    )
    config = tmp_path / "merged.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "listen:\n  sv2: 127.0.0.1:0\n"
        f"node:\n  embedded: false\n  rpc_url: {rpc_url}\n  chain: regtest\n  rpc_user: test\n  rpc_password: secret\n"
        "  tip_poll_interval: 0.2\n"
        f"coinbase:\n  payout: {PAYOUT}\n  pool_tag: /mm/\n"
        "mining:\n  min_difficulty: 0.000001\n  share_batch_size: 1\n"
        "store:\n  url: null\n"
        "web:\n  listen: 127.0.0.1:0\n"
        f"merge_mining:\n  poll_interval: 0.2\n  timeout: 2\n  chains:\n{chains}"
    )
    options = Options()
    options.parseOptions(["--config", str(config)])
    daemon = makeService(options, reactor)
    daemon.privilegedStartService()
    daemon.startService()
    return options, daemon


@pytest_twisted.ensureDeferred
async def test_bitcoin_and_two_aux_chains_accept_blocks_and_an_aux_outage_is_invisible(tmp_path: Path):
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    namecoin = AuxNode(reactor, chain_id=1, name="namecoin")
    other = AuxNode(reactor, chain_id=2, name="otherchain", bits=0x2000FFFF)  # harder: 1 in 128
    await node.start()
    await namecoin.start()
    await other.start()
    options, daemon = start_daemon(tmp_path, node.rpc_url, [namecoin, other])
    rewards: list[MergeMiningReward] = []
    daemon.events.subscribe(MergeMiningReward, rewards.append)
    names = [service.name for service in daemon]
    assert names.index("merge-mining") == names.index("node") - 1  # started just before the node source
    miners = MiningDeviceFactory(reactor, "alice.rig1", pause=0.05, nonces_per_slice=8)
    try:
        start = node.height
        await connect(miners, daemon, options)
        await until(lambda: node.height >= start + 2 and namecoin.height >= 2 and other.height >= 1, seconds=60)
        assert namecoin.rejected == [] and other.rejected == []
        # Every parent block carries the commitment once, in the coinbase scriptSig.
        block = await rpc(node, "getblock", await rpc(node, "getbestblockhash"), 2)
        script_sig = bytes.fromhex(block["tx"][0]["vin"][0]["coinbase"])
        assert script_sig.count(b"\xfa\xbemm") == 1 and b"/mm/" in script_sig
        assert {r.chain for r in rewards} == {"namecoin", "otherchain"}
        assert all(r.amount == 50 * 10**8 and r.height >= 1 for r in rewards)

        # One aux node goes away mid-run: Bitcoin blocks keep coming, the other chain too.
        await namecoin.stop()
        killed_at = node.height
        other_at = other.height
        await until(lambda: node.height >= killed_at + 3, seconds=60)
        coordinator = daemon.getServiceNamed("merge-mining")
        await until(lambda: [c.name for c in coordinator.get_secondary_chains() if c.live] == ["otherchain"])
        await until(lambda: other.height > other_at, seconds=60)
        status = {c.name: c for c in coordinator.get_secondary_chains()}
        assert not status["namecoin"].live and status["namecoin"].reason
        assert miners.device is not None
        assert set(miners.device.stats.rejections) <= {"stale-share"}
        assert len(rewards) == namecoin.height + other.height  # every accepted aux block, once

        # The operator sees it: the API and /metrics say which chain is out and why.
        port = (await daemon.getServiceNamed("web").when_listening()).getHost().port
        response = await treq.get(f"http://127.0.0.1:{port}/api/v1/status")
        chains = {c["chain"]: c for c in (await response.json())["merge_mining"]}
        assert chains["namecoin"]["live"] is False and chains["namecoin"]["reason"]
        assert chains["otherchain"]["live"] is True and chains["otherchain"]["chain_id"] == 2
        assert chains["namecoin"]["blocks"] + chains["otherchain"]["blocks"] == len(rewards)
        response = await treq.get(f"http://127.0.0.1:{port}/metrics")
        families = {f.name: f for f in text_string_to_metric_families(await response.text())}
        up = {s.labels["chain"]: s.value for s in families["sv2proxy_aux_chain_up"].samples}
        assert up == {"namecoin": 0, "otherchain": 1}
        page = await (await treq.get(f"http://127.0.0.1:{port}/")).text()
        assert "Merged mining" in page and "otherchain" in page
    finally:
        await stop(miners, daemon)
        await other.stop()
        await namecoin.stop()
        await node.stop()
        await deferLater(reactor, 0, lambda: None)
