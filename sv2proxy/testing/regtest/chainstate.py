"""The active chain as the Python side of the regtest node tracks it: headers and the UTXO set.

libbitcoinkernel keeps its own UTXO set but its C API cannot query it, and the mempool,
the template's fees and the named reject reasons all need one.  So the node mirrors the
kernel's active chain here, block by block as the kernel connects them (replaying from
genesis after a restart or a reorganisation), and this is the UTXO set at that tip.
Pure state: no kernel, no reactor; the node feeds it blocks the kernel has connected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sv2proxy.bitcoin.serialize import BlockHeader, Transaction
from sv2proxy.testing.regtest.consensus import MEDIAN_TIME_SPAN, Coin, OutPoint, is_unspendable, median_time

# (height, header, in the active chain) of any block the kernel knows, or None.
BlockLookup = Callable[[bytes], "tuple[int, BlockHeader, bool] | None"]


class ChainState:
    """Headers and hashes by height, and the UTXO set at the tip; implements ``ChainView``."""

    def __init__(self, lookup: BlockLookup) -> None:
        self._lookup = lookup
        self.hashes: list[bytes] = []
        self.headers: list[BlockHeader] = []
        self._heights: dict[bytes, int] = {}
        self.utxos: dict[OutPoint, Coin] = {}
        self.invalid: set[bytes] = set()
        self.block_bytes = 0  # what the blk files hold for the active chain, for size_on_disk

    def reset(self) -> None:
        """Forget the chain (before a replay from genesis); known-invalid blocks stay known."""
        self.hashes.clear()
        self.headers.clear()
        self._heights.clear()
        self.utxos.clear()
        self.block_bytes = 0

    @property
    def height(self) -> int:
        """Height of the tip, -1 before genesis is connected."""
        return len(self.hashes) - 1

    @property
    def tip_hash(self) -> bytes:
        """Raw hash of the tip."""
        return self.hashes[-1]

    def connect(
        self, block_hash: bytes, header: BlockHeader, transactions: Sequence[Transaction], size: int
    ) -> None:
        """Apply a block the kernel connected on top of our tip (UpdateCoins for each transaction).

        ``size`` is the block's serialized size, counted (with the 8-byte record header
        the blk files put before each block) for getblockchaininfo's ``size_on_disk``.
        """
        if self.hashes and header.prev_hash != self.tip_hash:
            raise ValueError("block does not extend the tracked tip")
        height = len(self.hashes)
        for tx in transactions:
            if not tx.is_coinbase:
                for txin in tx.inputs:
                    self.utxos.pop((txin.prev_txid, txin.prev_index), None)
            # Core never adds the genesis coinbase to the UTXO set: its output is unspendable.
            if height == 0:
                continue
            txid = tx.txid
            for index, txout in enumerate(tx.outputs):
                if not is_unspendable(txout.script_pubkey):
                    self.utxos[(txid, index)] = Coin(txout.value, txout.script_pubkey, height, tx.is_coinbase)
        self.hashes.append(block_hash)
        self.headers.append(header)
        self._heights[block_hash] = height
        self.block_bytes += size + 8

    def active_height(self, block_hash: bytes) -> int | None:
        """Height of a block in the active chain, None when it is not in it."""
        return self._heights.get(block_hash)

    # -- ChainView --

    def height_of(self, block_hash: bytes) -> int | None:
        """Height of any block the node knows (active chain or side branch)."""
        height = self._heights.get(block_hash)
        if height is not None:
            return height
        found = self._lookup(block_hash)
        return None if found is None else found[0]

    def bits_of(self, block_hash: bytes) -> int:
        """nBits of a known block."""
        return self._header(block_hash).bits

    def median_time_past(self, block_hash: bytes) -> int:
        """GetMedianTimePast of a known block, walking side branches through the kernel."""
        height = self._heights.get(block_hash)
        if height is not None:
            return self.median_time_past_at(height)
        times: list[int] = []
        current: bytes | None = block_hash
        while current is not None and len(times) < MEDIAN_TIME_SPAN:
            header = self._header(current)
            times.append(header.time)
            current = None if header.prev_hash == bytes(32) else header.prev_hash
        return median_time(times)

    def median_time_past_at(self, height: int) -> int:
        """GetMedianTimePast of the active block at ``height``."""
        start = max(0, height - MEDIAN_TIME_SPAN + 1)
        return median_time([header.time for header in self.headers[start : height + 1]])

    def is_known_invalid(self, block_hash: bytes) -> bool:
        """Whether the kernel refused this block by consensus before."""
        return block_hash in self.invalid

    def coin(self, outpoint: OutPoint) -> Coin | None:
        """The unspent output at the tip, None when missing or spent."""
        return self.utxos.get(outpoint)

    def _header(self, block_hash: bytes) -> BlockHeader:
        height = self._heights.get(block_hash)
        if height is not None:
            return self.headers[height]
        found = self._lookup(block_hash)
        if found is None:
            raise KeyError(f"unknown block {block_hash[::-1].hex()}")
        return found[1]
