"""The regtest node's RPC methods, with Bitcoin Core's names, parameters and JSON shapes.

Blockchain: getbestblockhash, getblockcount, getblockhash, getblock (verbosity 0-3),
getblockheader, getblockchaininfo.  Mining: getblocktemplate (with long polling),
submitblock, getmininginfo, generatetodescriptor, generatetoaddress.  Mempool and
transactions: getrawmempool, getmempoolentry, getmempoolinfo, sendrawtransaction,
getrawtransaction (mempool, or a given block).  Control: uptime.

Field sets and error codes follow Core v29-v31 (rpc/blockchain.cpp, rpc/mining.cpp,
rpc/mempool.cpp, rpc/rawtransaction.cpp).  What this node cannot know it reports as a fresh
regtest node would: no version-bits deployments signalled, ``initialblockdownload`` false,
no warnings.  ``getblocktemplate``'s ``proposal`` mode runs our Python rendition of Core's
checks (with the kernel's script verification): libbitcoinkernel has no TestBlockValidity.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sv2proxy.bitcoin.address import Network, script_for_address
from sv2proxy.bitcoin.descriptor import parse_descriptor
from sv2proxy.bitcoin.hashing import display_hex
from sv2proxy.bitcoin.serialize import BlockHeader, Transaction, parse_block
from sv2proxy.bitcoin.target import target_from_nbits
from sv2proxy.testing.regtest.consensus import (
    MAX_BLOCK_SIGOPS_COST,
    MAX_BLOCK_WEIGHT,
    SEQUENCE_FINAL,
    WITNESS_SCALE_FACTOR,
    block_weight,
)
from sv2proxy.testing.regtest.describe import amount, transaction_json
from sv2proxy.testing.regtest.rpc import (
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    RPC_TYPE_ERROR,
    Method,
    Param,
    RPCError,
)

if TYPE_CHECKING:
    from sv2proxy.testing.regtest.mempool import MempoolEntry
    from sv2proxy.testing.regtest.node import RegtestNode

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
DEFAULT_MAX_RAW_TX_FEE_RATE = 10_000_000  # 0.10 BTC/kvB in satoshis per 1000 vbytes
REGTEST_RULES = ["csv", "!segwit", "taproot"]
BLOCK_MIN_TX_FEE = 1  # satoshis per kvB, Core v30's -blockmintxfee default


def parse_hash(value: str, name: str) -> bytes:
    """ParseHashV: 64 hex characters as Core prints them, to raw internal order."""
    if len(value) != 64:
        raise RPCError(RPC_INVALID_PARAMETER, f"{name} must be of length 64 (not {len(value)}, for '{value}')")
    if not _HEX.fullmatch(value):
        raise RPCError(RPC_INVALID_PARAMETER, f"{name} must be hexadecimal string (not '{value}')")
    return bytes.fromhex(value)[::-1]


def parse_hex(value: str, name: str) -> bytes:
    """Hex payloads (blocks, transactions); Core's message when they are not hex."""
    if not _HEX.fullmatch(value):
        raise RPCError(RPC_DESERIALIZATION_ERROR, f"{name} must be hexadecimal string (not '{value[:64]}')")
    return bytes.fromhex(value)


def difficulty(bits: int) -> float:
    """GetDifficulty, with Core's floating-point steps so the value prints identically."""
    shift = (bits >> 24) & 0xFF
    value = 0x0000FFFF / (bits & 0x00FFFFFF)
    while shift < 29:
        value *= 256.0
        shift += 1
    while shift > 29:
        value /= 256.0
        shift -= 1
    return value


def block_proof(bits: int) -> int:
    """GetBlockProof: expected hashes for a block at this target, 2**256 / (target + 1)."""
    target = target_from_nbits(bits)
    return (1 << 256) // (target + 1)


class _Blockchain:
    """Helpers over the node's state shared by several methods."""

    def __init__(self, node: RegtestNode) -> None:
        self.node = node

    def chainwork(self, block_hash: bytes) -> int:
        """Total work of the chain ending at ``block_hash`` (nChainWork)."""
        chain = self.node.chain
        height = chain.active_height(block_hash)
        work = 0
        current = block_hash
        while height is None:
            found = self.node.kernel.lookup(current)
            if found is None:
                raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
            work += block_proof(found[1].bits)
            current = found[1].prev_hash
            height = chain.active_height(current)
        return work + sum(block_proof(header.bits) for header in chain.headers[: height + 1])

    def locate(self, block_hash: bytes) -> tuple[int, BlockHeader, bool]:
        """(height, header, in active chain) of a known block, else Core's -5."""
        found = self.node.kernel.lookup(block_hash)
        if found is None:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
        return found

    def read(self, block_hash: bytes) -> tuple[bytes, BlockHeader, tuple[Transaction, ...]]:
        """The stored block's bytes and parsed form."""
        raw = self.node.kernel.read_block(block_hash)
        if raw is None:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block not available (not fully downloaded)")
        header, transactions = parse_block(raw)
        return raw, header, transactions

    def header_json(self, block_hash: bytes, n_tx: int) -> dict[str, Any]:
        """blockheaderToJSON."""
        chain = self.node.chain
        height, header, in_chain = self.locate(block_hash)
        result: dict[str, Any] = {
            "hash": display_hex(block_hash),
            "confirmations": chain.height - height + 1 if in_chain else -1,
            "height": height,
            "version": header.version - (1 << 32) if header.version & 0x8000_0000 else header.version,
            "versionHex": f"{header.version:08x}",
            "merkleroot": display_hex(header.merkle_root),
            "time": header.time,
            "mediantime": chain.median_time_past(block_hash),
            "nonce": header.nonce,
            "bits": f"{header.bits:08x}",
            "target": f"{target_from_nbits(header.bits):064x}",
            "difficulty": difficulty(header.bits),
            "chainwork": f"{self.chainwork(block_hash):064x}",
            "nTx": n_tx,
        }
        if height > 0:
            result["previousblockhash"] = display_hex(header.prev_hash)
        if in_chain and height < chain.height:
            result["nextblockhash"] = display_hex(chain.hashes[height + 1])
        return result

    def network_hash_ps(self, lookup: int = 120) -> float:
        """GetNetworkHashPS over the last ``lookup`` blocks of the active chain."""
        chain = self.node.chain
        tip = chain.height
        if tip <= 0:
            return 0.0
        lookup = min(lookup if lookup > 0 else tip % 2016 + 1, tip)
        times = [header.time for header in chain.headers[tip - lookup : tip + 1]]
        if min(times) == max(times):
            return 0.0
        work = sum(block_proof(header.bits) for header in chain.headers[tip - lookup + 1 : tip + 1])
        return work / (max(times) - min(times))

    def size_on_disk(self) -> int:
        """Bytes the active chain's blocks take in the blk files (Core also counts undo data,
        which the kernel does not let us measure; the files themselves are preallocated)."""
        return self.node.chain.block_bytes


def _mempool_entry_json(node: RegtestNode, entry: MempoolEntry) -> dict[str, Any]:
    """entryToJSON: sizes, times, family counts and fees of one mempool transaction."""
    mempool = node.mempool
    ancestors = [mempool.get(txid) for txid in mempool.ancestors(entry.txid)]
    descendants = [mempool.get(txid) for txid in mempool.descendants(entry.txid)]
    ancestor_entries = [a for a in ancestors if a is not None]
    descendant_entries = [d for d in descendants if d is not None]
    replaceable = any(
        txin.sequence < SEQUENCE_FINAL - 1 for e in (entry, *ancestor_entries) for txin in e.tx.inputs
    )
    return {
        "vsize": entry.vsize,
        "weight": entry.weight,
        "time": entry.time,
        "height": entry.height,
        "descendantcount": len(descendant_entries) + 1,
        "descendantsize": entry.vsize + sum(d.vsize for d in descendant_entries),
        "ancestorcount": len(ancestor_entries) + 1,
        "ancestorsize": entry.vsize + sum(a.vsize for a in ancestor_entries),
        "wtxid": display_hex(entry.wtxid),
        "fees": {
            "base": amount(entry.fee),
            "modified": amount(entry.fee),
            "ancestor": amount(entry.fee + sum(a.fee for a in ancestor_entries)),
            "descendant": amount(entry.fee + sum(d.fee for d in descendant_entries)),
        },
        "depends": sorted(display_hex(parent) for parent in entry.parents),
        "spentby": sorted(display_hex(child) for child in mempool.children(entry.txid)),
        "bip125-replaceable": replaceable,
        "unbroadcast": False,
    }


def build_methods(node: RegtestNode) -> dict[str, Method]:
    """The RPC table for ``node``."""
    chain_helpers = _Blockchain(node)

    def getbestblockhash() -> str:
        return node.tip_hash

    def getblockcount() -> int:
        return node.height

    def getblockhash(height: int) -> str:
        if not 0 <= height <= node.height:
            raise RPCError(RPC_INVALID_PARAMETER, "Block height out of range")
        return display_hex(node.chain.hashes[height])

    def getblockheader(blockhash: str, verbose: bool) -> Any:
        raw_hash = parse_hash(blockhash, "hash")
        _, header, _ = chain_helpers.locate(raw_hash)
        if not verbose:
            return header.serialize().hex()
        _, _, transactions = chain_helpers.read(raw_hash)
        return chain_helpers.header_json(raw_hash, len(transactions))

    def getblock(blockhash: str, verbosity: int) -> Any:
        raw_hash = parse_hash(blockhash, "blockhash")
        chain_helpers.locate(raw_hash)
        raw, header, transactions = chain_helpers.read(raw_hash)
        if verbosity <= 0:
            return raw.hex()
        result = chain_helpers.header_json(raw_hash, len(transactions))
        weight = block_weight(header, transactions)
        result["strippedsize"] = (weight - len(raw)) // (WITNESS_SCALE_FACTOR - 1)
        result["size"] = len(raw)
        result["weight"] = weight
        if verbosity == 1:
            result["tx"] = [display_hex(tx.txid) for tx in transactions]
        else:
            undo = node.kernel.spent_coins(raw_hash)
            described = []
            for index, tx in enumerate(transactions):
                spent = undo[index - 1] if undo is not None and index > 0 else None
                described.append(transaction_json(tx, spent=spent, with_prevout=verbosity >= 3))
            result["tx"] = described
        # Core lists the header fields first, then the block's; keep that order for readers.
        ordered = {key: result[key] for key in result if key not in ("previousblockhash", "nextblockhash")}
        for key in ("previousblockhash", "nextblockhash"):
            if key in result:
                ordered[key] = result[key]
        return ordered

    def getblockchaininfo() -> dict[str, Any]:
        chain = node.chain
        tip = chain.headers[-1]
        return {
            "chain": "regtest",
            "blocks": chain.height,
            "headers": node.kernel.best_header_height,
            "bestblockhash": node.tip_hash,
            "bits": f"{tip.bits:08x}",
            "target": f"{target_from_nbits(tip.bits):064x}",
            "difficulty": difficulty(tip.bits),
            "time": tip.time,
            "mediantime": chain.median_time_past_at(chain.height),
            "verificationprogress": 1.0,
            "initialblockdownload": False,
            "chainwork": f"{chain_helpers.chainwork(chain.tip_hash):064x}",
            "size_on_disk": chain_helpers.size_on_disk(),
            "pruned": False,
            "warnings": [],
        }

    def getmininginfo() -> dict[str, Any]:
        chain = node.chain
        bits = chain.headers[-1].bits
        next_bits = bits  # regtest never retargets
        return {
            "blocks": chain.height,
            "bits": f"{bits:08x}",
            "difficulty": difficulty(bits),
            "target": f"{target_from_nbits(bits):064x}",
            "networkhashps": chain_helpers.network_hash_ps(),
            "pooledtx": len(node.mempool),
            "blockmintxfee": amount(BLOCK_MIN_TX_FEE),
            "chain": "regtest",
            "next": {
                "height": chain.height + 1,
                "bits": f"{next_bits:08x}",
                "difficulty": difficulty(next_bits),
                "target": f"{target_from_nbits(next_bits):064x}",
            },
            "warnings": [],
        }

    async def getblocktemplate(template_request: dict[str, Any]) -> Any:
        mode = template_request.get("mode", "template")
        if mode == "proposal":
            data = template_request.get("data")
            if not isinstance(data, str):
                raise RPCError(RPC_TYPE_ERROR, "Missing data String key for proposal")
            return node.propose_block(parse_hex(data, "data"))
        if mode != "template":
            raise RPCError(RPC_INVALID_PARAMETER, "Invalid mode")
        rules = template_request.get("rules")
        client_rules = {rule for rule in rules if isinstance(rule, str)} if isinstance(rules, list) else set()
        if "segwit" not in client_rules:
            raise RPCError(
                RPC_INVALID_PARAMETER,
                'getblocktemplate must be called with the segwit rule set (call with {"rules": ["segwit"]})',
            )
        longpollid = template_request.get("longpollid")
        if longpollid is not None:
            if isinstance(longpollid, str):
                watched = longpollid[:64]
                counter_text = longpollid[64:]
                updates = int(counter_text) if counter_text.isdigit() else 0
            else:
                # Core: "Spec does not specify behaviour for non-string longpollid" -> wait on now.
                watched, updates = node.tip_hash, node.mempool.updates
            await node.wait_for_change(watched, updates)
        return _template_json(node)

    def submitblock(hexdata: str, dummy: Any) -> str | None:
        return node.submit_block(parse_hex(hexdata, "hexdata"))

    def generatetodescriptor(num_blocks: int, descriptor: str, maxtries: int) -> list[str]:
        try:
            script = parse_descriptor(descriptor, Network.REGTEST)
        except ValueError as exc:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, str(exc)) from None
        return node.mine_to(script, num_blocks, maxtries)

    def generatetoaddress(nblocks: int, address: str, maxtries: int) -> list[str]:
        try:
            script = script_for_address(address, Network.REGTEST)
        except ValueError:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address") from None
        return node.mine_to(script, nblocks, maxtries)

    def getrawmempool(verbose: bool, mempool_sequence: bool) -> Any:
        if verbose and mempool_sequence:
            raise RPCError(
                RPC_INVALID_PARAMETER, "Verbose results cannot contain mempool sequence values. (Set verbose to false)"
            )
        entries = list(node.mempool)
        if verbose:
            return {display_hex(entry.txid): _mempool_entry_json(node, entry) for entry in entries}
        txids = [display_hex(entry.txid) for entry in entries]
        if mempool_sequence:
            return {"txids": txids, "mempool_sequence": node.mempool.updates}
        return txids

    def getmempoolentry(txid: str) -> dict[str, Any]:
        entry = node.mempool.get(parse_hash(txid, "txid"))
        if entry is None:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Transaction not in mempool")
        return _mempool_entry_json(node, entry)

    def getmempoolinfo() -> dict[str, Any]:
        entries = list(node.mempool)
        return {
            "loaded": True,
            "size": len(entries),
            "bytes": sum(entry.vsize for entry in entries),
            "usage": sum(entry.size for entry in entries),
            "total_fee": amount(sum(entry.fee for entry in entries)),
            "maxmempool": 300_000_000,
            "mempoolminfee": amount(100),
            "minrelaytxfee": amount(100),
            "incrementalrelayfee": amount(100),
            "unbroadcastcount": 0,
            "fullrbf": True,
        }

    def sendrawtransaction(hexstring: str, maxfeerate: int, maxburnamount: int) -> str:
        try:
            raw = bytes.fromhex(hexstring)
        except ValueError:
            raise RPCError(
                RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input."
            ) from None
        return node.send_raw_transaction(raw, maxfeerate, maxburnamount)

    def getrawtransaction(txid: str, verbosity: int, blockhash: str | None) -> Any:
        raw_txid = parse_hash(txid, "parameter 1")
        if blockhash is None:
            entry = node.mempool.get(raw_txid)
            if entry is None:
                raise RPCError(
                    RPC_INVALID_ADDRESS_OR_KEY,
                    "No such mempool transaction. Use -txindex or provide a block hash to enable "
                    "blockchain transaction queries. Use gettransaction for wallet transactions.",
                )
            return entry.tx.serialize().hex() if verbosity <= 0 else transaction_json(entry.tx)
        raw_hash = parse_hash(blockhash, "parameter 3")
        found = node.kernel.lookup(raw_hash)
        if found is None:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Block hash not found")
        _, header, transactions = chain_helpers.read(raw_hash)
        index = next((i for i, tx in enumerate(transactions) if tx.txid == raw_txid), None)
        if index is None:
            raise RPCError(
                RPC_INVALID_ADDRESS_OR_KEY,
                "No such transaction found in the provided block. Use gettransaction for wallet transactions.",
            )
        tx = transactions[index]
        if verbosity <= 0:
            return tx.serialize().hex()
        spent = None
        if verbosity >= 2 and index > 0:
            undo = node.kernel.spent_coins(raw_hash)
            spent = undo[index - 1] if undo is not None else None
        result: dict[str, Any] = {"in_active_chain": found[2]}
        result.update(transaction_json(tx, spent=spent, with_prevout=spent is not None))
        result["blockhash"] = blockhash.lower()
        result["confirmations"] = node.height - found[0] + 1 if found[2] else 0
        result["time"] = header.time
        result["blocktime"] = header.time
        return result

    def uptime() -> int:
        return node.uptime

    return {
        "getbestblockhash": Method(getbestblockhash),
        "getblockcount": Method(getblockcount),
        "getblockhash": Method(getblockhash, (Param("height", "int"),)),
        "getblockheader": Method(getblockheader, (Param("blockhash", "str"), Param("verbose", "bool", True))),
        "getblock": Method(getblock, (Param("blockhash", "str"), Param("verbosity", "verbosity", 1))),
        "getblockchaininfo": Method(getblockchaininfo),
        "getmininginfo": Method(getmininginfo),
        "getblocktemplate": Method(getblocktemplate, (Param("template_request", "object", {}),)),
        "submitblock": Method(submitblock, (Param("hexdata", "str"), Param("dummy", "any", None))),
        "generatetodescriptor": Method(
            generatetodescriptor,
            (Param("num_blocks", "int"), Param("descriptor", "str"), Param("maxtries", "int", 1_000_000)),
        ),
        "generatetoaddress": Method(
            generatetoaddress,
            (Param("nblocks", "int"), Param("address", "str"), Param("maxtries", "int", 1_000_000)),
        ),
        "getrawmempool": Method(
            getrawmempool, (Param("verbose", "bool", False), Param("mempool_sequence", "bool", False))
        ),
        "getmempoolentry": Method(getmempoolentry, (Param("txid", "str"),)),
        "getmempoolinfo": Method(getmempoolinfo),
        "sendrawtransaction": Method(
            sendrawtransaction,
            (
                Param("hexstring", "str"),
                Param("maxfeerate", "amount", DEFAULT_MAX_RAW_TX_FEE_RATE),
                Param("maxburnamount", "amount", 0),
            ),
        ),
        "getrawtransaction": Method(
            getrawtransaction,
            (Param("txid", "str"), Param("verbosity", "verbosity", 0), Param("blockhash", "str", None)),
        ),
        "uptime": Method(uptime),
    }


def _template_json(node: RegtestNode) -> dict[str, Any]:
    """getblocktemplate's result for the node's current template (BIP22/BIP23/BIP145 fields)."""
    template = node.block_template()
    return {
        "capabilities": ["proposal"],
        "version": template.version,
        "rules": REGTEST_RULES,
        "vbavailable": {},
        "vbrequired": 0,
        "previousblockhash": display_hex(template.previous_hash),
        "transactions": [
            {
                "data": item.entry.tx.serialize().hex(),
                "txid": display_hex(item.entry.txid),
                "hash": display_hex(item.entry.wtxid),
                "depends": list(item.depends),
                "fee": item.entry.fee,
                "sigops": item.entry.sigop_cost,
                "weight": item.entry.weight,
            }
            for item in template.transactions
        ],
        "coinbaseaux": {},
        "coinbasevalue": template.coinbase_value,
        "longpollid": template.longpollid,
        "target": f"{target_from_nbits(template.bits):064x}",
        "mintime": template.mintime,
        "mutable": ["time", "transactions", "prevblock"],
        "noncerange": "00000000ffffffff",
        "sigoplimit": MAX_BLOCK_SIGOPS_COST,
        "sizelimit": MAX_BLOCK_WEIGHT,
        "weightlimit": MAX_BLOCK_WEIGHT,
        "curtime": template.curtime,
        "bits": f"{template.bits:08x}",
        "height": template.height,
        "default_witness_commitment": template.witness_commitment_script.hex(),
    }
