"""The aux merkle tree: one leaf per slot, aux block hashes at their chains' slots.

Hashes are raw (internal byte order, as SHA256d outputs them): a block hash an RPC prints as
display hex is reversed before it becomes a leaf.  The tree is full (its size is a power of
two), so no level ever pairs a node with itself; slots no chain uses hold 32 zero bytes.  Only
the paths from filled slots are hashed (an empty subtree's hash depends only on its height), so
a tree of 2**30 slots with a few chains costs a few dozen hashes, not a billion.  A
branch lists the sibling at each depth, deepest first, and the slot's bits say on which side
each sibling goes -- the walk of Namecoin's ``CAuxPow::CheckMerkleBranch``, which also checks
the parent coinbase's own branch (index 0: every sibling on the right).  Pure code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from hashlib import sha256

from sv2proxy.bitcoin.serialize import NULL_HASH


def _sha256d(data: bytes) -> bytes:
    return sha256(sha256(data).digest()).digest()


def root_from_branch(leaf: bytes, branch: Iterable[bytes], index: int) -> bytes:
    """The root reached from ``leaf`` at ``index`` through ``branch`` (deepest sibling first)."""
    node = leaf
    for sibling in branch:
        node = _sha256d(sibling + node) if index & 1 else _sha256d(node + sibling)
        index >>= 1
    return node


@dataclass(frozen=True, slots=True)
class AuxMerkleTree:
    """A full tree of ``size`` leaves with ``leaves`` (slot -> raw hash) filled in."""

    size: int
    leaves: Mapping[int, bytes]
    #: Per level from the leaves (level 0) to the root (the last): the nodes above filled
    #: slots, by index; any other node of level k is ``empty[k]``.
    levels: tuple[Mapping[int, bytes], ...] = field(init=False, repr=False)
    #: The hash of an empty subtree of each height (level 0: the zero leaf).
    empty: tuple[bytes, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.size < 1 or self.size & (self.size - 1):
            raise ValueError(f"the aux tree size must be a power of two, got {self.size}")
        for slot, leaf in self.leaves.items():
            if not 0 <= slot < self.size:
                raise ValueError(f"slot {slot} is outside a tree of {self.size} leaves")
            if len(leaf) != 32:
                raise ValueError(f"the leaf at slot {slot} must be 32 bytes")
        height = self.size.bit_length() - 1
        empty = [NULL_HASH]
        level: dict[int, bytes] = dict(self.leaves)
        levels = [level]
        for depth in range(height):
            blank = empty[depth]
            parents: dict[int, bytes] = {}
            for index in sorted({i >> 1 for i in level}):
                left = level.get(2 * index, blank)
                right = level.get(2 * index + 1, blank)
                parents[index] = _sha256d(left + right)
            empty.append(_sha256d(blank + blank))
            level = parents
            levels.append(level)
        object.__setattr__(self, "levels", tuple(levels))
        object.__setattr__(self, "empty", tuple(empty))

    @property
    def root(self) -> bytes:
        """The root, raw (the commitment carries it byte-reversed)."""
        return self.levels[-1].get(0, self.empty[-1])

    def branch(self, slot: int) -> tuple[bytes, ...]:
        """The siblings from ``slot`` up to the root, deepest first (log2(size) of them)."""
        if not 0 <= slot < self.size:
            raise ValueError(f"slot {slot} is outside a tree of {self.size} leaves")
        out: list[bytes] = []
        index = slot
        for depth, level in enumerate(self.levels[:-1]):
            out.append(level.get(index ^ 1, self.empty[depth]))
            index >>= 1
        return tuple(out)
