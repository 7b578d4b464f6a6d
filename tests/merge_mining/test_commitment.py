"""The fabe6d6d commitment: its bytes, one field per line, both ways."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sv2proxy.merge_mining.commitment import COMMITMENT_SIZE, MERGED_MINING_HEADER, Commitment

ROOT = bytes(range(32))  # raw order: 00 01 .. 1f
VECTOR = bytes.fromhex(
    "fabe6d6d"  # the merged-mining header
    "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100"  # the root, reversed
    "04000000"  # tree size 4, LE u32
    "07000000"  # nonce 7, LE u32
)


def test_vector_both_ways() -> None:
    commitment = Commitment(ROOT, 4, 7)
    assert commitment.serialize() == VECTOR
    assert len(VECTOR) == COMMITMENT_SIZE == 44
    assert Commitment.find(b"\x03\xc8\x00\x00\x2c" + VECTOR + b"\x08" + bytes(8)) == commitment


def test_a_single_chain_root_is_the_hash_as_rpc_prints_it() -> None:
    display = "00000000000000000000000000000000000000000000000000000000deadbeef"
    raw = bytes.fromhex(display)[::-1]
    assert Commitment(raw, 1, 0).serialize()[4:36].hex() == display


@given(st.binary(min_size=32, max_size=32), st.integers(0, 31), st.integers(0, 2**32 - 1), st.binary(max_size=20))
def test_roundtrip(root: bytes, height: int, nonce: int, before: bytes) -> None:
    commitment = Commitment(root, 1 << height, nonce)
    script = before + commitment.serialize()
    assume(script.count(MERGED_MINING_HEADER) == 1)  # a second header is refused, tested below
    assert Commitment.find(script) == commitment


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (b"\x01\x02", "no merged-mining header"),
        (VECTOR + VECTOR, "more than one"),
        (VECTOR[:-1], "cut short"),
    ],
)
def test_find_refuses(script: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Commitment.find(script)


@pytest.mark.parametrize(("root", "size", "nonce"), [(b"x", 1, 0), (ROOT, 3, 0), (ROOT, 0, 0), (ROOT, 1, 2**32)])
def test_fields_are_checked(root: bytes, size: int, nonce: int) -> None:
    with pytest.raises(ValueError):
        Commitment(root, size, nonce)
