"""AuxWork: the committed set of aux blocks, and the per-share target check."""

from __future__ import annotations

import pytest

from merge_mining.helpers import aux_block
from sv2proxy.bitcoin.script import push_data
from sv2proxy.merge_mining.commitment import Commitment
from sv2proxy.merge_mining.work import AuxBlock, AuxWork


def test_one_chain_commits_to_its_hash() -> None:
    block = aux_block("nmc", 1)
    work = AuxWork((block,))
    assert work.commitment == Commitment(block.hash, 1, 0)
    assert work.script_push == push_data(work.commitment.serialize())
    assert len(work.script_push) == 45 and work.branches == ((),) and work.slots == (0,)


def test_blocks_met_compares_against_each_target() -> None:
    easy = aux_block("easy", 1, target=1 << 250)
    hard = aux_block("hard", 2, target=1 << 200)
    work = AuxWork((easy, hard))
    assert work.loosest_target == 1 << 250
    as_hash = lambda value: value.to_bytes(32, "little")  # noqa: E731
    assert work.blocks_met(as_hash((1 << 250) + 1)) == []
    assert work.blocks_met(as_hash(1 << 250)) == [0]
    assert work.blocks_met(as_hash(1 << 199)) == [0, 1]


def test_same_blocks() -> None:
    blocks = (aux_block("a", 1), aux_block("b", 2))
    work = AuxWork(blocks)
    assert work.same_blocks(blocks)
    assert not work.same_blocks((blocks[0], aux_block("b", 2, seed=b"new tip")))


def test_refuses_empty_duplicates_and_shared_ids() -> None:
    with pytest.raises(ValueError, match="at least one"):
        AuxWork(())
    with pytest.raises(ValueError, match="one aux block per chain"):
        AuxWork((aux_block("a", 1), aux_block("a", 2)))
    with pytest.raises(ValueError, match="distinct chain ids"):
        AuxWork((aux_block("a", 1), aux_block("b", 1)))


def test_aux_block_fields() -> None:
    block = aux_block("a", 1)
    assert block.display_hash == block.hash[::-1].hex()
    with pytest.raises(ValueError):
        AuxBlock("a", 1, b"short", 1, 1, 1, bytes(32))
    with pytest.raises(ValueError):
        AuxBlock("a", 1, bytes(32), 0, 1, 1, bytes(32))
