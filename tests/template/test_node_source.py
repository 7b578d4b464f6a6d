"""The node job source against a JSON-RPC node on loopback (twisted.web): templates in, blocks out."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.web import resource, server
from twisted.web.client import Agent, HTTPConnectionPool

from sv2proxy.bitcoin.address import Network, script_for_address
from sv2proxy.bitcoin.hashing import display_hex
from sv2proxy.bitcoin.target import MAX_TARGET, target_to_u256
from sv2proxy.codec import OpenExtendedMiningChannel, SetNewPrevHash, SubmitSharesExtended
from sv2proxy.events import EventBus
from sv2proxy.pool.validation import validate_share
from sv2proxy.server.mining import DELIVERY_CHUNK, MiningService
from sv2proxy.template.found_blocks import FoundBlockJournal
from sv2proxy.template.job_factory import JobFactory
from sv2proxy.template.node_source import NodeJobSource
from sv2proxy.template.rpc import BitcoinCoreRPC, RPCAuth

from .fixtures import getblocktemplate_result

PAYOUT = script_for_address("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", Network.REGTEST)


class Node(resource.Resource):
    """Just enough of Bitcoin Core: getblocktemplate, getbestblockhash, submitblock; can fail."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.template = getblocktemplate_result()
        self.failing = False
        self.submitted: list[str] = []
        self.answer: str | None = None
        self.longpoll = False
        self.held: list = []
        self.rpc_error: dict | None = None

    def render_POST(self, request):  # noqa: N802
        expected = "Basic " + base64.b64encode(b"u:p").decode()
        if request.getHeader("authorization") != expected:
            request.setResponseCode(401)
            return b""
        body = json.loads(request.content.read())
        if self.failing:
            request.setResponseCode(500)
            return b"internal error"
        method, result = body["method"], None
        if method == "getblocktemplate":
            if self.longpoll and len(body["params"][0]) > 1:
                self.held.append(request)  # a long poll: held until the test lets go
                return server.NOT_DONE_YET
            result = dict(self.template, longpollid="lp" if self.longpoll else None)
        elif method == "submitblock" and self.rpc_error is not None:
            request.setResponseCode(500)
            return json.dumps({"result": None, "error": self.rpc_error, "id": body["id"]}).encode()
        elif method == "getbestblockhash":
            result = self.template["previousblockhash"]
        elif method == "submitblock":
            self.submitted.append(body["params"][0])
            result = self.answer
        return json.dumps({"result": result, "error": None, "id": body["id"]}).encode()


class Owner:
    def __init__(self) -> None:
        self.messages: list = []

    def sendMessage(self, message) -> None:  # noqa: N802
        self.messages.append(message)


@pytest.fixture
def setup(tmp_path: Path):
    node = Node()
    port = reactor.listenTCP(0, server.Site(node), interface="127.0.0.1")
    http = treq.client.HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))
    rpc = BitcoinCoreRPC(f"http://127.0.0.1:{port.getHost().port}/", RPCAuth("u", "p"), http, reactor, timeout=5)
    mining = MiningService(reactor, EventBus())
    journal = FoundBlockJournal(tmp_path / "blocks")

    def source() -> NodeJobSource:
        return NodeJobSource(rpc, JobFactory(PAYOUT, b"/test/", 16), mining, journal, reactor, EventBus(), 0.05)

    yield node, mining, journal, source
    pytest_twisted.blockon(port.stopListening())


async def until(condition, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await deferLater(reactor, 0.02, lambda: None)
    raise AssertionError("condition not met in time")


def _find_block(mining: MiningService, channel_id: int, job_id: int, ntime: int) -> tuple[int, bytes]:
    channel = mining.manager.channels[channel_id]
    for nonce in range(100_000):
        result = validate_share(channel, job_id, nonce, ntime, 0x20000000, b"\x00" * 12, ntime)
        channel.seen.clear()
        if result.is_block:
            return nonce, result.hash
    raise AssertionError("no block found")


@pytest_twisted.ensureDeferred
async def test_templates_become_work_and_a_found_block_is_journaled_and_submitted(setup):
    node, mining, journal, make = setup
    owner = Owner()
    mining.startService()
    mining.open_channel(owner, OpenExtendedMiningChannel(1, "w", 1.0, target_to_u256(MAX_TARGET), 4))
    source = make()
    source.startService()
    try:
        await until(lambda: source.template is not None and len(owner.messages) >= 3)
        channel_id = owner.messages[0].channel_id
        job_id = owner.messages[1].job_id
        assert mining.block_sink is source

        ntime = owner.messages[2].min_ntime
        nonce, block_hash = _find_block(mining, channel_id, job_id, ntime)
        share = SubmitSharesExtended(channel_id, 0, job_id, nonce, ntime, 0x20000000, b"\x00" * 12)
        mining.submit(owner, share)
        await until(lambda: node.submitted and not journal.pending())
        accepted = journal.accepted_dir / f"{display_hex(block_hash)}.hex"
        assert accepted.read_text() == node.submitted[0]
        assert node.submitted[0][160:].startswith("04")  # coinbase + the template's three transactions
    finally:
        source.stopService()
        mining.stopService()


@pytest_twisted.ensureDeferred
async def test_a_rejected_block_is_kept_with_its_reason_and_pending_blocks_are_resubmitted(setup):
    node, mining, journal, make = setup
    journal.save("00" * 32, "deadbeef")
    node.answer = "high-hash"
    mining.startService()
    source = make()
    source.startService()
    try:
        await until(lambda: node.submitted == ["deadbeef"] and not journal.pending())
        assert (journal.rejected_dir / f"{'00' * 32}.reason").read_text() == "high-hash\n"
    finally:
        source.stopService()
        mining.stopService()


@pytest_twisted.ensureDeferred
async def test_a_failing_node_is_retried_and_miners_keep_their_work(setup):
    node, mining, journal, make = setup
    owner = Owner()
    mining.startService()
    mining.open_channel(owner, OpenExtendedMiningChannel(1, "w", 1.0, target_to_u256(MAX_TARGET), 4))
    source = make()
    source.startService()
    try:
        await until(lambda: source.template is not None)
        node.failing = True
        await deferLater(reactor, 0.3, lambda: None)
        assert mining.manager.channels[owner.messages[0].channel_id].jobs.active is not None
        node.failing = False
        await until(lambda: source._failures == 0, seconds=10)
    finally:
        source.stopService()
        mining.stopService()
    await defer.succeed(None)


@pytest_twisted.ensureDeferred
async def test_a_new_tip_cuts_a_long_poll_short(setup):
    node, mining, journal, make = setup
    node.longpoll = True
    mining.startService()
    source = make()
    source.startService()
    try:
        await until(lambda: source.template is not None and node.held)
        first = source.template.prev_hash
        node.template = dict(node.template, previousblockhash="11" * 32, height=node.template["height"] + 1)
        await until(lambda: source.template.prev_hash != first, seconds=2)
        assert source._failures == 0  # a cancelled long poll is not a node failure
    finally:
        source.stopService()
        mining.stopService()
        for request in node.held:
            if not request.finished and not request._disconnected:
                request.finish()


class NoticingList(list):
    """The node's held long polls, noting at each arrival whether every owner had its new tip."""

    def __init__(self, owners: list[Owner]) -> None:
        super().__init__()
        self.owners = owners
        self.all_served: list[bool] = []

    def append(self, request) -> None:
        self.all_served.append(all(any(isinstance(m, SetNewPrevHash) for m in o.messages) for o in self.owners))
        super().append(request)


@pytest_twisted.ensureDeferred
async def test_the_next_long_poll_waits_until_every_miner_has_the_new_tip(setup):
    node, mining, journal, make = setup
    node.longpoll = True
    owners = [Owner() for _ in range(4 * DELIVERY_CHUNK)]  # a fan-out over several reactor turns
    node.held = held = NoticingList(owners)
    mining.startService()
    for i, owner in enumerate(owners):
        mining.open_channel(owner, OpenExtendedMiningChannel(i, "w", 1.0, target_to_u256(MAX_TARGET), 4))
    source = make()
    source.startService()
    try:
        await until(lambda: held.all_served)
        assert held.all_served == [True]
    finally:
        source.stopService()
        mining.stopService()
        for request in node.held:
            if not request.finished and not request._disconnected:
                request.finish()


@pytest_twisted.ensureDeferred
async def test_a_block_the_node_cannot_decode_is_rejected_not_retried_forever(setup):
    node, mining, journal, make = setup
    journal.save("ab" * 32, "00")
    node.rpc_error = {"code": -22, "message": "Block decode failed"}
    mining.startService()
    source = make()
    source.startService()
    try:
        await until(lambda: not journal.pending())
        assert "Block decode failed" in (journal.rejected_dir / f"{'ab' * 32}.reason").read_text()
    finally:
        source.stopService()
        mining.stopService()
