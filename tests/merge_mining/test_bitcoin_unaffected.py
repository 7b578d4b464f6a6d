"""Never at the cost of Bitcoin work: whatever the aux chains do, templates become jobs and a
found block reaches the node (the node job source with merge mining, on loopback)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.web import server
from twisted.web.client import Agent, HTTPConnectionPool

from sv2proxy.bitcoin.serialize import parse_block
from sv2proxy.bitcoin.target import MAX_TARGET, target_to_u256
from sv2proxy.codec import OpenExtendedMiningChannel, SubmitSharesExtended
from sv2proxy.events import EventBus
from sv2proxy.merge_mining.coordinator import MergeMiningCoordinator
from sv2proxy.merge_mining.rpc import AuxChainRPC
from sv2proxy.server.mining import MiningService
from sv2proxy.template.found_blocks import FoundBlockJournal
from sv2proxy.template.job_factory import JobFactory
from sv2proxy.template.node_source import NodeJobSource
from sv2proxy.template.rpc import BitcoinCoreRPC, RPCAuth
from sv2proxy.testing.aux_node import AuxNode
from template.test_node_source import PAYOUT, Node, Owner, _find_block, until

ADDRESS = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


@pytest.mark.parametrize(
    "troubles",
    [("garbage", "hang"), ("down", "garbage"), ("hang", None), ("down", "down")],
    ids=lambda t: "-".join(str(x) for x in t),
)
@pytest_twisted.ensureDeferred
async def test_blocks_are_found_and_submitted_whatever_the_aux_chains_do(tmp_path: Path, troubles) -> None:
    node = Node()
    port = reactor.listenTCP(0, server.Site(node), interface="127.0.0.1")
    pool = HTTPConnectionPool(reactor, persistent=False)
    http = treq.client.HTTPClient(Agent(reactor, pool=pool))
    rpc = BitcoinCoreRPC(f"http://127.0.0.1:{port.getHost().port}/", RPCAuth("u", "p"), http, reactor, timeout=5)
    events = EventBus()
    mining = MiningService(reactor, events)
    coordinator = MergeMiningCoordinator(clock=reactor, events=events, refresh_interval=1, poll_interval=0.05)
    aux_nodes = []
    for index, trouble in enumerate(troubles):
        aux = AuxNode(reactor, chain_id=index + 1, name=f"aux{index}")
        await aux.start()
        url = aux.rpc_url
        if trouble == "down":
            await aux.stop()
        else:
            aux.misbehave = trouble
        aux_nodes.append(aux)
        aux_rpc = BitcoinCoreRPC(url, RPCAuth("aux", "secret"), http, reactor, timeout=0.3)
        client = AuxChainRPC(aux_rpc, aux.name, aux.chain_id, ADDRESS)
        coordinator.add_secondary_chain(aux.name, target_to_u256(MAX_TARGET), client=client)
    source = NodeJobSource(
        rpc,
        JobFactory(PAYOUT, b"/test/", 16),
        mining,
        FoundBlockJournal(tmp_path / "blocks"),
        reactor,
        events,
        0.05,
        merge_mining=coordinator,
    )
    owner = Owner()
    mining.startService()
    coordinator.startService()
    mining.open_channel(owner, OpenExtendedMiningChannel(1, "w", 1.0, target_to_u256(MAX_TARGET), 4))
    source.startService()
    try:
        await until(lambda: source.template is not None and len(owner.messages) >= 3)
        healthy = [trouble is None for trouble in troubles]
        await until(lambda: [c.live for c in coordinator.get_secondary_chains()] == healthy, seconds=5)
        await until(
            lambda: any(m.__class__.__name__ == "NewExtendedMiningJob" for m in owner.messages[3:]) or not any(healthy)
        )
        channel_id = owner.messages[0].channel_id
        jobs = [m for m in owner.messages if m.__class__.__name__ == "NewExtendedMiningJob"]
        job_id = jobs[-1].job_id
        ntime = owner.messages[2].min_ntime
        nonce, _ = _find_block(mining, channel_id, job_id, ntime)
        mining.submit(owner, SubmitSharesExtended(channel_id, 0, job_id, nonce, ntime, 0x20000000, b"\x00" * 12))
        await until(lambda: bool(node.submitted))
        _, transactions = parse_block(bytes.fromhex(node.submitted[0]))
        # The commitment is there exactly when some chain is healthy; the block is found either way.
        assert transactions[0].inputs[0].script_sig.count(b"\xfa\xbemm") == (1 if any(healthy) else 0)
        assert (coordinator.work is not None) == any(healthy)
    finally:
        source.stopService()
        coordinator.stopService()
        mining.stopService()
        for aux in aux_nodes:
            await aux.stop()
        await pool.closeCachedConnections()
        await port.stopListening()
