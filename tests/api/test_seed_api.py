"""The public API of SEED-API.md, exercised the way its examples read."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.defer import succeed
from zope.interface import implementer
from zope.interface.verify import verifyObject

from sv2proxy.bitcoin.target import DIFF1_TARGET, target_to_u256
from sv2proxy.codec import (
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    SetupConnection,
    SetupConnectionSuccess,
    SubmitSharesError,
    SubmitSharesStandard,
)
from sv2proxy.codec.registry import MessageDecoder
from sv2proxy.config import load_config
from sv2proxy.errors import MiningJobError, ProtocolError
from sv2proxy.events import BlockTemplateUpdated, StratumV2MessageReceived
from sv2proxy.pool import StratumV2Pool
from sv2proxy.server import StratumV2Server
from sv2proxy.template import BitcoinCoreNode, BlockTemplate, INodeAPI
from sv2proxy.template.rpc import BitcoinCoreRPC, RPCAuth
from template.fixtures import getblocktemplate_result


@implementer(INodeAPI)
class StaticNode:
    """A node whose template never changes (the HTTP-backed one is tested in tests/template)."""

    def __init__(self) -> None:
        from sv2proxy.events import EventBus

        self.events = EventBus()
        self.template = BlockTemplate.from_getblocktemplate(getblocktemplate_result())
        self.submitted: list[str] = []

    def get_chain_tip(self):
        return succeed("00" * 32)

    def get_block_template(self):
        return succeed(self.template)

    def get_mempool(self):
        return succeed([])

    def submit_block(self, block_hex):
        self.submitted.append(block_hex)
        return succeed(None)

    def publish_event(self, event):
        self.events.publish(event)


def regtest_config():
    return load_config(
        None, {"node.chain": "regtest", "coinbase.payout": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"}
    )


def test_node_implementations_provide_the_interface():
    verifyObject(INodeAPI, StaticNode())
    verifyObject(INodeAPI, BitcoinCoreNode(BitcoinCoreRPC("http://127.0.0.1:1/", RPCAuth("a", "b"), None, None)))


def test_calculate_channel_target():
    pool = StratumV2Pool(StaticNode())
    assert pool.calculate_channel_target(1) == target_to_u256(DIFF1_TARGET)
    assert pool.calculate_channel_target(2) == target_to_u256(DIFF1_TARGET // 2)


@pytest_twisted.ensureDeferred
async def test_the_seed_example_add_miner_template_and_validate_share():
    server = StratumV2Server(regtest_config(), StaticNode())
    channel_id = await server.pool.add_miner("127.0.0.1:3333", 1)
    template = await server.template_generator.generate_template()
    job_id, recipients = await server.pool.set_template(template, server.node_api)
    assert ("127.0.0.1:3333", channel_id) in recipients
    for nonce in range(1000):  # regtest: about every other header is a block, and so a share
        share = SubmitSharesStandard(channel_id, nonce, job_id, nonce, template.start_ntime, template.version)
        if await server.pool.validate_share(channel_id, job_id, share.encode()):
            break
    else:
        raise AssertionError("no share accepted")
    assert await server.pool.validate_share(channel_id, job_id, share.encode()) is False  # a duplicate
    with pytest.raises(ProtocolError):
        await server.pool.validate_share(channel_id, job_id + 1, share.encode())


@pytest_twisted.ensureDeferred
async def test_a_pool_without_payout_cannot_make_jobs():
    pool = StratumV2Pool(StaticNode())
    with pytest.raises(MiningJobError, match="no payout"):
        await pool.set_template(StaticNode().template)


@pytest_twisted.ensureDeferred
async def test_handle_message_answers_raw_frames_and_handle_event_takes_templates():
    node = StaticNode()
    server = StratumV2Server(regtest_config(), node)
    peer = "10.0.0.7:4000"
    with pytest.raises(ProtocolError, match="before SetupConnection"):
        await server.handle_message(OpenExtendedMiningChannel(1, "w", 1.0, b"\xff" * 32, 4).to_frame(), peer)
    reply = await server.handle_message(SetupConnection(0, 2, 2, 0, "h", 1, "v", "hw", "fw", "d").to_frame(), peer)
    assert MessageDecoder().feed(reply) == [SetupConnectionSuccess(2, 0)]
    reply = await server.handle_message(OpenExtendedMiningChannel(1, "w", 1.0, b"\xff" * 32, 4).to_frame(), peer)
    (opened,) = MessageDecoder().feed(reply)
    assert isinstance(opened, OpenExtendedMiningChannelSuccess)
    await server.handle_event(BlockTemplateUpdated(node.template))
    await server.handle_event(
        StratumV2MessageReceived(SubmitSharesStandard(99, 1, 1, 0, 0, 0).to_frame(), peer)
    )
    reply = await server.handle_message(SubmitSharesStandard(99, 1, 1, 0, 0, 0).to_frame(), peer)
    assert MessageDecoder().feed(reply) == [SubmitSharesError(99, 1, "invalid-channel-id")]


@pytest_twisted.ensureDeferred
async def test_a_block_found_through_validate_share_is_submitted_to_the_node():
    from sv2proxy.bitcoin.serialize import parse_block

    node = StaticNode()
    server = StratumV2Server(regtest_config(), node)
    channel_id = await server.pool.add_miner("127.0.0.1:3333", 0.0001)
    job_id, _ = await server.pool.set_template(node.template)
    channel = server.pool.manager.channels[channel_id]
    from sv2proxy.pool.validation import validate_share as probe

    for nonce in range(10_000):  # regtest: find a block, then submit it through the API
        result = probe(channel, job_id, nonce, node.template.start_ntime, node.template.version, None, 2e9)
        channel.seen.clear()
        if result.is_block:
            break
    share = SubmitSharesStandard(channel_id, 1, job_id, nonce, node.template.start_ntime, node.template.version)
    assert await server.pool.validate_share(channel_id, job_id, share.encode()) is True
    (block_hex,) = node.submitted
    header, transactions = parse_block(bytes.fromhex(block_hex))
    assert header.hash == result.hash and len(transactions) == 1 + len(node.template.transactions)


@pytest_twisted.ensureDeferred
async def test_a_difficulty_event_reaches_the_peer_with_its_next_reply():
    from sv2proxy.codec import SetTarget
    from sv2proxy.events import MiningDifficultyChanged

    server = StratumV2Server(regtest_config(), StaticNode())
    peer = "10.0.0.8:4000"
    await server.handle_message(SetupConnection(0, 2, 2, 0, "h", 1, "v", "hw", "fw", "d").to_frame(), peer)
    reply = await server.handle_message(OpenExtendedMiningChannel(1, "w", 1.0, b"\xff" * 32, 4).to_frame(), peer)
    (opened,) = MessageDecoder().feed(reply)
    await server.handle_event(MiningDifficultyChanged(difficulty=3.0))
    reply = await server.handle_message(SubmitSharesStandard(99, 1, 1, 0, 0, 0).to_frame(), peer)
    first, second = MessageDecoder().feed(reply)
    assert isinstance(first, SetTarget) and first.channel_id == opened.channel_id
    assert second == SubmitSharesError(99, 1, "invalid-channel-id")
    with pytest.raises(ValueError):
        await server.handle_event(MiningDifficultyChanged(difficulty=0.0))


def test_the_server_owns_a_merge_mining_coordinator():
    from twisted.internet.task import Clock

    from sv2proxy.merge_mining import MergeMiningCoordinator

    server = StratumV2Server(regtest_config(), StaticNode(), Clock())
    coordinator = server.merge_mining
    assert isinstance(coordinator, MergeMiningCoordinator) and coordinator.get_secondary_chains() == []
    coordinator.add_secondary_chain("namecoin", b"\xff" * 32)
    assert [chain.name for chain in coordinator.get_secondary_chains()] == ["namecoin"]
