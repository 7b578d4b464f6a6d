"""The merged-mining slot function and the choice of tree size and nonce."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sv2proxy.merge_mining.slot import MAX_TREE_HEIGHT, NONCES_PER_SIZE, expected_slot, plan_tree


def _reference(nonce: int, chain_id: int, size: int) -> int:
    # The same recurrence with unbounded integers, reduced once at the end: multiplication and
    # addition commute with "mod 2**32", so this must agree with the word-by-word version.
    rand = (nonce * 1103515245 + 12345 + chain_id) * 1103515245 + 12345
    return (rand % 2**32) % size


def test_vectors() -> None:
    # nonce 0, chain id 1: rand = 12345 -> 12346 -> 12346 * 1103515245 + 12345 mod 2**32.
    assert (12346 * 1103515245 + 12345) % 2**32 == 362_964_203
    assert expected_slot(0, 1, 1) == 0
    assert expected_slot(0, 1, 8) == 362_964_203 % 8 == 3
    assert expected_slot(0, 1, 2**30) == 362_964_203 % 2**30
    # Namecoin's own chain id (1) and Dogecoin's (0x62) with nonce 7 in a tree of 4.
    assert expected_slot(7, 1, 4) == _reference(7, 1, 4)
    assert expected_slot(7, 0x62, 4) == _reference(7, 0x62, 4)
    # The nonce is a 32-bit word: its high bits beyond 32 never matter.
    assert expected_slot(2**32 + 5, 9, 16) == expected_slot(5, 9, 16)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, MAX_TREE_HEIGHT))
def test_matches_the_unbounded_recurrence(nonce: int, chain_id: int, height: int) -> None:
    assert expected_slot(nonce, chain_id, 1 << height) == _reference(nonce, chain_id, 1 << height)


@pytest.mark.parametrize("size", [0, 3, 6, 2**31])
def test_sizes_are_powers_of_two_up_to_2_30(size: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        expected_slot(0, 1, size)


def test_one_chain_is_a_one_leaf_tree() -> None:
    layout = plan_tree([1])
    assert (layout.size, layout.nonce, layout.slots, layout.height) == (1, 0, ((1, 0),), 0)


def test_no_chain_is_a_one_leaf_tree_too() -> None:
    assert plan_tree([]).size == 1


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 12))
def test_two_ids_collide_exactly_when_they_agree_modulo_the_size(nonce: int, a: int, b: int, height: int) -> None:
    # The LCG's low bits depend only on its inputs' low bits, and an odd multiplier is a
    # bijection modulo 2**k: the nonce moves slots around but never makes or breaks a collision.
    size = 1 << height
    assert (expected_slot(nonce, a, size) == expected_slot(nonce, b, size)) == (a % size == b % size)


def test_ids_of_one_parity_never_part_in_a_tree_of_two() -> None:
    # The slot's low bit is (nonce + chain id + 1) mod 2 after the LCG's odd multiplier and
    # increment, so two odd ids share it for every nonce: the plan must grow the tree.
    assert all(expected_slot(n, 1, 2) == expected_slot(n, 3, 2) for n in range(64))
    assert plan_tree([1, 3]).size == 4
    assert plan_tree([1, 2]).size == 2


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=8, unique=True))
def test_plan_is_collision_free_and_smallest(ids: list[int]) -> None:
    # Ids equal modulo the largest tree share a slot in every tree (the slot function adds the
    # id before a multiplication by an odd number): those are refused, tested below.
    assume(len({cid % (1 << MAX_TREE_HEIGHT) for cid in ids}) == len(ids))
    layout = plan_tree(ids)
    slots = [layout.slot_of(cid) for cid in ids]
    assert len(set(slots)) == len(ids)
    assert all(slot == expected_slot(layout.nonce, cid, layout.size) for cid, slot in zip(ids, slots, strict=True))
    assert layout.size >= len(ids)
    # No smaller power of two that could hold them all has a collision-free nonce in the search.
    smaller = layout.size // 2
    if smaller >= len(ids):
        for nonce in range(NONCES_PER_SIZE):
            assert len({expected_slot(nonce, cid, smaller) for cid in ids}) < len(ids)
    # And at the chosen size no earlier nonce would have done.
    for nonce in range(layout.nonce):
        assert len({expected_slot(nonce, cid, layout.size) for cid in ids}) < len(ids)


@given(st.integers(0, 2**32 - 1), st.integers(1, 2**32 // (1 << MAX_TREE_HEIGHT) - 1))
def test_ids_equal_modulo_the_largest_tree_are_refused(cid: int, multiple: int) -> None:
    other = (cid + multiple * (1 << MAX_TREE_HEIGHT)) % 2**32
    with pytest.raises(ValueError):
        plan_tree([cid, other])


def test_duplicate_chain_ids_always_collide_and_are_refused() -> None:
    with pytest.raises(ValueError, match="distinct chain ids"):
        plan_tree([1, 2, 1])


@pytest.mark.parametrize("bad", [-1, 2**32, True, "1"])
def test_chain_ids_are_u32(bad: object) -> None:
    with pytest.raises(ValueError, match="32-bit"):
        plan_tree([bad])  # type: ignore[list-item]
