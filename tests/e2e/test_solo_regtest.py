"""Solo mining end to end: the daemon, Bitcoin Core's consensus engine, a CPU miner.

The daemon's service tree (tap.makeService, pool mode) takes templates from a RegtestNode
over JSON-RPC; a MiningDevice mines through Noise; a block counts only when libbitcoinkernel
connects it, and its coinbase must pay the configured address the template's whole value.
"""

from __future__ import annotations

import socket
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


def start_daemon(tmp_path: Path, rpc_url: str):
    config = tmp_path / "solo.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "listen:\n  sv2: 127.0.0.1:0\n"
        f"node:\n  embedded: false\n  rpc_url: {rpc_url}\n  chain: regtest\n  rpc_user: test\n  rpc_password: secret\n"
        "  tip_poll_interval: 0.2\n"
        f"coinbase:\n  payout: {PAYOUT}\n  pool_tag: /e2e/\n"
        "mining:\n  min_difficulty: 0.000001\n  share_batch_size: 1\n"
    )
    options = Options()
    options.parseOptions(["--config", str(config)])
    daemon = makeService(options, reactor)
    daemon.privilegedStartService()
    daemon.startService()
    return options, daemon


def tp_daemon(tmp_path: Path, provider, coinbase: str):
    """The daemon's service tree (not started) on ``provider``; ``coinbase``: its extra keys."""
    config = tmp_path / "tp.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "listen:\n  sv2: 127.0.0.1:0\n"
        "node:\n  embedded: false\n  chain: regtest\n"
        f"  template_provider: 127.0.0.1:{provider.port}\n"
        f"  template_provider_key: {provider.authority.public_text}\n"
        f"coinbase:\n  payout: {PAYOUT}\n{coinbase}"
        "mining:\n  min_difficulty: 0.000001\n  share_batch_size: 1\n"
    )
    options = Options()
    options.parseOptions(["--config", str(config)])
    return options, makeService(options, reactor)


async def until(condition, seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("condition not met in time")


async def connect(miners: MiningDeviceFactory, daemon, options: Options) -> None:
    """Connect the device to the daemon's SV2 listener, pinned to the daemon's authority key."""
    port = (await daemon.getServiceNamed("sv2-miners").when_listening()).getHost().port
    reactor.connectTCP("127.0.0.1", port, NoiseClientFactory(miners, options.authority.public, reactor))


async def stop(miners: MiningDeviceFactory, daemon) -> None:
    """Disconnect the device and stop the daemon (nodes are stopped by each test)."""
    if miners.device is not None and miners.device.transport is not None:
        miners.device.transport.loseConnection()
    await daemon.stopService()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest_twisted.ensureDeferred
async def test_blocks_found_through_the_daemon_are_connected_by_bitcoin_core(tmp_path: Path):
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    options, daemon = start_daemon(tmp_path, node.rpc_url)
    # Capped at ~160 hashes/s: on regtest about half of them are blocks (and so shares).
    miners = MiningDeviceFactory(reactor, "alice.rig1", pause=0.05, nonces_per_slice=8)
    try:
        start_height = node.height
        await connect(miners, daemon, options)
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
        await stop(miners, daemon)
        await node.stop()


@pytest_twisted.ensureDeferred
async def test_mempool_transactions_are_mined_with_their_fees(tmp_path: Path):
    from sv2proxy.bitcoin.address import Network, script_for_address
    from sv2proxy.bitcoin.serialize import Transaction, TxIn, TxOut

    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    hashes = await rpc(node, "generatetodescriptor", 101, "raw(51)")  # anyone-can-spend coinbases
    first = await rpc(node, "getblock", hashes[0], 2)
    funding = first["tx"][0]
    fee = 12_345
    spend = Transaction(
        2,
        (TxIn(bytes.fromhex(funding["txid"])[::-1], 0, b"", 0xFFFFFFFF),),
        (TxOut(5_000_000_000 - fee, script_for_address(PAYOUT, Network.REGTEST)),),
    )
    txid = await rpc(node, "sendrawtransaction", spend.serialize(with_witness=False).hex())
    options, daemon = start_daemon(tmp_path, node.rpc_url)
    miners = MiningDeviceFactory(reactor, "bob", pause=0.05, nonces_per_slice=8)
    try:
        await connect(miners, daemon, options)
        await until(lambda: node.height >= 102)
        block = await rpc(node, "getblock", await rpc(node, "getblockhash", 102), 2)
        assert [tx["txid"] for tx in block["tx"][1:]] == [txid]
        coinbase_value = sum(out["value"] for out in block["tx"][0]["vout"])
        assert round(coinbase_value * 100_000_000) == 5_000_000_000 + fee
    finally:
        await stop(miners, daemon)
        await node.stop()


@pytest_twisted.ensureDeferred
async def test_a_block_found_while_the_node_is_down_is_submitted_when_it_returns(tmp_path: Path):
    port_number = free_port()
    endpoint = f"tcp:{port_number}:interface=127.0.0.1"
    node = RegtestNode(tmp_path / "node", reactor, rpc_endpoint=endpoint, rpcuser="test", rpcpassword="secret")
    await node.start()
    options, daemon = start_daemon(tmp_path, node.rpc_url)
    miners = MiningDeviceFactory(reactor, "carol", pause=0.05, nonces_per_slice=8)
    try:
        await until(lambda: daemon.getServiceNamed("node").template is not None)
        await node.stop()  # the node goes away before the miner even connects
        await connect(miners, daemon, options)
        await miners.when(lambda s: len(s.blocks) >= 1)
        pending = tmp_path / "data" / "blocks" / "pending"
        await until(lambda: any(pending.glob("*.hex")))  # durable while nobody can take it
        found_offline = sorted(path.stem for path in pending.glob("*.hex"))
        # Stop mining, so the only blocks the returning node can get are the ones found offline.
        miners.device.transport.loseConnection()
        height = node.height
        restarted = RegtestNode(
            tmp_path / "node", reactor, rpc_endpoint=endpoint, rpcuser="test", rpcpassword="secret"
        )
        await restarted.start()
        await until(lambda: restarted.height > height, seconds=40)
        accepted = tmp_path / "data" / "blocks" / "accepted"
        await until(lambda: all((accepted / f"{name}.hex").exists() for name in found_offline))
        # Several blocks may have been found at the same height while the node was away: all
        # were answered, and the first submitted is now in the active chain (the kernel connected it).
        confirmations = [(await rpc(restarted, "getblock", name, 1))["confirmations"] for name in found_offline]
        assert max(confirmations) >= 1
    finally:
        await stop(miners, daemon)
        if "restarted" in locals():
            await restarted.stop()


@pytest_twisted.ensureDeferred
async def test_a_corrupted_block_is_refused_by_the_node_and_reported(tmp_path: Path):
    from sv2proxy.template.job_factory import AssembledBlock, BlockAssembler

    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    options, daemon = start_daemon(tmp_path, node.rpc_url)
    source = daemon.getServiceNamed("node")
    original = BlockAssembler.assemble

    def corrupting(self, *args) -> AssembledBlock:
        block = original(self, *args)
        data = bytearray(block.data)
        data[80 + 1 + 4 + 1 + 36 + 1 + 5] ^= 0xFF  # a byte of the coinbase scriptSig (pool tag)
        return AssembledBlock(block.header, block.coinbase, bytes(data), block.hash)

    BlockAssembler.assemble = corrupting
    miners = MiningDeviceFactory(reactor, "mallory", pause=0.05, nonces_per_slice=8)
    try:
        height = node.height
        await connect(miners, daemon, options)
        rejected = tmp_path / "data" / "blocks" / "rejected"
        await until(lambda: any(rejected.glob("*.reason")))
        reason = next(rejected.glob("*.reason")).read_text()
        assert "bad-txnmrklroot" in reason  # the coinbase no longer matches the header
        assert node.height == height and source.template is not None
    finally:
        BlockAssembler.assemble = original
        await stop(miners, daemon)
        await node.stop()


@pytest_twisted.ensureDeferred
async def test_the_daemon_mines_through_a_template_provider(tmp_path: Path):
    from sv2proxy.testing.template_provider import TemplateProvider

    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    provider = TemplateProvider(node, reactor)
    await provider.start()
    options, daemon = tp_daemon(tmp_path, provider, "  pool_tag: /tp-e2e/\n")
    assert [service.name for service in daemon] == ["store", "mining", "template-provider", "sv2-miners", "web"]
    daemon.privilegedStartService()
    daemon.startService()
    miners = MiningDeviceFactory(reactor, "dave", pause=0.05, nonces_per_slice=8)
    try:
        height = node.height
        await connect(miners, daemon, options)
        await until(lambda: node.height >= height + 2)
        block = await rpc(node, "getblock", await rpc(node, "getbestblockhash"), 2)
        coinbase = block["tx"][0]
        assert any(out["scriptPubKey"].get("address") == PAYOUT for out in coinbase["vout"])
        assert b"/tp-e2e/" in bytes.fromhex(coinbase["vin"][0]["coinbase"])
        # Every found block was on disk before it left, and the TP's new tips confirmed them.
        accepted = tmp_path / "data" / "blocks" / "accepted"
        await until(lambda: (accepted / f"{block['hash']}.hex").exists())
    finally:
        await stop(miners, daemon)
        await provider.stop()
        await node.stop()


@pytest_twisted.ensureDeferred
async def test_solo_pool_pays_each_miner_its_own_address(tmp_path: Path):
    import base58

    mine = base58.b58encode_check(b"\x6f" + bytes(range(20))).decode()  # a regtest P2PKH address
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    config = tmp_path / "solo-pool.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "listen:\n  sv2: 127.0.0.1:0\n"
        f"node:\n  embedded: false\n  rpc_url: {node.rpc_url}\n  chain: regtest\n"
        "  rpc_user: test\n  rpc_password: secret\n"
        f"coinbase:\n  payout: {PAYOUT}\n  solo: true\n"
        "mining:\n  min_difficulty: 0.000001\n  share_batch_size: 1\n"
    )
    options = Options()
    options.parseOptions(["--config", str(config)])
    daemon = makeService(options, reactor)
    daemon.privilegedStartService()
    daemon.startService()
    refused = MiningDeviceFactory(reactor, "not-an-address")
    miners = MiningDeviceFactory(reactor, f"{mine}.rig7", pause=0.05, nonces_per_slice=8)
    try:
        height = node.height
        await connect(refused, daemon, options)
        await connect(miners, daemon, options)
        await until(lambda: node.height >= height + 1)
        block = await rpc(node, "getblock", await rpc(node, "getblockhash", height + 1), 2)
        outputs = block["tx"][0]["vout"]
        paid = [out for out in outputs if out["scriptPubKey"].get("address") == mine]
        assert paid and round(paid[0]["value"] * 100_000_000) == 5_000_000_000  # the whole reward
        assert not any(out["scriptPubKey"].get("address") == PAYOUT for out in outputs)
        assert refused.device is None or refused.device.channel_id is None  # its channel was refused
    finally:
        await stop(refused, daemon)
        if miners.device is not None and miners.device.transport is not None:
            miners.device.transport.loseConnection()
        await node.stop()


@pytest_twisted.ensureDeferred
async def test_a_solo_pool_on_a_template_provider_pays_each_miner_its_own_address(tmp_path: Path):
    import base58

    from sv2proxy.testing.template_provider import TemplateProvider

    mine = base58.b58encode_check(b"\xc4" + bytes(range(20))).decode()  # a regtest P2SH address
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    provider = TemplateProvider(node, reactor)
    await provider.start()
    options, daemon = tp_daemon(tmp_path, provider, "  solo: true\n")
    daemon.privilegedStartService()
    daemon.startService()
    miners = MiningDeviceFactory(reactor, f"{mine}.rig1", pause=0.05, nonces_per_slice=8)
    try:
        height = node.height
        await connect(miners, daemon, options)
        await until(lambda: node.height >= height + 1)
        block = await rpc(node, "getblock", await rpc(node, "getblockhash", height + 1), 2)
        outputs = block["tx"][0]["vout"]
        paid = [out for out in outputs if out["scriptPubKey"].get("address") == mine]
        assert paid and round(paid[0]["value"] * 100_000_000) == 5_000_000_000  # the whole reward
        assert not any(out["scriptPubKey"].get("address") == PAYOUT for out in outputs)
    finally:
        await stop(miners, daemon)
        await provider.stop()
        await node.stop()


@pytest_twisted.ensureDeferred
async def test_a_block_found_through_a_template_provider_is_journaled_whole(tmp_path: Path):
    """A mempool transaction reaches the miner through the TP path (a non-future template); the
    block found on it is journaled whole, and a second node that never saw it connects that file."""
    from sv2proxy.bitcoin.address import Network, script_for_address
    from sv2proxy.bitcoin.hashing import merkle_root
    from sv2proxy.bitcoin.serialize import Transaction, TxIn, TxOut, parse_block
    from sv2proxy.testing.template_provider import TemplateProvider

    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    hashes = await rpc(node, "generatetodescriptor", 101, "raw(51)")  # anyone-can-spend coinbases
    provider = TemplateProvider(node, reactor, template_interval=0.2)
    await provider.start()
    options, daemon = tp_daemon(tmp_path, provider, "  pool_tag: /tp-txs/\n")
    daemon.privilegedStartService()
    daemon.startService()
    source = daemon.getServiceNamed("template-provider")
    miners = MiningDeviceFactory(reactor, "erin", pause=0.05, nonces_per_slice=8)
    second = RegtestNode(tmp_path / "second", reactor, rpcuser="test", rpcpassword="secret")
    try:
        await until(lambda: source.template is not None)
        assert source.template.future and source.template.merkle_path == ()  # an empty mempool
        funding = (await rpc(node, "getblock", hashes[0], 2))["tx"][0]
        fee = 12_345
        spend = Transaction(
            2,
            (TxIn(bytes.fromhex(funding["txid"])[::-1], 0, b"", 0xFFFFFFFF),),
            (TxOut(5_000_000_000 - fee, script_for_address(PAYOUT, Network.REGTEST)),),
        )
        txid = await rpc(node, "sendrawtransaction", spend.serialize().hex())
        # The TP's non-future template on the mempool change becomes the work miners get.
        await until(lambda: source.template.merkle_path == (spend.txid,))
        assert not source.template.future and source.template.coinbase_value == 5_000_000_000 + fee
        await connect(miners, daemon, options)
        await until(lambda: node.height >= 102)
        block_hash = await rpc(node, "getblockhash", 102)
        mined = await rpc(node, "getblock", block_hash, 2)
        assert [tx["txid"] for tx in mined["tx"][1:]] == [txid]

        # The journal holds the whole block (settled once the TP's new tip confirmed it).
        journaled = tmp_path / "data" / "blocks" / "accepted" / f"{block_hash}.hex"
        await until(lambda: journaled.exists())
        raw_block = bytes.fromhex(journaled.read_text())
        header, transactions = parse_block(raw_block)
        assert header.hash[::-1].hex() == block_hash
        assert merkle_root([tx.txid for tx in transactions]) == header.merkle_root
        assert [tx.txid for tx in transactions[1:]] == [spend.txid]
        assert not list(journaled.parent.glob("*.incomplete.json"))

        # The strongest check: a node synced to height 101 that never saw the block takes the file.
        await second.start()
        for height in range(1, 102):
            await rpc(second, "submitblock", await rpc(node, "getblock", await rpc(node, "getblockhash", height), 0))
        assert second.height == 101
        assert await rpc(second, "submitblock", journaled.read_text()) is None
        assert await rpc(second, "getbestblockhash") == block_hash
    finally:
        await stop(miners, daemon)
        await provider.stop()
        await second.stop()
        await node.stop()
