"""The Template Provider job source end to end on loopback: a regtest node behind a Template
Provider, the source pinned to the TP's authority key, MiningService, and a CPU miner through
Noise.  A block counts only when libbitcoinkernel connects it and its coinbase pays our address."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import ClientFactory
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, globalLogPublisher

from sv2proxy.bitcoin.address import Network, script_for_address
from sv2proxy.bitcoin.hashing import merkle_path, sha256d
from sv2proxy.bitcoin.script import bip34_height_push, witness_commitment, witness_commitment_script
from sv2proxy.bitcoin.serialize import Transaction, TxOut
from sv2proxy.codec import SetupConnection, SetupConnectionError, SetupConnectionSuccess
from sv2proxy.codec.framing import FrameDecoder
from sv2proxy.codec.registry import decode_frame
from sv2proxy.codec.template_distribution import (
    CoinbaseOutputConstraints,
    NewTemplate,
    RequestTransactionData,
    RequestTransactionDataError,
    RequestTransactionDataSuccess,
    SetNewPrevHash,
    SubmitSolution,
)
from sv2proxy.events import BlockTemplateUpdated, EventBus
from sv2proxy.link.framed import FramedProtocol
from sv2proxy.link.noise import NoiseClientFactory, NoiseServerFactory, ServerCredentials
from sv2proxy.noise.keys import AuthorityKey
from sv2proxy.pool.manager import PoolSettings
from sv2proxy.pool.vardiff import VardiffConfig
from sv2proxy.server.miner import MinerFactory
from sv2proxy.server.mining import MiningService
from sv2proxy.template.block_template import BlockTemplate
from sv2proxy.template.found_blocks import FoundBlockJournal
from sv2proxy.template.job_factory import JobFactory
from sv2proxy.template.tdp_source import (
    TemplateDistributionClient,
    TemplateProviderSource,
    client_endpoint,
    coinbase_output_constraints,
)
from sv2proxy.testing import MiningDeviceFactory, RegtestNode
from sv2proxy.testing.template_provider import TemplateProvider

from .fixtures import TX_A_DATA, TX_B_DATA, TX_C_DATA

ADDRESS = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
PAYOUT = script_for_address(ADDRESS, Network.REGTEST)


async def until(condition, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("condition not met in time")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mining_service() -> MiningService:
    settings = PoolSettings(vardiff=VardiffConfig(min_difficulty=0.000001), share_batch_size=1)
    return MiningService(reactor, EventBus(), settings)


def test_coinbase_output_constraints_cover_the_payout_outputs():
    factory = JobFactory(((PAYOUT, 50), (bytes.fromhex("51"), 50)), b"/t/", 16)
    # P2WPKH: 8 value + 1 length + 22 script; OP_TRUE: 8 + 1 + 1.
    assert coinbase_output_constraints(factory, 400) == CoinbaseOutputConstraints(31 + 10, 400)


def test_client_endpoint_accepts_host_port_and_endpoint_strings():
    assert client_endpoint(reactor, "127.0.0.1:8442")._hostText == "127.0.0.1"
    assert client_endpoint(reactor, "[::1]:8442")._hostText == "::1"
    assert client_endpoint(reactor, "tcp:host=127.0.0.1:port=8442")._port == 8442
    for bad in ("localhost", "localhost:port", ":8442", "host:70000"):
        try:
            client_endpoint(reactor, bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


@pytest_twisted.ensureDeferred
async def test_blocks_found_through_a_template_provider_are_connected(tmp_path: Path):
    node = RegtestNode(tmp_path / "node", reactor)
    await node.start()
    provider = TemplateProvider(node, reactor)
    await provider.start()
    mining = mining_service()
    mining.startService()
    source = TemplateProviderSource(
        f"127.0.0.1:{provider.port}",
        JobFactory(PAYOUT, b"/tdp/", 16),
        mining,
        reactor,
        authority_key=provider.authority.public,
    )
    source.startService()
    authority = AuthorityKey.generate()
    listening = reactor.listenTCP(
        0,
        NoiseServerFactory(MinerFactory(mining), ServerCredentials(authority, reactor), reactor),
        interface="127.0.0.1",
    )
    miners = MiningDeviceFactory(reactor, "alice", pause=0.05, nonces_per_slice=8)
    try:
        start_height = node.height
        await until(lambda: source.template is not None)
        assert source.template.height == start_height + 1
        reactor.connectTCP("127.0.0.1", listening.getHost().port, NoiseClientFactory(miners, authority.public, reactor))
        await until(lambda: node.height >= start_height + 2, seconds=15)
        connected = [s for s in provider.solutions if s.result is None]
        assert len(connected) >= 2
        # The second block was mined on work from the TP's SetNewPrevHash for the first one.
        await until(lambda: source.template is not None and source.template.height > start_height + 2)
        coinbase = Transaction.parse(connected[0].message.coinbase_tx)
        assert [out.script_pubkey for out in coinbase.outputs][0] == PAYOUT
        assert coinbase.outputs[0].value == 50 * 100_000_000
        assert coinbase.lock_time == start_height and coinbase.version == 2
        assert coinbase.inputs[0].sequence == 0xFFFFFFFE
        assert b"/tdp/" in coinbase.inputs[0].script_sig
    finally:
        if miners.device is not None and miners.device.transport is not None:
            miners.device.transport.loseConnection()
        await listening.stopListening()
        await source.stopService()
        mining.stopService()
        await provider.stop()
        await node.stop()


@pytest_twisted.ensureDeferred
async def test_the_source_logs_and_retries_while_the_provider_is_down_and_after_a_loss(tmp_path: Path):
    port = free_port()
    warnings: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("log_namespace") == "sv2proxy.template.tdp_source" and event["log_level"] is LogLevel.warn:
            warnings.append(event)

    globalLogPublisher.addObserver(observe)
    node = RegtestNode(tmp_path / "node", reactor)
    await node.start()
    provider = TemplateProvider(node, reactor, endpoint=f"tcp:{port}:interface=127.0.0.1")
    mining = mining_service()
    source = TemplateProviderSource(
        f"127.0.0.1:{port}", JobFactory(PAYOUT, b"/tdp/", 16), mining, reactor, authority_key=provider.authority.public
    )
    source.startService()
    try:
        await until(lambda: len(warnings) >= 2)  # refused, logged, retried, refused again
        assert all(event["where"] == f"127.0.0.1:{port}" for event in warnings)
        assert source.template is None
        await provider.start()
        await until(lambda: source.template is not None)
        assert source.template.height == node.height + 1
        first = source.protocol
        # The TP goes away and comes back (same key, same port): logged, reconnected, new work.
        await provider.stop()
        await until(lambda: source.protocol is None)
        assert any("lost the Template Provider" in event["log_format"] for event in warnings)
        node.mine_to(PAYOUT, 1)
        provider = TemplateProvider(
            node, reactor, endpoint=f"tcp:{port}:interface=127.0.0.1", authority=provider.authority
        )
        await provider.start()
        await until(lambda: source.protocol is not None and source.protocol is not first)
        await until(lambda: source.template.height == node.height + 1)
    finally:
        globalLogPublisher.removeObserver(observe)
        await source.stopService()
        await provider.stop()
        await node.stop()


@pytest_twisted.ensureDeferred
async def test_the_provider_shapes_templates_like_sv2_tp_and_serves_transaction_data(tmp_path: Path):
    received: list = []

    class Client(FramedProtocol):
        def connectionMade(self) -> None:  # noqa: N802
            self.sendMessage(SetupConnection(2, 2, 2, 0, "127.0.0.1", 0, "test", "", "", ""))

        def messageReceived(self, message) -> None:  # noqa: N802
            received.append(message)
            if len(received) == 1:
                self.sendMessage(CoinbaseOutputConstraints(31, 400))

    factory = ClientFactory.forProtocol(Client)
    node = RegtestNode(tmp_path / "node", reactor)
    await node.start()
    provider = TemplateProvider(node, reactor)
    await provider.start()
    client = None
    try:
        node.mine_to(PAYOUT, 1)
        connector = reactor.connectTCP(
            "127.0.0.1", provider.port, NoiseClientFactory(factory, provider.authority.public, reactor)
        )
        await until(lambda: len(received) >= 3)
        new, prev = received[1], received[2]
        assert isinstance(new, NewTemplate) and isinstance(prev, SetNewPrevHash)
        height = node.height + 1
        assert new.future_template and prev.template_id == new.template_id
        assert new.coinbase_prefix == bip34_height_push(height)  # the BIP34 push alone
        assert (new.coinbase_tx_version, new.coinbase_tx_input_sequence) == (2, 0xFFFFFFFE)
        assert new.coinbase_tx_locktime == height - 1 and new.coinbase_tx_outputs_count == 1
        assert new.coinbase_tx_value_remaining == 50 * 100_000_000
        assert prev.prev_hash == node.chain.tip_hash
        client = connector.transport.protocol.wrappedProtocol
        client.sendMessage(RequestTransactionData(new.template_id))
        client.sendMessage(RequestTransactionData(12345))
        await until(lambda: len(received) >= 5)
        assert received[3] == RequestTransactionDataSuccess(new.template_id, bytes(32), ())
        assert isinstance(received[4], RequestTransactionDataError)
        assert received[4].error_code == "template-id-not-found"
        # A new tip: another future template and the SetNewPrevHash activating it.
        node.mine_to(PAYOUT, 1)
        await until(lambda: len(received) >= 7)
        assert received[5].future_template and received[6].template_id == received[5].template_id
        assert received[6].prev_hash == node.chain.tip_hash
        client.sendMessage(RequestTransactionData(new.template_id))  # a template of the old tip
        await until(lambda: len(received) >= 8)
        assert received[7] == RequestTransactionDataError(new.template_id, "stale-template-id")
        # Solutions the provider cannot rebuild are dropped, not given to the node.
        provider.submit_solution(SubmitSolution(999, 0x20000000, 0, 0, b""))
        provider.submit_solution(SubmitSolution(new.template_id, 0x20000000, 0, 0, b"\x00"))
        assert provider.solutions == []
    finally:
        if client is not None:
            client.transport.loseConnection()
        await provider.stop()
        await node.stop()


class FakeMining:
    """Records what the source hands the mining service."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.block_sink = None

    def new_tip(self, work, prev, variant=None) -> int:
        self.calls.append(("new_tip", work))
        self.variant = variant
        return 1

    def new_work(self, work, variant=None) -> int:
        self.calls.append(("new_work", work))
        self.variant = variant
        return 1


def scripted_session():
    mining = FakeMining()
    clock = Clock()
    endpoint = TCP4ClientEndpoint(clock, "127.0.0.1", 1)
    source = TemplateProviderSource(endpoint, JobFactory(PAYOUT, b"/tdp/", 16), mining, clock, events=EventBus())
    protocol = TemplateDistributionClient(source, 1)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return mining, source, protocol, transport


def sent(transport) -> list:
    return [decode_frame(frame) for frame in FrameDecoder().feed(transport.value())]


def template_message(template_id: int, future: bool, value: int) -> NewTemplate:
    return NewTemplate(
        template_id=template_id,
        future_template=future,
        version=0x20000000,
        coinbase_tx_version=2,
        coinbase_prefix=bip34_height_push(101),
        coinbase_tx_input_sequence=0xFFFFFFFE,
        coinbase_tx_value_remaining=value,
        coinbase_tx_outputs_count=1,
        coinbase_tx_outputs=TxOut(0, witness_commitment_script(witness_commitment([]))).serialize(),
        coinbase_tx_locktime=100,
        merkle_path=(),
    )


def test_a_session_sets_up_then_turns_templates_into_tips_and_work():
    mining, source, protocol, transport = scripted_session()
    setup = sent(transport)
    assert len(setup) == 1 and isinstance(setup[0], SetupConnection)
    assert (setup[0].protocol, setup[0].min_version, setup[0].max_version) == (2, 2, 2)
    transport.clear()
    updates: list[BlockTemplateUpdated] = []
    source.events.subscribe(BlockTemplateUpdated, updates.append)
    protocol.dataReceived(SetupConnectionSuccess(2, 0).to_frame())
    assert sent(transport) == [CoinbaseOutputConstraints(31, 400)]
    prev = SetNewPrevHash(7, bytes(range(32)), 1_700_000_000, 0x207FFFFF, b"\xff" * 31 + b"\x7f")
    protocol.dataReceived(template_message(7, True, 50_0000_0000).to_frame())
    assert mining.calls == []  # a future template waits for its SetNewPrevHash
    protocol.dataReceived(prev.to_frame())
    protocol.dataReceived(template_message(8, False, 50_0001_0000).to_frame())
    assert [name for name, _ in mining.calls] == ["new_tip", "new_work"]
    assert mining.calls[0][1].future and not mining.calls[1][1].future
    assert source.template.template_id == 8 and source.template.coinbase_value == 50_0001_0000
    assert source.template.prev_hash == bytes(range(32))
    assert [(event.template_id, event.clean) for event in updates] == [(1, True), (2, False)]
    # A template that cannot be mined is refused; the work stays.
    broken = dataclasses.replace(template_message(9, False, 1), coinbase_prefix=b"")
    protocol.dataReceived(broken.to_frame())
    assert len(mining.calls) == 2 and source.template.template_id == 8
    # A SetNewPrevHash for a template never announced breaks the protocol: the link closes.
    protocol.dataReceived(dataclasses.replace(prev, template_id=99).to_frame())
    assert transport.disconnecting


def test_non_future_templates_before_any_prev_hash_are_ignored():
    mining, source, protocol, transport = scripted_session()
    protocol.dataReceived(SetupConnectionSuccess(2, 0).to_frame())
    protocol.dataReceived(template_message(3, False, 1).to_frame())
    assert mining.calls == [] and source.template is None and not transport.disconnecting


def test_a_refused_setup_is_logged_and_the_link_closed():
    errors: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("log_namespace") == "sv2proxy.template.tdp_source" and event["log_level"] is LogLevel.error:
            errors.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        mining, _, protocol, transport = scripted_session()
        protocol.dataReceived(SetupConnectionError(0, "protocol-version-mismatch").to_frame())
    finally:
        globalLogPublisher.removeObserver(observe)
    assert transport.disconnecting
    assert [event["error"] for event in errors] == ["protocol-version-mismatch"]
    assert mining.calls == []


def test_a_found_block_goes_to_the_provider_only_from_its_own_session():
    from sv2proxy.server.mining import FoundBlock

    mining, source, protocol, transport = scripted_session()
    protocol.dataReceived(SetupConnectionSuccess(2, 0).to_frame())
    prev = SetNewPrevHash(7, bytes(range(32)), 1_700_000_000, 0x207FFFFF, b"\xff" * 31 + b"\x7f")
    protocol.dataReceived(template_message(7, True, 50_0000_0000).to_frame())
    protocol.dataReceived(prev.to_frame())
    source_id = mining.calls[0][1].source_id
    assembler = source._assemblers[(source_id, None)].assembler
    extranonce = bytes(16)
    block_hash = assembler.header(extranonce, 0x20000000, 1_700_000_001, 42).hash
    transport.clear()

    def found(source_id: int, block_hash: bytes) -> FoundBlock:
        return FoundBlock(source_id, extranonce, 0x20000000, 1_700_000_001, 42, block_hash, "alice", 1)

    source.block_found(found(source_id + 1, block_hash))  # a template no longer kept
    source.block_found(found(source_id, bytes(32)))  # does not rebuild to the miner's hash
    assert sent(transport) == []
    source.block_found(found(source_id, block_hash))
    [solution] = sent(transport)
    assert solution == assembler.submit_solution(extranonce, 0x20000000, 1_700_000_001, 42)
    assert solution.template_id == 7
    transport.clear()
    protocol.connectionLost(None)
    source.block_found(found(source_id, block_hash))  # its session is gone: ids mean nothing now
    assert sent(transport) == [] and source.protocol is None


def test_the_provider_refuses_other_protocols_and_versions_like_sv2_tp():
    from sv2proxy.testing.template_provider import TemplateProviderProtocol

    for request, error in (
        (SetupConnection(0, 2, 2, 5, "h", 1, "v", "", "", ""), "unsupported-protocol"),
        (SetupConnection(2, 3, 4, 5, "h", 1, "v", "", "", ""), "protocol-version-mismatch"),
    ):
        protocol = TemplateProviderProtocol(provider=None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(request.to_frame())
        assert sent(transport) == [SetupConnectionError(5, error)]  # the client's flags echoed
        assert transport.disconnecting
    protocol = TemplateProviderProtocol(provider=None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(CoinbaseOutputConstraints(31, 400).to_frame())  # before SetupConnection
    assert sent(transport) == [] and transport.disconnecting


def test_a_solo_pool_reserves_room_for_any_address_and_keeps_each_payouts_assembler():
    from sv2proxy.template.tdp_source import LARGEST_SOLO_OUTPUT, coinbase_output_constraints

    factory = JobFactory(PAYOUT, b"/tdp/", 16)
    pooled = coinbase_output_constraints(factory, 400)
    assert coinbase_output_constraints(factory, 400, solo=True).coinbase_output_max_additional_size == max(
        pooled.coinbase_output_max_additional_size, LARGEST_SOLO_OUTPUT
    )
    mining, source, protocol, transport = scripted_session()
    protocol.dataReceived(SetupConnectionSuccess(2, 0).to_frame())
    protocol.dataReceived(template_message(7, True, 50_0000_0000).to_frame())
    protocol.dataReceived(SetNewPrevHash(7, bytes(range(32)), 1_700_000_000, 0x207FFFFF, b"\xff" * 32).to_frame())
    source_id = mining.calls[0][1].source_id
    script = bytes.fromhex("5120") + bytes(32)  # a P2TR miner
    work = mining.variant(script)
    assert work.payout == script and work.source_id == source_id
    assert (source_id, script) in source._assemblers


# -- RequestTransactionData and complete found blocks ---------------------------------------

TRANSACTIONS = tuple(bytes.fromhex(data) for data in (TX_A_DATA, TX_B_DATA, TX_C_DATA))
PREV_HASH = bytes(range(32))
NTIME = 1_700_000_001


def template_with_transactions(template_id: int, future: bool, transactions=TRANSACTIONS) -> NewTemplate:
    """A template holding ``transactions``: their merkle path, their witness commitment."""
    parsed = [Transaction.parse(data) for data in transactions]
    commitment = witness_commitment_script(witness_commitment([tx.wtxid for tx in parsed]))
    return dataclasses.replace(
        template_message(template_id, future, 50_0000_0000),
        coinbase_tx_outputs=TxOut(0, commitment).serialize(),
        merkle_path=tuple(merkle_path([tx.txid for tx in parsed])),
    )


def journaled_session(tmp_path: Path):
    """A session past SetupConnection.Success, its source writing found blocks to tmp_path/blocks."""
    mining = FakeMining()
    clock = Clock()
    journal = FoundBlockJournal(tmp_path / "blocks")
    source = TemplateProviderSource(
        TCP4ClientEndpoint(clock, "127.0.0.1", 1), JobFactory(PAYOUT, b"/tdp/", 16), mining, clock, journal=journal
    )
    protocol = TemplateDistributionClient(source, 1)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(SetupConnectionSuccess(2, 0).to_frame())
    transport.clear()
    return mining, source, protocol, transport, journal


def activate(protocol, template: NewTemplate) -> None:
    protocol.dataReceived(template.to_frame())
    prev = SetNewPrevHash(template.template_id, PREV_HASH, NTIME - 1, 0x207FFFFF, b"\xff" * 31 + b"\x7f")
    protocol.dataReceived(prev.to_frame())


def find_block(source, work, payout: bytes | None = None, nonce: int = 42):
    """The FoundBlock a miner would report on ``work``, its hash rebuilt as the miner hashed it."""
    from sv2proxy.bitcoin.hashing import merkle_root_from_path
    from sv2proxy.bitcoin.serialize import BlockHeader
    from sv2proxy.server.mining import FoundBlock

    extranonce = bytes(range(16))
    coinbase = Transaction.parse(work.coinbase_prefix + extranonce + work.coinbase_suffix)
    root = merkle_root_from_path(coinbase.txid, work.merkle_path)
    header = BlockHeader(work.version, PREV_HASH, root, NTIME, 0x207FFFFF, nonce)
    return FoundBlock(work.source_id, extranonce, work.version, NTIME, nonce, header.hash, "alice", 1, payout)


def logged(level: LogLevel):
    events: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("log_namespace") == "sv2proxy.template.tdp_source" and event["log_level"] is level:
            events.append(event)

    globalLogPublisher.addObserver(observe)
    return events, lambda: globalLogPublisher.removeObserver(observe)


def test_each_template_installed_as_work_is_asked_for_its_transactions(tmp_path: Path):
    mining, source, protocol, transport, _ = journaled_session(tmp_path)
    protocol.dataReceived(template_with_transactions(7, True).to_frame())
    assert sent(transport) == []  # a future template is asked for once it is activated
    activate(protocol, template_with_transactions(8, True))
    assert sent(transport) == [RequestTransactionData(8)]
    transport.clear()
    protocol.dataReceived(template_with_transactions(9, False, TRANSACTIONS[:2]).to_frame())
    assert sent(transport) == [RequestTransactionData(9)]  # a non-future one on arrival
    transport.clear()
    protocol.dataReceived(template_message(10, False, 50_0000_0000).to_frame())
    assert sent(transport) == []  # an empty merkle path: the coinbase is the whole block
    assert [name for name, _ in mining.calls] == ["new_tip", "new_work", "new_work"]


def test_found_blocks_are_written_whole_once_the_transactions_are_known(tmp_path: Path):
    from sv2proxy.bitcoin.serialize import parse_block

    mining, source, protocol, transport, journal = journaled_session(tmp_path)
    activate(protocol, template_with_transactions(8, True))
    protocol.dataReceived(RequestTransactionDataSuccess(8, bytes(32), TRANSACTIONS).to_frame())
    transport.clear()
    found = find_block(source, mining.calls[0][1])
    source.block_found(found)
    [solution] = sent(transport)
    assert isinstance(solution, SubmitSolution) and solution.template_id == 8
    [(block_hash, block_hex)] = journal.pending()
    header, transactions = parse_block(bytes.fromhex(block_hex))
    assert header.hash == found.block_hash and block_hash == header.hash[::-1].hex()
    assert [tx.serialize() for tx in transactions[1:]] == list(TRANSACTIONS)
    assert transactions[0].serialize() == solution.coinbase_tx
    assert journal.incomplete() == []
    # A solo miner's variant made after the transactions came gets them too.
    solo = mining.variant(bytes.fromhex("5120") + bytes(32))
    source.block_found(find_block(source, solo, payout=solo.payout, nonce=43))
    assert len(journal.pending()) == 2 and journal.incomplete() == []


def test_a_block_found_before_its_transactions_is_completed_when_they_come(tmp_path: Path):
    import json

    from sv2proxy.bitcoin.serialize import parse_block

    mining, source, protocol, transport, journal = journaled_session(tmp_path)
    activate(protocol, template_with_transactions(8, True))
    assert sent(transport) == [RequestTransactionData(8)]
    transport.clear()
    found = find_block(source, mining.calls[0][1])
    warnings, stop = logged(LogLevel.warn)
    try:
        source.block_found(found)
    finally:
        stop()
    [solution] = sent(transport)  # at once; the transactions were asked for at activation
    assert isinstance(solution, SubmitSolution)
    assert journal.pending() == []  # no .hex a node would refuse
    [partial] = journal.incomplete()
    saved = json.loads(partial.read_text())
    assert saved["complete"] is False and saved["template_id"] == 8
    assert sha256d(bytes.fromhex(saved["header"])) == found.block_hash
    assert bytes.fromhex(saved["coinbase"]) == solution.coinbase_tx
    assert [event["path"] for event in warnings] == [partial]
    # The TP confirms the block before the transactions come: settled, then completed in place.
    protocol.dataReceived(template_with_transactions(9, True).to_frame())
    protocol.dataReceived(SetNewPrevHash(9, found.block_hash, NTIME, 0x207FFFFF, b"\xff" * 32).to_frame())
    protocol.dataReceived(RequestTransactionDataSuccess(8, bytes(32), TRANSACTIONS).to_frame())
    accepted = journal.accepted_dir / f"{found.block_hash[::-1].hex()}.hex"
    header, transactions = parse_block(bytes.fromhex(accepted.read_text()))
    assert header.hash == found.block_hash and len(transactions) == 4
    assert journal.pending() == [] and journal.incomplete() == []
    assert list(journal.accepted_dir.glob("*.incomplete.json")) == []


def test_a_transaction_data_error_is_logged_and_harmless(tmp_path: Path):
    mining, source, protocol, transport, journal = journaled_session(tmp_path)
    activate(protocol, template_with_transactions(8, True))
    transport.clear()
    warnings, stop = logged(LogLevel.warn)
    try:
        protocol.dataReceived(RequestTransactionDataError(8, "stale-template-id").to_frame())
        protocol.dataReceived(RequestTransactionDataError(99, "template-id-not-found").to_frame())
    finally:
        stop()
    assert [(event["id"], event["error"]) for event in warnings] == [
        (8, "stale-template-id"),
        (99, "template-id-not-found"),
    ]
    assert not transport.disconnecting and source.protocol is protocol
    found = find_block(source, mining.calls[0][1])
    source.block_found(found)
    assert [type(message) for message in sent(transport)] == [SubmitSolution]  # not asked again
    [partial] = journal.incomplete()
    assert "stale-template-id" in partial.read_text() and journal.pending() == []


def test_transactions_that_do_not_match_the_template_are_refused(tmp_path: Path):
    mining, source, protocol, transport, journal = journaled_session(tmp_path)
    activate(protocol, template_with_transactions(8, True))
    errors, stop = logged(LogLevel.error)
    try:
        protocol.dataReceived(RequestTransactionDataSuccess(8, bytes(32), TRANSACTIONS[:2]).to_frame())
    finally:
        stop()
    assert [event["id"] for event in errors] == [8] and not transport.disconnecting
    source.block_found(find_block(source, mining.calls[0][1]))
    assert journal.pending() == [] and len(journal.incomplete()) == 1


def test_kept_transactions_are_bounded_like_the_assemblers(tmp_path: Path):
    from sv2proxy.template.tdp_source import MAX_ASSEMBLERS

    mining, source, protocol, transport, journal = journaled_session(tmp_path)
    activate(protocol, template_with_transactions(1, True))
    for template_id in range(2, MAX_ASSEMBLERS + 2):
        protocol.dataReceived(template_with_transactions(template_id, False).to_frame())
    assert sent(transport) == [RequestTransactionData(i) for i in range(1, MAX_ASSEMBLERS + 2)]
    warnings, stop = logged(LogLevel.warn)
    try:
        # Template 1 is no longer kept: its answer is dropped; template 2's is taken.
        protocol.dataReceived(RequestTransactionDataSuccess(1, bytes(32), TRANSACTIONS).to_frame())
        protocol.dataReceived(RequestTransactionDataSuccess(2, bytes(32), TRANSACTIONS).to_frame())
    finally:
        stop()
    assert [event["id"] for event in warnings] == [1]
    source.block_found(find_block(source, mining.calls[1][1]))
    assert len(journal.pending()) == 1


def test_when_the_session_is_gone_the_log_names_a_complete_block(tmp_path: Path):
    from sv2proxy.bitcoin.serialize import parse_block

    mining, source, protocol, transport, journal = journaled_session(tmp_path)
    activate(protocol, template_with_transactions(8, True))
    protocol.dataReceived(template_with_transactions(9, False, TRANSACTIONS[:1]).to_frame())
    protocol.dataReceived(RequestTransactionDataSuccess(8, bytes(32), TRANSACTIONS).to_frame())
    protocol.connectionLost(None)  # template 9's transactions never came
    transport.clear()
    criticals, stop = logged(LogLevel.critical)
    try:
        source.block_found(find_block(source, mining.calls[0][1]))
        source.block_found(find_block(source, mining.calls[1][1]))
    finally:
        stop()
    assert sent(transport) == []
    whole, partial = (event["kept_as"] for event in criticals)
    [(block_hash, block_hex)] = journal.pending()
    path = journal.pending_dir / f"{block_hash}.hex"
    assert f"bitcoin-cli submitblock $(cat {path})" in whole
    header, transactions = parse_block(bytes.fromhex(block_hex))
    assert len(transactions) == 4
    [incomplete] = journal.incomplete()
    assert str(incomplete) in partial and "cannot be submitted" in partial


def spend_a_mature_coinbase(node: RegtestNode, fee: int) -> Transaction:
    """A transaction spending the oldest anyone-can-spend (OP_TRUE) coinbase output, paying ``fee``."""
    from sv2proxy.bitcoin.serialize import TxIn

    (prev_txid, index), coin = min(
        ((outpoint, coin) for outpoint, coin in node.chain.utxos.items() if coin.script_pubkey == b"\x51"),
        key=lambda item: item[1].height,
    )
    return Transaction(2, (TxIn(prev_txid, index, b"", 0xFFFFFFFF),), (TxOut(coin.value - fee, PAYOUT),))


@pytest_twisted.ensureDeferred
async def test_the_provider_sends_a_mempool_change_as_a_non_future_template(tmp_path: Path):
    received: list = []

    class Client(FramedProtocol):
        def connectionMade(self) -> None:  # noqa: N802
            self.sendMessage(SetupConnection(2, 2, 2, 0, "127.0.0.1", 0, "test", "", "", ""))

        def messageReceived(self, message) -> None:  # noqa: N802
            received.append(message)
            if len(received) == 1:
                self.sendMessage(CoinbaseOutputConstraints(31, 400))

    node = RegtestNode(tmp_path / "node", reactor)
    await node.start()
    node.mine_to(b"\x51", 101)  # OP_TRUE coinbases; the first is mature now
    provider = TemplateProvider(node, reactor, template_interval=0.1)
    await provider.start()
    client = None
    try:
        connector = reactor.connectTCP(
            "127.0.0.1",
            provider.port,
            NoiseClientFactory(ClientFactory.forProtocol(Client), provider.authority.public, reactor),
        )
        await until(lambda: len(received) >= 3)
        future, prev = received[1], received[2]
        assert future.merkle_path == () and prev.template_id == future.template_id
        spend = spend_a_mature_coinbase(node, fee=12_345)
        node.send_raw_transaction(spend.serialize())
        await until(lambda: len(received) >= 4)
        current = received[3]
        assert isinstance(current, NewTemplate) and not current.future_template  # no SetNewPrevHash with it
        assert current.template_id > future.template_id and current.merkle_path == (spend.txid,)
        assert current.coinbase_tx_value_remaining == 50 * 100_000_000 + 12_345
        client = connector.transport.protocol.wrappedProtocol
        client.sendMessage(RequestTransactionData(current.template_id))
        await until(lambda: len(received) >= 5)
        assert received[4] == RequestTransactionDataSuccess(current.template_id, bytes(32), (spend.serialize(),))
        template = BlockTemplate.from_template_distribution(current, prev, received[4].transaction_list)
        assert [tx.txid for tx in template.transactions] == [spend.txid]
    finally:
        if client is not None:
            client.transport.loseConnection()
        await provider.stop()
        await node.stop()
