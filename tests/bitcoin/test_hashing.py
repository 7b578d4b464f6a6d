"""SHA256d, merkle roots and merkle paths (sv2proxy.bitcoin.hashing, PROTOCOL.md §6).

Every root and path is checked against a brute-force tree built here from the definition
(pair neighbours, duplicate the last node of an odd level), for 0..20 transactions besides
the coinbase.  Hashes are raw SHA256d bytes throughout.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.bitcoin.hashing import display_hex, merkle_path, merkle_root, merkle_root_from_path, sha256d


def _leaf(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(4, "little")).digest()


def _brute_tree(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first, root last."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        level = list(levels[-1])
        if len(level) % 2:
            level.append(level[-1])
        levels.append([sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)])
    return levels


def _brute_path(leaves: list[bytes], index: int) -> list[bytes]:
    """The siblings of leaf ``index`` from the bottom up."""
    path = []
    for level in _brute_tree(leaves)[:-1]:
        padded = level + [level[-1]] if len(level) % 2 else level
        path.append(padded[index ^ 1])
        index //= 2
    return path


def test_sha256d_of_empty_string() -> None:
    # SHA256d("") — the classic value, raw digest order.
    assert sha256d(b"").hex() == "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456"


def test_display_hex_reverses_bytes() -> None:
    # Genesis block hash: raw 6fe28c0a… is shown by explorers as 000000000019d668….
    raw = bytes.fromhex("6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000")
    assert display_hex(raw) == "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"


@pytest.mark.parametrize("others", range(21))
def test_root_and_path_match_brute_force(others: int) -> None:
    coinbase = _leaf(1_000_000)
    txids = [_leaf(i) for i in range(others)]
    levels = _brute_tree([coinbase, *txids])
    path = merkle_path(txids)
    assert path == _brute_path([coinbase, *txids], 0)
    assert len(path) == len(levels) - 1
    assert merkle_root([coinbase, *txids]) == levels[-1][0]
    assert merkle_root_from_path(coinbase, path) == levels[-1][0]


def test_single_leaf_is_its_own_root() -> None:
    leaf = _leaf(7)
    assert merkle_root([leaf]) == leaf
    assert merkle_path([]) == []
    assert merkle_root_from_path(leaf, []) == leaf


def test_three_transactions_path_shape() -> None:
    # PROTOCOL.md §11: 3 txs besides the coinbase → [txid A, H(B‖C)].
    a, b, c = _leaf(1), _leaf(2), _leaf(3)
    assert merkle_path([a, b, c]) == [a, sha256d(b + c)]


def test_two_transactions_duplicate_the_last() -> None:
    # coinbase, A, B: level 1 is [H(cb‖A), H(B‖B)], so the path is [A, H(B‖B)].
    a, b = _leaf(1), _leaf(2)
    assert merkle_path([a, b]) == [a, sha256d(b + b)]


def test_empty_tree_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        merkle_root([])


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=40), st.binary(min_size=32, max_size=32))
def test_path_reaches_the_root_of_the_whole_tree(txids: list[bytes], coinbase: bytes) -> None:
    assert merkle_root_from_path(coinbase, merkle_path(txids)) == merkle_root([coinbase, *txids])
