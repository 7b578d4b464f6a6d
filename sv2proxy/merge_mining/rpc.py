"""An aux chain's JSON-RPC (Namecoin Core's merge-mining calls), over the Bitcoin Core client.

Transport, auth, deadlines and error words are :class:`~sv2proxy.template.rpc.BitcoinCoreRPC`'s
(the same daemon family, the same JSON-RPC server); this adds the calls and a strict reading of
their answers, so that a node answering garbage is a :class:`~sv2proxy.template.rpc.NodeError`
naming the field, never a KeyError in the coordinator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sv2proxy.bitcoin.target import target_from_nbits
from sv2proxy.merge_mining.work import AuxBlock
from sv2proxy.template.rpc import BitcoinCoreRPC, NodeError


def parse_aux_block(chain: str, chain_id: int, result: object) -> AuxBlock:
    """The :class:`AuxBlock` in a ``createauxblock``/``getauxblock`` answer; ValueError if it is
    not one, or is for another chain id than the one configured."""
    if not isinstance(result, Mapping):
        raise ValueError(f"expected an object, got {str(result)[:80]}")
    block_hash = _display_hash(result, "hash")
    prev_hash = _display_hash(result, "previousblockhash")
    given_id = _int(result, "chainid", 0, 0xFFFF_FFFF)
    if given_id != chain_id:
        raise ValueError(f"the node mines chain id {given_id}, configured is {chain_id}")
    bits_text = result.get("bits")
    if not isinstance(bits_text, str) or len(bits_text) != 8:
        raise ValueError(f"'bits' must be 8 hex digits, got {bits_text!r}")
    try:
        target = target_from_nbits(int(bits_text, 16))
    except ValueError as e:
        raise ValueError(f"'bits' {bits_text!r}: {e}") from None
    if "_target" in result:
        # Namecoin's deprecated twin of bits: the target's bytes, least significant first.
        try:
            given = int.from_bytes(bytes.fromhex(str(result["_target"])), "little")
        except ValueError:
            raise ValueError(f"'_target' is not hex: {result['_target']!r}") from None
        if given != target:
            raise ValueError("'_target' and 'bits' disagree")
    if target <= 0:
        raise ValueError(f"'bits' {bits_text} is a zero target")
    return AuxBlock(
        chain=chain,
        chain_id=chain_id,
        hash=block_hash,
        target=target,
        height=_int(result, "height", 0, 0x7FFF_FFFF),
        coinbase_value=_int(result, "coinbasevalue", 0, 1 << 62),
        prev_hash=prev_hash,
    )


def _display_hash(result: Mapping[str, Any], name: str) -> bytes:
    value = result.get(name)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"'{name}' must be 64 hex digits, got {str(value)[:80]!r}")
    return raw[::-1]


def _int(result: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = result.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"'{name}' must be an integer {low}..{high}, got {value!r}")
    return value


class AuxChainRPC:
    """The merge-mining calls to one aux chain node."""

    def __init__(self, rpc: BitcoinCoreRPC, chain: str, chain_id: int, payout_address: str) -> None:
        self.rpc = rpc
        self.chain = chain
        self.chain_id = chain_id
        self.payout_address = payout_address

    async def createauxblock(self) -> AuxBlock:
        result = await self.rpc.call("createauxblock", self.payout_address)
        try:
            return parse_aux_block(self.chain, self.chain_id, result)
        except ValueError as e:
            raise NodeError(f"createauxblock: unusable answer: {e}") from None

    async def submitauxblock(self, block_hash: str, auxpow_hex: str) -> bool:
        result = await self.rpc.call("submitauxblock", block_hash, auxpow_hex)
        if not isinstance(result, bool):
            raise NodeError(f"submitauxblock: expected true or false, got {str(result)[:80]}")
        return result

    async def best_block_hash(self) -> bytes:
        """The tip (raw order), from ``getblockchaininfo``."""
        result = await self.rpc.call("getblockchaininfo")
        if not isinstance(result, Mapping):
            raise NodeError(f"getblockchaininfo: expected an object, got {str(result)[:80]}")
        try:
            return _display_hash(result, "bestblockhash")
        except ValueError as e:
            raise NodeError(f"getblockchaininfo: {e}") from None
