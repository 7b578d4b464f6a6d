"""The aux merkle tree: roots, branches, and the branch walk both proofs use."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.bitcoin.hashing import merkle_path, merkle_root, merkle_root_from_path, sha256d
from sv2proxy.merge_mining.tree import AuxMerkleTree, root_from_branch

A = sha256d(b"a")
B = sha256d(b"b")
ZERO = bytes(32)


def test_one_leaf_is_its_own_root() -> None:
    tree = AuxMerkleTree(1, {0: A})
    assert tree.root == A and tree.branch(0) == ()


def test_two_leaves() -> None:
    tree = AuxMerkleTree(2, {0: A, 1: B})
    assert tree.root == sha256d(A + B)
    assert tree.branch(0) == (B,) and tree.branch(1) == (A,)


def test_empty_slots_hold_zero_hashes() -> None:
    tree = AuxMerkleTree(4, {2: A})
    assert tree.root == sha256d(sha256d(ZERO + ZERO) + sha256d(A + ZERO))
    assert tree.branch(2) == (ZERO, sha256d(ZERO + ZERO))


@given(st.integers(0, 6).flatmap(lambda h: st.tuples(st.just(1 << h), st.data())))
def test_every_branch_leads_to_the_root(args: tuple[int, st.DataObject]) -> None:
    size, data = args
    slots = data.draw(st.sets(st.integers(0, size - 1), min_size=1))
    leaves = {slot: sha256d(slot.to_bytes(4, "little")) for slot in slots}
    tree = AuxMerkleTree(size, leaves)
    for slot, leaf in leaves.items():
        assert root_from_branch(leaf, tree.branch(slot), slot) == tree.root
        if size > 1:  # the same branch at another index leads elsewhere
            assert root_from_branch(leaf, tree.branch(slot), slot ^ 1) != tree.root


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=0, max_size=20))
def test_index_zero_is_the_coinbase_walk(txids: list[bytes]) -> None:
    # The parent coinbase's branch is checked with the same walk at index 0.
    coinbase = sha256d(b"coinbase")
    path = merkle_path(txids)
    assert root_from_branch(coinbase, path, 0) == merkle_root_from_path(coinbase, path)
    assert root_from_branch(coinbase, path, 0) == merkle_root([coinbase, *txids])


@pytest.mark.parametrize(
    ("size", "leaves", "message"),
    [(3, {}, "power of two"), (2, {2: A}, "outside"), (2, {0: b"short"}, "32 bytes")],
)
def test_bad_trees(size: int, leaves: dict[int, bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AuxMerkleTree(size, leaves)


def test_branch_of_a_slot_outside() -> None:
    with pytest.raises(ValueError, match="outside"):
        AuxMerkleTree(2, {0: A}).branch(2)


def test_a_huge_sparse_tree_costs_hashes_per_chain_not_per_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    # Chain ids agreeing in their low k bits need a tree of 2**(k+1) leaves (see slot.py); a
    # tree built leaf by leaf would block the reactor for minutes and take gigabytes.  Only
    # the paths of the filled slots need hashing: the rest are the hashes of empty subtrees.
    import sv2proxy.merge_mining.tree as tree_module

    calls = 0
    real = tree_module._sha256d  # noqa: SLF001

    def counting(data: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return real(data)

    monkeypatch.setattr(tree_module, "_sha256d", counting)
    size = 1 << 21
    leaves = {3: A, size - 2: B}
    tree = AuxMerkleTree(size, leaves)
    assert calls <= 4 * 21
    for slot, leaf in leaves.items():
        branch = tree.branch(slot)
        assert len(branch) == 21 and root_from_branch(leaf, branch, slot) == tree.root


def test_the_sparse_tree_matches_a_full_one() -> None:
    # Against a straightforward full tree (every leaf hashed, empty ones as zeros).
    size = 16
    leaves = {1: A, 6: B, 15: sha256d(b"c")}
    level = [leaves.get(i, ZERO) for i in range(size)]
    while len(level) > 1:
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    assert AuxMerkleTree(size, leaves).root == level[0]
