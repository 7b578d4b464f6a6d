"""Aux work: each chain's block to mine, and the set of them one parent coinbase commits to.

:class:`AuxBlock` is what ``createauxblock`` answered for one chain.  :class:`AuxWork` is the
blocks of every live chain laid out in one aux merkle tree (:mod:`.slot`, :mod:`.tree`), with
the commitment the parent coinbase carries (:mod:`.commitment`) and, for each chain, the
branch its proof will need.  It is built once per change of aux work, so a share only pays
for one integer comparison against the loosest aux target (:meth:`AuxWork.blocks_met`); the
proofs themselves (:meth:`AuxWork.proof`) are built only for the rare share that meets one.
Pure code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sv2proxy.bitcoin.script import push_data
from sv2proxy.merge_mining.commitment import Commitment
from sv2proxy.merge_mining.proof import AuxPow
from sv2proxy.merge_mining.slot import TreeLayout, plan_tree
from sv2proxy.merge_mining.tree import AuxMerkleTree


@dataclass(frozen=True, slots=True)
class AuxBlock:
    """One aux chain's block to mine: the hash to commit to (raw order) and its target."""

    chain: str  # the configured name
    chain_id: int
    hash: bytes
    target: int
    height: int
    coinbase_value: int  # in the aux chain's smallest unit
    prev_hash: bytes  # raw; a change means the chain's tip moved

    def __post_init__(self) -> None:
        if len(self.hash) != 32 or len(self.prev_hash) != 32:
            raise ValueError("aux block and prev hashes are 32 bytes")
        if not 0 < self.target < 1 << 256:
            raise ValueError(f"an aux target is 1..2**256-1, got {self.target}")

    @property
    def display_hash(self) -> str:
        """The hash as the aux chain's RPC prints it (and ``submitauxblock`` takes it)."""
        return self.hash[::-1].hex()


@dataclass(frozen=True, slots=True)
class AuxWork:
    """The aux blocks one parent coinbase commits to, and what their proofs will need."""

    blocks: tuple[AuxBlock, ...]
    layout: TreeLayout = field(init=False)
    tree: AuxMerkleTree = field(init=False, repr=False)
    commitment: Commitment = field(init=False)
    #: The data push that goes into the parent coinbase scriptSig (opcode ‖ 44 bytes).
    script_push: bytes = field(init=False, repr=False)
    #: Per block (same order): its slot and its branch in the aux tree.
    slots: tuple[int, ...] = field(init=False, repr=False)
    branches: tuple[tuple[bytes, ...], ...] = field(init=False, repr=False)
    #: The highest (easiest) aux target: a share hash above it meets none.
    loosest_target: int = field(init=False)

    def __post_init__(self) -> None:
        if not self.blocks:
            raise ValueError("aux work needs at least one aux block")
        names = [block.chain for block in self.blocks]
        if len(set(names)) != len(names):
            raise ValueError(f"one aux block per chain, got {names}")
        layout = plan_tree(block.chain_id for block in self.blocks)
        slots = tuple(slot for _, slot in layout.slots)
        tree = AuxMerkleTree(layout.size, {slot: block.hash for slot, block in zip(slots, self.blocks, strict=True)})
        commitment = Commitment(tree.root, layout.size, layout.nonce)
        object.__setattr__(self, "layout", layout)
        object.__setattr__(self, "tree", tree)
        object.__setattr__(self, "commitment", commitment)
        object.__setattr__(self, "script_push", push_data(commitment.serialize()))
        object.__setattr__(self, "slots", slots)
        object.__setattr__(self, "branches", tuple(tree.branch(slot) for slot in slots))
        object.__setattr__(self, "loosest_target", max(block.target for block in self.blocks))

    def blocks_met(self, share_hash: bytes) -> list[int]:
        """The indexes of the blocks whose target ``share_hash`` (raw) meets; usually none."""
        value = int.from_bytes(share_hash, "little")
        if value > self.loosest_target:
            return []
        return [i for i, block in enumerate(self.blocks) if value <= block.target]

    def proof(self, index: int, coinbase: bytes, coinbase_branch: Sequence[bytes], header: bytes) -> AuxPow:
        """The proof for block ``index`` from a parent share: its legacy coinbase, that
        coinbase's merkle branch (the template's merkle path) and its 80-byte header."""
        return AuxPow(
            coinbase=coinbase,
            coinbase_branch=tuple(coinbase_branch),
            chain_branch=self.branches[index],
            chain_index=self.slots[index],
            parent_header=header,
        )

    def same_blocks(self, blocks: Sequence[AuxBlock]) -> bool:
        """Whether ``blocks`` are exactly these (so the commitment would not change)."""
        return tuple(blocks) == self.blocks
