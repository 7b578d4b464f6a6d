"""RegtestNode over real loopback HTTP: Core's RPC shapes, libbitcoinkernel's verdicts.

Blocks are built here from getblocktemplate with the sv2proxy.bitcoin helpers (BIP34 height,
witness commitment, merkle root, nonce grinding), as a pool would, and handed to submitblock.
Spends use anyone-can-spend outputs: ``raw(51)`` (OP_TRUE, empty scriptSig) and P2WSH(OP_TRUE)
(witness ``[OP_TRUE]``), so no keys are needed and the kernel's script checks still run.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.web.client import Agent, HTTPConnectionPool, ResponseNeverReceived

from sv2proxy.bitcoin.address import Network, script_for_address
from sv2proxy.bitcoin.hashing import display_hex, merkle_root
from sv2proxy.bitcoin.script import (
    WITNESS_RESERVED_VALUE,
    bip34_height_push,
    witness_commitment,
    witness_commitment_script,
    witness_program_script,
)
from sv2proxy.bitcoin.serialize import NULL_HASH, BlockHeader, Transaction, TxIn, TxOut, serialize_block
from sv2proxy.bitcoin.target import target_from_nbits
from sv2proxy.testing import RegtestNode

OP_TRUE = b"\x51"
P2WSH_OP_TRUE = witness_program_script(0, hashlib.sha256(OP_TRUE).digest())
COIN = 100_000_000


class RPCFailure(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {code} {message}")
        self.status = status
        self.code = code
        self.message = message


class Client:
    """A JSON-RPC 1.0 client the way pools talk to bitcoind (basic auth, one POST per call)."""

    def __init__(self, url: str, auth: tuple[str, str] | None) -> None:
        self.url = url
        self.auth = auth
        self.http = treq.client.HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))

    async def post(
        self, body: bytes, auth: tuple[str, str] | None = None, method: str = "POST"
    ) -> tuple[int, Any, bytes]:
        headers = {"content-type": ["application/json"]}
        credentials = auth or self.auth
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            headers["authorization"] = [f"Basic {token}"]
        response = await self.http.request(method, self.url, data=body, headers=headers)
        return response.code, response.headers, await response.content()

    async def call(self, method: str, *params: Any, **named: Any) -> Any:
        payload = {"method": method, "params": named or list(params), "id": "t"}
        status, _, body = await self.post(json.dumps(payload).encode())
        reply = json.loads(body)
        assert reply["id"] == "t"
        if reply["error"] is not None:
            assert reply["result"] is None
            raise RPCFailure(status, reply["error"]["code"], reply["error"]["message"])
        assert status == 200
        return reply["result"]


async def started(node: RegtestNode) -> RegtestNode:
    await node.start()
    return node


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RegtestNode]:
    regtest = RegtestNode(tmp_path / "bitcoind", reactor)
    pytest_twisted.blockon(Deferred.fromCoroutine(regtest.start()))
    yield regtest
    pytest_twisted.blockon(Deferred.fromCoroutine(regtest.stop()))


def cookie_auth(node: RegtestNode) -> tuple[str, str]:
    user, _, password = node.cookie_path.read_text().partition(":")
    return user, password


@pytest.fixture
def rpc(node: RegtestNode) -> Client:
    return Client(node.rpc_url, cookie_auth(node))


# -- blocks from templates, built with sv2proxy.bitcoin ---------------------------------------


@dataclasses.dataclass
class Draft:
    """Everything a pool decides when turning a template into a block; tests bend one field."""

    version: int
    prev_hash: bytes
    time: int
    bits: int
    height: int
    coinbase_value: int
    transactions: list[Transaction]
    payout: bytes = OP_TRUE
    coinbase_sequence: int = 0xFFFF_FFFF
    coinbase_lock_time: int = 0
    coinbase_witness: tuple[bytes, ...] = (WITNESS_RESERVED_VALUE,)
    commit_witness: bool = True
    commitment: bytes | None = None  # None: computed from the transactions

    @classmethod
    def from_template(cls, template: dict[str, Any]) -> Draft:
        return cls(
            version=template["version"],
            prev_hash=bytes.fromhex(template["previousblockhash"])[::-1],
            time=template["curtime"],
            bits=int(template["bits"], 16),
            height=template["height"],
            coinbase_value=template["coinbasevalue"],
            transactions=[Transaction.parse(bytes.fromhex(tx["data"])) for tx in template["transactions"]],
        )

    def coinbase(self) -> Transaction:
        outputs = [TxOut(self.coinbase_value, self.payout)]
        if self.commit_witness:
            commitment = self.commitment or witness_commitment([tx.wtxid for tx in self.transactions])
            outputs.append(TxOut(0, witness_commitment_script(commitment)))
        script_sig = bip34_height_push(self.height) + b"\x00"  # a 1-byte push alone is too short
        return Transaction(
            2,
            (TxIn(NULL_HASH, 0xFFFF_FFFF, script_sig, self.coinbase_sequence, self.coinbase_witness),),
            tuple(outputs),
            self.coinbase_lock_time,
        )

    def header(self, transactions: list[Transaction], nonce: int = 0) -> BlockHeader:
        root = merkle_root([tx.txid for tx in transactions])
        return BlockHeader(self.version, self.prev_hash, root, self.time, self.bits, nonce)

    def solve(
        self, *, valid_pow: bool = True, mutate_header: Callable[[BlockHeader], BlockHeader] | None = None
    ) -> bytes:
        transactions = [self.coinbase(), *self.transactions]
        header = self.header(transactions)
        if mutate_header is not None:
            header = mutate_header(header)
        header = grind(header, valid_pow)
        return serialize_block(header, transactions)


def grind(header: BlockHeader, valid_pow: bool = True) -> BlockHeader:
    """The first nonce whose hash meets the target (or, for ``high-hash``, misses it)."""
    target = target_from_nbits(header.bits)
    for nonce in range(1 << 16):
        candidate = dataclasses.replace(header, nonce=nonce)
        if (int.from_bytes(candidate.hash, "little") <= target) == valid_pow:
            return candidate
    raise AssertionError("no nonce found")


def block_hash(block: bytes) -> str:
    return display_hex(BlockHeader.parse(block[:80]).hash)


async def template(rpc: Client, **extra: Any) -> dict[str, Any]:
    return await rpc.call("getblocktemplate", {"rules": ["segwit"], **extra})


async def long_poll(rpc: Client, node: RegtestNode, longpollid: str) -> Deferred[dict[str, Any]]:
    """A getblocktemplate long poll, returned once the node has parked it."""
    parked = node.pending_long_polls
    poll = Deferred.fromCoroutine(template(rpc, longpollid=longpollid))
    for _ in range(500):
        if node.pending_long_polls > parked or poll.called:
            break
        await deferLater(reactor, 0.01)
    assert not poll.called, "the long poll was answered at once"
    return poll


# -- auth and the JSON-RPC envelope -----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_requests_need_credentials_and_the_cookie_is_core_shaped(node: RegtestNode) -> None:
    assert node.cookie_path == node.datadir / "regtest" / ".cookie"
    cookie = node.cookie_path.read_text()
    assert cookie.startswith("__cookie__:") and len(cookie.partition(":")[2]) == 64
    assert node.cookie_path.stat().st_mode & 0o777 == 0o600
    body = json.dumps({"method": "getblockcount", "params": [], "id": 1}).encode()

    anonymous = Client(node.rpc_url, None)
    status, headers, _ = await anonymous.post(body)
    assert status == 401
    assert headers.getRawHeaders("www-authenticate") == ['Basic realm="jsonrpc"']
    status, _, _ = await anonymous.post(body, auth=("__cookie__", "0" * 64))
    assert status == 401

    client = Client(node.rpc_url, cookie_auth(node))
    assert await client.call("getblockcount") == 0
    status, _, text = await client.post(b"", method="GET")
    assert (status, text) == (405, b"JSONRPC server handles only POST requests")


@pytest_twisted.ensureDeferred
async def test_user_and_password_replace_the_cookie(tmp_path: Path) -> None:
    regtest = await started(RegtestNode(tmp_path / "d", reactor, rpcuser="alice", rpcpassword="s3cret"))
    try:
        assert not regtest.cookie_path.exists()
        assert await Client(regtest.rpc_url, ("alice", "s3cret")).call("getbestblockhash") == regtest.tip_hash
        status, _, _ = await Client(regtest.rpc_url, ("alice", "wrong")).post(b"{}")
        assert status == 401
    finally:
        await regtest.stop()


@pytest_twisted.ensureDeferred
async def test_errors_and_envelopes_are_cores(rpc: Client) -> None:
    status, _, body = await rpc.post(json.dumps({"method": "nosuchmethod", "params": [], "id": 7}).encode())
    assert status == 404
    assert json.loads(body) == {"result": None, "error": {"code": -32601, "message": "Method not found"}, "id": 7}
    status, _, body = await rpc.post(b"{not json")
    assert (status, json.loads(body)["error"]["code"]) == (500, -32700)
    with pytest.raises(RPCFailure) as failure:
        await rpc.call("getblockhash", 5)
    assert (failure.value.status, failure.value.code, failure.value.message) == (500, -8, "Block height out of range")
    with pytest.raises(RPCFailure) as failure:
        await rpc.call("getblock", "00" * 32)
    assert (failure.value.code, failure.value.message) == (-5, "Block not found")
    with pytest.raises(RPCFailure) as failure:
        await rpc.call("getblockhash", "zero")
    assert failure.value.code == -3
    with pytest.raises(RPCFailure) as failure:
        await rpc.call("getblocktemplate")
    assert failure.value.code == -8 and "segwit rule" in failure.value.message
    # Named parameters, JSON-RPC 2.0 and batches.
    assert await rpc.call("getblockhash", height=0) == await rpc.call("getbestblockhash")
    status, _, body = await rpc.post(json.dumps({"jsonrpc": "2.0", "method": "nope", "id": 1}).encode())
    not_found = {"code": -32601, "message": "Method not found"}
    assert (status, json.loads(body)) == (200, {"jsonrpc": "2.0", "error": not_found, "id": 1})
    batch = [{"method": "getblockcount", "id": 1}, {"method": "nope", "id": 2}]
    status, _, body = await rpc.post(json.dumps(batch).encode())
    replies = json.loads(body)
    assert status == 200
    assert replies[0] == {"result": 0, "error": None, "id": 1}
    assert replies[1]["error"]["code"] == -32601


# -- templates and blocks ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_the_first_template_has_cores_shape_and_values(node: RegtestNode, rpc: Client) -> None:
    info = await rpc.call("getblockchaininfo")
    assert (info["chain"], info["blocks"], info["headers"], info["initialblockdownload"]) == ("regtest", 0, 0, False)
    assert info["bestblockhash"] == node.tip_hash == "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"

    t = await template(rpc)
    assert t["height"] == 1
    assert t["coinbasevalue"] == 5_000_000_000
    assert t["bits"] == "207fffff"
    assert t["target"] == "7fffff" + "0" * 58
    assert t["previousblockhash"] == node.tip_hash
    assert t["transactions"] == []
    assert t["version"] == 0x2000_0000
    assert t["mintime"] == 1296688602 + 1  # the genesis block's time is the median time past
    assert t["curtime"] >= t["mintime"]
    assert t["default_witness_commitment"] == witness_commitment_script(witness_commitment([])).hex()
    assert t["longpollid"] == node.tip_hash + "1"
    assert t["rules"] == ["csv", "!segwit", "taproot"]
    assert t["mutable"] == ["time", "transactions", "prevblock"]
    assert (t["noncerange"], t["sigoplimit"], t["sizelimit"], t["weightlimit"]) == (
        "00000000ffffffff",
        80_000,
        4_000_000,
        4_000_000,
    )
    mining = await rpc.call("getmininginfo")
    assert (mining["blocks"], mining["chain"], mining["next"]["height"]) == (0, "regtest", 1)


@pytest_twisted.ensureDeferred
async def test_a_block_built_from_the_template_is_connected_once(node: RegtestNode, rpc: Client) -> None:
    draft = Draft.from_template(await template(rpc))
    block = draft.solve()
    greedy = dataclasses.replace(draft, coinbase_value=draft.coinbase_value + 1).solve()
    assert await template(rpc, mode="proposal", data=greedy.hex()) == "bad-cb-amount"
    assert await template(rpc, mode="proposal", data=block.hex()) is None
    assert node.height == 0  # a proposal is only checked

    assert await rpc.call("submitblock", block.hex()) is None
    assert await rpc.call("getbestblockhash") == block_hash(block) == node.tip_hash
    assert await rpc.call("getblockcount") == 1 == node.height
    assert await rpc.call("submitblock", block.hex()) == "duplicate"

    assert await rpc.call("getblock", block_hash(block), 0) == block.hex()
    assert await rpc.call("getblockheader", block_hash(block), False) == block[:80].hex()
    header = await rpc.call("getblockheader", block_hash(block))
    assert (header["height"], header["bits"]) == (1, "207fffff")
    assert header["previousblockhash"] == display_hex(draft.prev_hash)
    assert header["chainwork"] == f"{4:064x}"  # two blocks of work 2 each at nBits 0x207fffff
    summary = await rpc.call("getblock", block_hash(block))
    assert (summary["height"], summary["confirmations"], summary["nTx"], summary["size"]) == (1, 1, 1, len(block))
    assert summary["tx"] == [display_hex(Transaction.parse(block[81:]).txid)]
    detail = await rpc.call("getblock", block_hash(block), 2)
    coinbase = detail["tx"][0]
    assert coinbase["vin"][0]["coinbase"] == "5100"
    assert coinbase["vout"][0]["value"] == 50.0
    assert coinbase["vout"][0]["scriptPubKey"]["hex"] == "51"
    assert coinbase["vout"][1]["scriptPubKey"]["type"] == "nulldata"
    assert (await template(rpc))["height"] == 2


def _bump(header: BlockHeader) -> BlockHeader:
    return dataclasses.replace(header, merkle_root=bytes([header.merkle_root[0] ^ 1]) + header.merkle_root[1:])


REJECTIONS: list[tuple[str, Callable[[Draft], bytes]]] = [
    ("bad-txnmrklroot", lambda d: d.solve(mutate_header=_bump)),
    ("bad-cb-amount", lambda d: dataclasses.replace(d, coinbase_value=d.coinbase_value + 1).solve()),
    ("high-hash", lambda d: d.solve(valid_pow=False)),
    ("bad-cb-height", lambda d: dataclasses.replace(d, height=d.height + 1).solve()),
    ("bad-witness-merkle-match", lambda d: dataclasses.replace(d, commitment=b"\x01" * 32).solve()),
    ("bad-witness-nonce-size", lambda d: dataclasses.replace(d, coinbase_witness=(b"\x00" * 31,)).solve()),
    ("unexpected-witness", lambda d: dataclasses.replace(d, commit_witness=False).solve()),
    ("bad-diffbits", lambda d: dataclasses.replace(d, bits=0x207FFFFE).solve()),
    ("prev-blk-not-found", lambda d: dataclasses.replace(d, prev_hash=b"\x42" * 32).solve()),
    ("time-too-old", lambda d: dataclasses.replace(d, time=1296688602).solve()),
    ("time-too-new", lambda d: dataclasses.replace(d, time=d.time + 3 * 3600).solve()),
    ("bad-version(0x00000003)", lambda d: dataclasses.replace(d, version=3).solve()),
    (
        "bad-txns-nonfinal",
        lambda d: dataclasses.replace(d, coinbase_sequence=0, coinbase_lock_time=d.height + 10).solve(),
    ),
]


@pytest.mark.parametrize(("reason", "build"), REJECTIONS, ids=[reason for reason, _ in REJECTIONS])
@pytest_twisted.ensureDeferred
async def test_refused_blocks_get_cores_reason(
    node: RegtestNode, rpc: Client, reason: str, build: Callable[[Draft], bytes]
) -> None:
    tip = node.tip_hash
    block = build(Draft.from_template(await template(rpc)))
    assert await rpc.call("submitblock", block.hex()) == reason
    assert await rpc.call("getbestblockhash") == tip


@pytest_twisted.ensureDeferred
async def test_a_consensus_invalid_block_stays_invalid_and_decode_errors_are_rpc_errors(rpc: Client) -> None:
    draft = Draft.from_template(await template(rpc))
    greedy = dataclasses.replace(draft, coinbase_value=draft.coinbase_value * 2).solve()
    assert await rpc.call("submitblock", greedy.hex()) == "bad-cb-amount"
    assert await rpc.call("submitblock", greedy.hex()) == "duplicate-invalid"
    with pytest.raises(RPCFailure) as failure:
        await rpc.call("submitblock", "00")
    assert (failure.value.code, failure.value.message) == (-22, "Block decode failed")
    no_coinbase = serialize_block(BlockHeader.parse(greedy[:80]), [])
    with pytest.raises(RPCFailure) as failure:
        await rpc.call("submitblock", no_coinbase.hex())
    assert (failure.value.code, failure.value.message) == (-22, "Block does not start with a coinbase")


@pytest_twisted.ensureDeferred
async def test_a_competing_branch_is_inconclusive_until_it_has_more_work(node: RegtestNode, rpc: Client) -> None:
    draft = Draft.from_template(await template(rpc))
    first = draft.solve()
    rival = dataclasses.replace(draft, payout=b"\x52").solve()
    assert await rpc.call("submitblock", first.hex()) is None
    assert await rpc.call("submitblock", rival.hex()) == "inconclusive"  # equal work: first seen stays
    assert node.tip_hash == block_hash(first)

    child = Draft(
        version=draft.version,
        prev_hash=BlockHeader.parse(rival[:80]).hash,
        time=draft.time + 1,
        bits=draft.bits,
        height=2,
        coinbase_value=50 * COIN,
        transactions=[],
    ).solve()
    assert await rpc.call("submitblock", child.hex()) is None
    assert node.tip_hash == block_hash(child)
    assert (await rpc.call("getblock", block_hash(first)))["confirmations"] == -1
    assert await rpc.call("getblockhash", 1) == block_hash(rival)


# -- long polling -----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_long_poll_returns_when_a_block_arrives(node: RegtestNode, rpc: Client) -> None:
    first = await template(rpc)
    poll = await long_poll(rpc, node, first["longpollid"])

    block = Draft.from_template(first).solve()
    assert await rpc.call("submitblock", block.hex()) is None
    fresh = await poll
    assert fresh["previousblockhash"] == block_hash(block)
    assert fresh["height"] == 2
    # A stale id is answered at once.
    assert (await template(rpc, longpollid=first["longpollid"]))["height"] == 2


@pytest_twisted.ensureDeferred
async def test_a_long_poll_times_out_with_the_same_template(tmp_path: Path) -> None:
    regtest = await started(RegtestNode(tmp_path / "d", reactor, longpoll_timeout=0.2))
    rpc = Client(regtest.rpc_url, cookie_auth(regtest))
    first = await template(rpc)
    again = await template(rpc, longpollid=first["longpollid"])
    assert again["longpollid"] == first["longpollid"]

    # Stopping the node drops a pending poll's connection instead of waiting for it.
    regtest_patient = await started(RegtestNode(tmp_path / "e", reactor, longpoll_timeout=3600))
    patient = Client(regtest_patient.rpc_url, cookie_auth(regtest_patient))
    poll = await long_poll(patient, regtest_patient, (await template(patient))["longpollid"])
    await regtest_patient.stop()
    with pytest.raises(ResponseNeverReceived):
        await poll
    await regtest.stop()


# -- transactions, the mempool, restarts ------------------------------------------------------


def spend(
    txid: str,
    index: int,
    value: int,
    script: bytes = P2WSH_OP_TRUE,
    *,
    witness: tuple[bytes, ...] = (),
    script_sig: bytes = b"",
) -> Transaction:
    """One input (txid:index, as Core prints the txid), one output of ``value`` to ``script``."""
    txin = TxIn(bytes.fromhex(txid)[::-1], index, script_sig, 0xFFFF_FFFF, witness)
    return Transaction(2, (txin,), (TxOut(value, script),))


async def coinbase_txid(rpc: Client, height: int) -> str:
    block = await rpc.call("getblock", await rpc.call("getblockhash", height), 2)
    return block["tx"][0]["txid"]


async def rejected(rpc: Client, tx: Transaction) -> tuple[int, str]:
    with pytest.raises(RPCFailure) as failure:
        await rpc.call("sendrawtransaction", tx.serialize().hex())
    return failure.value.code, failure.value.message


@pytest_twisted.ensureDeferred
async def test_mature_coinbase_spends_enter_the_mempool_the_template_and_a_block(
    tmp_path: Path, node: RegtestNode, rpc: Client
) -> None:
    hashes = await rpc.call("generatetodescriptor", 101, "raw(51)")
    assert len(hashes) == 101 and hashes[-1] == node.tip_hash == await rpc.call("getbestblockhash")
    first = await coinbase_txid(rpc, 1)

    # A legacy spend of the first (now mature) coinbase into P2WSH(OP_TRUE), fee 10 000 sat.
    parent = spend(first, 0, 50 * COIN - 10_000)
    poll = await long_poll(rpc, node, (await template(rpc))["longpollid"])
    assert await rpc.call("sendrawtransaction", parent.serialize().hex()) == display_hex(parent.txid)
    assert (await poll)["transactions"][0]["txid"] == display_hex(parent.txid)  # the mempool woke it

    # A segwit child spending the P2WSH output with witness [OP_TRUE], fee 5 000 sat.
    child = spend(display_hex(parent.txid), 0, 50 * COIN - 15_000, OP_TRUE, witness=(OP_TRUE,))
    assert await rpc.call("sendrawtransaction", child.serialize().hex()) == display_hex(child.txid)
    assert await rpc.call("getrawmempool") == [display_hex(parent.txid), display_hex(child.txid)]
    entry = await rpc.call("getmempoolentry", display_hex(child.txid))
    assert entry["depends"] == [display_hex(parent.txid)] and entry["fees"]["base"] == 0.00005

    pool = await rpc.call("getrawmempool", True)
    assert pool[display_hex(parent.txid)]["spentby"] == [display_hex(child.txid)]
    assert pool[display_hex(child.txid)]["ancestorcount"] == 2
    assert (await rpc.call("getmempoolinfo"))["size"] == 2
    assert await rpc.call("getrawtransaction", display_hex(child.txid)) == child.serialize().hex()

    t = await template(rpc)
    assert t["coinbasevalue"] == 50 * COIN + 15_000
    listed = {tx["txid"]: tx for tx in t["transactions"]}
    assert listed[display_hex(parent.txid)]["fee"] == 10_000
    assert listed[display_hex(parent.txid)]["depends"] == []
    assert listed[display_hex(parent.txid)]["weight"] == parent.weight
    assert listed[display_hex(child.txid)] | {"fee": 5_000, "depends": [1], "hash": display_hex(child.wtxid)} == (
        listed[display_hex(child.txid)]
    )
    assert t["transactions"][1]["data"] == child.serialize().hex()

    # Core's refusals, with Core's codes.
    assert await rejected(rpc, spend(first, 0, 49 * COIN)) == (-26, "txn-mempool-conflict")
    assert await rejected(rpc, spend("11" * 32, 0, COIN)) == (-25, "bad-txns-inputs-missingorspent")
    young = await coinbase_txid(rpc, 50)
    assert await rejected(rpc, spend(young, 0, COIN)) == (
        -26,
        "bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth 52",
    )
    second = await coinbase_txid(rpc, 2)
    code, message = await rejected(rpc, spend(second, 0, COIN, script_sig=b"\x6a"))  # OP_RETURN fails
    assert code == -26 and message.startswith("mempool-script-verify-flag-failed")
    assert await rejected(rpc, spend(second, 0, 50 * COIN + 1)) == (
        -26,
        "bad-txns-in-belowout, value in (50.00) < value out (50.00000001)",
    )
    assert await rejected(rpc, spend(second, 0, COIN)) == (
        -25,
        "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)",
    )
    with pytest.raises(RPCFailure) as failure:
        await rpc.call("sendrawtransaction", "0000")
    assert failure.value.code == -22

    # The block a pool builds from that template carries both and is accepted.
    block = Draft.from_template(t).solve()
    assert await rpc.call("submitblock", block.hex()) is None
    assert await rpc.call("getrawmempool") == []
    mined = await rpc.call("getblock", block_hash(block), 2)
    described = {tx["txid"]: tx for tx in mined["tx"]}
    assert described[display_hex(parent.txid)]["fee"] == 0.0001
    output = described[display_hex(parent.txid)]["vout"][0]["scriptPubKey"]
    assert output["type"] == "witness_v0_scripthash"
    assert script_for_address(output["address"], Network.REGTEST) == P2WSH_OP_TRUE
    assert output["desc"].startswith(f"addr({output['address']})#")
    assert described[display_hex(child.txid)]["vin"][0]["txinwitness"] == ["51"]
    found = await rpc.call("getrawtransaction", display_hex(child.txid), 2, block_hash(block))
    assert (found["in_active_chain"], found["confirmations"], found["fee"]) == (True, 1, 0.00005)
    assert found["vin"][0]["prevout"]["scriptPubKey"]["hex"] == P2WSH_OP_TRUE.hex()
    assert (await rpc.call("getblock", block_hash(block), 3))["tx"][1]["vin"][0]["prevout"]["generated"] is True
    assert await rejected(rpc, child) == (-27, "Transaction outputs already in utxo set")

    # A restart resumes the chain (and the UTXO set behind the mempool's checks).
    height, tip = node.height, node.tip_hash
    await node.stop()
    assert not node.cookie_path.exists()
    await node.start()
    rpc = Client(node.rpc_url, cookie_auth(node))
    assert (await rpc.call("getblockcount"), await rpc.call("getbestblockhash")) == (height, tip)
    assert await rejected(rpc, child) == (-27, "Transaction outputs already in utxo set")
    assert await rejected(rpc, spend(first, 0, COIN)) == (-25, "bad-txns-inputs-missingorspent")
    third = await coinbase_txid(rpc, 3)
    assert await rpc.call("sendrawtransaction", spend(third, 0, 50 * COIN - 1_000).serialize().hex())
    assert len(await rpc.call("generatetodescriptor", 1, "raw(51)")) == 1
    assert await rpc.call("getrawmempool") == []


@pytest_twisted.ensureDeferred
async def test_blocks_with_bad_spends_get_cores_reason(node: RegtestNode, rpc: Client) -> None:
    node.mine_to(OP_TRUE, 101)
    mature, young = await coinbase_txid(rpc, 1), await coinbase_txid(rpc, 50)
    relative_lock = Transaction(2, (TxIn(bytes.fromhex(mature)[::-1], 0, b"", 200),), (TxOut(COIN, OP_TRUE),))
    cases = {
        "bad-txns-premature-spend-of-coinbase": [spend(young, 0, COIN)],
        "bad-txns-inputs-missingorspent": [spend(mature, 0, COIN), spend(mature, 0, 2 * COIN)],
        "bad-txns-in-belowout": [spend(mature, 0, 51 * COIN)],
        "bad-txns-nonfinal": [relative_lock],  # BIP68: 200 blocks after its coin's
        "block-script-verify-flag-failed (input 0 failed script verification)": [
            spend(mature, 0, COIN, script_sig=b"\x6a")
        ],
    }
    draft = Draft.from_template(await template(rpc))
    for reason, transactions in cases.items():
        block = dataclasses.replace(draft, transactions=transactions).solve()
        assert await rpc.call("submitblock", block.hex()) == reason
    assert node.height == 101
    assert await rejected(rpc, relative_lock) == (-26, "non-BIP68-final")


@pytest_twisted.ensureDeferred
async def test_restart_keeps_the_chain_and_rotates_the_cookie(tmp_path: Path) -> None:
    regtest = await started(RegtestNode(tmp_path / "d", reactor))
    rpc = Client(regtest.rpc_url, cookie_auth(regtest))
    payout = witness_program_script(0, bytes(20))  # P2WPKH
    mined = regtest.mine_to(payout, 3)
    assert await rpc.call("getblockcount") == 3
    output = (await rpc.call("getblock", mined[0], 2))["tx"][0]["vout"][0]["scriptPubKey"]
    assert output["type"] == "witness_v0_keyhash"
    assert output["address"].startswith("bcrt1q")
    assert script_for_address(output["address"], Network.REGTEST) == payout
    await regtest.stop()

    again = await started(RegtestNode(tmp_path / "d", reactor))
    try:
        fresh = Client(again.rpc_url, cookie_auth(again))
        assert (again.height, again.tip_hash) == (3, mined[-1])
        assert await fresh.call("getblockhash", 1) == mined[0]
        assert (await template(fresh))["height"] == 4
        status, _, _ = await Client(again.rpc_url, rpc.auth).post(b"{}")
        assert status == 401  # the old cookie died with the old process
    finally:
        await again.stop()
