"""Where each aux chain's block hash sits in the aux merkle tree (the merged-mining spec).

Every chain has one slot, fixed by the tree size, a nonce written in the commitment and the
chain's own id, so that one parent proof of work can never count twice on the same chain.  The
slot function is the one Namecoin's ``CAuxPow::getExpectedIndex`` evaluates; all arithmetic is
on unsigned 32-bit words (it overflows on purpose)::

    rand = nonce
    rand = rand * 1103515245 + 12345
    rand += chain_id
    rand = rand * 1103515245 + 12345
    slot = rand % size

Several chains can share one commitment only if their slots differ; :func:`plan_tree` picks the
smallest power-of-two size and then the smallest nonce that keeps every slot apart.  (Modulo a
power of two the recurrence's low bits depend only on its inputs' low bits, and the odd
multiplier is a bijection, so two ids collide exactly when they agree modulo the size: the
nonce moves slots around but never separates two chains.  The search over nonces is kept so
the plan holds for any slot function of this shape; it ends at the first nonce in practice.)
Pure code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

_U32 = 0xFFFF_FFFF
_LCG_MULTIPLIER = 1103515245
_LCG_INCREMENT = 12345
#: Namecoin refuses a chain merkle branch longer than 30 ("Aux POW chain merkle branch too long").
MAX_TREE_HEIGHT = 30
#: How many nonces :func:`plan_tree` tries at each size before doubling it.
NONCES_PER_SIZE = 64


def expected_slot(nonce: int, chain_id: int, size: int) -> int:
    """The slot of ``chain_id`` in a tree of ``size`` leaves (a power of two) for ``nonce``."""
    if size < 1 or size & (size - 1) or size > 1 << MAX_TREE_HEIGHT:
        raise ValueError(f"the aux tree size is a power of two up to 2**{MAX_TREE_HEIGHT}, got {size}")
    rand = nonce & _U32
    rand = (rand * _LCG_MULTIPLIER + _LCG_INCREMENT) & _U32
    rand = (rand + chain_id) & _U32
    rand = (rand * _LCG_MULTIPLIER + _LCG_INCREMENT) & _U32
    return rand % size


@dataclass(frozen=True, slots=True)
class TreeLayout:
    """A tree size and nonce, and the slot they give each chain id (no two alike)."""

    size: int
    nonce: int
    slots: tuple[tuple[int, int], ...]  # (chain_id, slot), in the order the ids were given

    @property
    def height(self) -> int:
        """The branch length every chain's proof carries: log2(size)."""
        return self.size.bit_length() - 1

    def slot_of(self, chain_id: int) -> int:
        for cid, slot in self.slots:
            if cid == chain_id:
                return slot
        raise KeyError(chain_id)


def plan_tree(chain_ids: Iterable[int], first_nonce: int = 0) -> TreeLayout:
    """The smallest tree (and in it the first nonce from ``first_nonce``) without collisions.

    Two chains with one id always collide (their slots are equal for every nonce), so ids must
    be distinct; ValueError otherwise.  An empty list is a one-leaf tree holding nothing.
    """
    ids = tuple(chain_ids)
    for cid in ids:
        if isinstance(cid, bool) or not isinstance(cid, int) or not 0 <= cid <= _U32:
            raise ValueError(f"a chain id is a 32-bit unsigned integer, got {cid!r}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"aux chains must have distinct chain ids, got {list(ids)}")
    size = 1
    while len(ids) > size:
        size <<= 1
    while size <= 1 << MAX_TREE_HEIGHT:
        for step in range(NONCES_PER_SIZE):
            nonce = (first_nonce + step) & _U32
            slots = tuple(expected_slot(nonce, cid, size) for cid in ids)
            if len(set(slots)) == len(slots):
                return TreeLayout(size, nonce, tuple(zip(ids, slots, strict=True)))
        size <<= 1
    raise ValueError(f"no collision-free aux tree for chain ids {list(ids)}")  # pragma: no cover
