"""The AuxPoW proof, serialized as Namecoin's ``CAuxPow`` (what ``submitauxblock`` takes as hex).

Layout (Namecoin Core ``src/auxpow.h``, SERIALIZE_METHODS of CAuxPow)::

    coinbase tx          the parent block's coinbase, consensus-serialized (we write the legacy
                         form: its txid is the merkle leaf, and readers take either form)
    hashBlock   32       zeros: never read or checked, kept for the old CMerkleTx layout
    branch      CompactSize count ‖ 32-byte hashes: the coinbase's merkle branch in the parent
                         block, deepest first (the coinbase is leaf 0)
    nIndex      LE i32   0: the coinbase's index in the parent block
    chain branch         CompactSize count ‖ 32-byte hashes: the aux block's branch in the aux tree
    nChainIndex LE i32   the aux block's slot
    parent header  80    the parent block header, whose hash is the proof of work

Hashes in both branches are raw (internal) order.  Parsing is strict: truncation, a negative
count and trailing bytes are ValueErrors that say where.  Pure code.
"""

from __future__ import annotations

from dataclasses import dataclass

from sv2proxy.bitcoin.serialize import HEADER_SIZE, BlockHeader, Transaction, decode_compact_size, encode_compact_size

#: Core's MAX_SIZE bounds a vector; a branch beyond 2**30 hashes is garbage anyway.
_MAX_BRANCH = 64


@dataclass(frozen=True, slots=True)
class AuxPow:
    """One proof: the parent coinbase, both branches, the slot, the parent header."""

    coinbase: bytes
    coinbase_branch: tuple[bytes, ...]
    chain_branch: tuple[bytes, ...]
    chain_index: int
    parent_header: bytes
    #: nIndex as serialized; always 0 for a proof we make, anything for one we parse.
    coinbase_index: int = 0

    def __post_init__(self) -> None:
        if len(self.parent_header) != HEADER_SIZE:
            raise ValueError(f"the parent header must be {HEADER_SIZE} bytes, got {len(self.parent_header)}")
        for node in (*self.coinbase_branch, *self.chain_branch):
            if len(node) != 32:
                raise ValueError("every merkle branch node must be 32 bytes")
        for name in ("chain_index", "coinbase_index"):
            value = getattr(self, name)
            if not -(1 << 31) <= value < 1 << 31:
                raise ValueError(f"{name} is a signed 32-bit integer, got {value}")

    @property
    def header(self) -> BlockHeader:
        return BlockHeader.parse(self.parent_header)

    def serialize(self) -> bytes:
        return b"".join(
            (
                self.coinbase,
                bytes(32),
                encode_compact_size(len(self.coinbase_branch)),
                *self.coinbase_branch,
                self.coinbase_index.to_bytes(4, "little", signed=True),
                encode_compact_size(len(self.chain_branch)),
                *self.chain_branch,
                self.chain_index.to_bytes(4, "little", signed=True),
                self.parent_header,
            )
        )

    @classmethod
    def parse(cls, data: bytes) -> AuxPow:
        """The proof ``data`` holds, all of it; ValueError naming what is wrong and where."""
        tx, offset = Transaction.parse_prefix(data, 0)
        coinbase = tx.serialize(with_witness=False)
        offset = _need(data, offset, 32, "hashBlock")
        branch, offset = _branch(data, offset, "the coinbase branch")
        offset_end = _need(data, offset, 4, "nIndex")
        coinbase_index = int.from_bytes(data[offset:offset_end], "little", signed=True)
        chain_branch, offset = _branch(data, offset_end, "the chain branch")
        offset_end = _need(data, offset, 4, "nChainIndex")
        chain_index = int.from_bytes(data[offset:offset_end], "little", signed=True)
        end = _need(data, offset_end, HEADER_SIZE, "the parent header")
        if end != len(data):
            raise ValueError(f"{len(data) - end} trailing bytes after the auxpow")
        return cls(coinbase, branch, chain_branch, chain_index, data[offset_end:end], coinbase_index)


def _need(data: bytes, offset: int, size: int, what: str) -> int:
    if offset + size > len(data):
        raise ValueError(f"truncated: {what} needs {size} bytes at offset {offset}, {len(data) - offset} remain")
    return offset + size


def _branch(data: bytes, offset: int, what: str) -> tuple[tuple[bytes, ...], int]:
    try:
        count, offset = decode_compact_size(data, offset)
    except ValueError as e:
        raise ValueError(f"{what} count: {e}") from None
    if count > _MAX_BRANCH:
        raise ValueError(f"{what} has {count} hashes, more than {_MAX_BRANCH}")
    end = _need(data, offset, 32 * count, what)
    return tuple(data[i : i + 32] for i in range(offset, end, 32)), end
