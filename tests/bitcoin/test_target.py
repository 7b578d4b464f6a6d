"""Targets, compact nBits and difficulty (sv2proxy.bitcoin.target, PROTOCOL.md §6).

The nBits vectors are Bitcoin Core's (src/test/arith_uint256_tests.cpp, SetCompact/GetCompact)
plus real chain values; difficulty 1 is the target of nBits 0x1d00ffff.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.bitcoin.target import (
    DIFF1_TARGET,
    MAX_TARGET,
    difficulty_to_target,
    hash_rate_to_target,
    nbits_from_target,
    target_from_nbits,
    target_to_difficulty,
    target_to_u256,
    u256_to_target,
)

# (nBits, target, what GetCompact gives back) from Core's bignum_SetCompact test.
CORE_COMPACT_VECTORS = [
    (0x00000000, 0, 0x00000000),
    (0x00123456, 0, 0x00000000),
    (0x01003456, 0, 0x00000000),
    (0x02000056, 0, 0x00000000),
    (0x03000000, 0, 0x00000000),
    (0x04000000, 0, 0x00000000),
    (0x00923456, 0, 0x00000000),
    (0x01803456, 0, 0x00000000),  # sign bit with a mantissa shifted to 0: zero, not negative
    (0x02800056, 0, 0x00000000),
    (0x03800000, 0, 0x00000000),
    (0x04800000, 0, 0x00000000),
    (0x01123456, 0x12, 0x01120000),
    (0x02123456, 0x1234, 0x02123400),
    (0x03123456, 0x123456, 0x03123456),
    (0x04123456, 0x12345600, 0x04123456),
    (0x05009234, 0x92340000, 0x05009234),
    (0x20123456, 0x123456 << 8 * 29, 0x20123456),
]


@pytest.mark.parametrize(("nbits", "target", "compact"), CORE_COMPACT_VECTORS)
def test_core_compact_vectors(nbits: int, target: int, compact: int) -> None:
    assert target_from_nbits(nbits) == target
    assert nbits_from_target(target) == compact


@pytest.mark.parametrize("nbits", [0x01FEDCBA, 0x04923456])
def test_negative_nbits_refused(nbits: int) -> None:
    with pytest.raises(ValueError, match="negative"):
        target_from_nbits(nbits)


@pytest.mark.parametrize("nbits", [0xFF123456, 0x23000001, 0x22000100, 0x21010000])
def test_overflowing_nbits_refused(nbits: int) -> None:
    with pytest.raises(ValueError, match="overflows"):
        target_from_nbits(nbits)


@pytest.mark.parametrize("nbits", [0x22000001, 0x21000100, 0x20010000])
def test_largest_non_overflowing_exponents(nbits: int) -> None:
    # Core's overflow rule: nSize > 34, or a 2-byte word past 33, or a 3-byte word past 32.
    assert target_from_nbits(nbits) <= MAX_TARGET


@pytest.mark.parametrize("nbits", [-1, 1 << 32])
def test_nbits_outside_u32_refused(nbits: int) -> None:
    with pytest.raises(ValueError, match="32-bit"):
        target_from_nbits(nbits)


def test_genesis_nbits_is_difficulty_one() -> None:
    assert target_from_nbits(0x1D00FFFF) == DIFF1_TARGET
    assert nbits_from_target(DIFF1_TARGET) == 0x1D00FFFF
    assert target_to_difficulty(DIFF1_TARGET) == 1.0
    assert difficulty_to_target(1) == DIFF1_TARGET
    # PROTOCOL.md §6: diff1 as U256 LE ends …0000ffff00000000.
    assert target_to_u256(DIFF1_TARGET).hex() == "00" * 26 + "ffff" + "00" * 4


def test_regtest_nbits_matches_the_sv2_tp_target() -> None:
    # sv2-tp-frames.txt, SetNewPrevHash: n_bits=0x207fffff, target U256 LE 0000…00ffff7f.
    wire = bytes.fromhex("0000000000000000000000000000000000000000000000000000000000ffff7f")
    target = target_from_nbits(0x207FFFFF)
    assert target == 0x7FFFFF << 8 * 29
    assert target_to_u256(target) == wire
    assert u256_to_target(wire) == target
    assert nbits_from_target(target) == 0x207FFFFF
    assert target_to_difficulty(target) == pytest.approx(4.6565423739069247e-10, rel=1e-15)


@pytest.mark.parametrize(
    ("nbits", "difficulty"),
    [
        (0x1B0404CB, 16307.420938523983),  # the Bitcoin wiki's worked example
        (0x17034219, 86388558925171.02),  # mainnet block 840000 (the fourth halving)
    ],
)
def test_mainnet_difficulties(nbits: int, difficulty: float) -> None:
    target = target_from_nbits(nbits)
    assert target_to_difficulty(target) == pytest.approx(difficulty, rel=1e-15)
    assert nbits_from_target(target) == nbits


@pytest.mark.parametrize("difficulty", [0.0001, 0.001, 0.5, 1, 2, 1000, 1e6, 86388558925171.02, 1e15])
def test_difficulty_round_trip(difficulty: float) -> None:
    assert target_to_difficulty(difficulty_to_target(difficulty)) == pytest.approx(difficulty, rel=1e-12)


def test_fractional_difficulty_gives_an_easier_target() -> None:
    target = difficulty_to_target(0.0001)
    assert DIFF1_TARGET * 9999 < target < DIFF1_TARGET * 10001


def test_difficulty_bounds() -> None:
    assert difficulty_to_target(1e-80) == MAX_TARGET
    assert difficulty_to_target(1e300) == 1
    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(ValueError, match="positive and finite"):
            difficulty_to_target(bad)
    with pytest.raises(ValueError, match="positive"):
        target_to_difficulty(0)


def test_u256_bounds() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        u256_to_target(bytes(31))
    with pytest.raises(ValueError, match="256-bit"):
        target_to_u256(MAX_TARGET + 1)
    with pytest.raises(ValueError, match="256-bit"):
        nbits_from_target(-1)


def test_hash_rate_to_target_formula() -> None:
    # 1 TH/s at 6 shares a minute: h·t = 1e12 · 10 s = 1e13 expected hashes per share.
    work = 10**13
    target = hash_rate_to_target(1e12, 6)
    assert target == (MAX_TARGET - work) // (work + 1)
    # difficulty ≈ h·t / 2^32 (diff 1 ≈ 2^32 hashes).
    assert target_to_difficulty(target) == pytest.approx(work / 2**32, rel=1e-4)
    assert hash_rate_to_target(2e12, 6) < target
    assert hash_rate_to_target(0, 6) == MAX_TARGET
    assert hash_rate_to_target(1e12, 0) == MAX_TARGET
    with pytest.raises(ValueError, match="finite"):
        hash_rate_to_target(math.nan, 6)


def test_hash_rate_saturates_like_sris_u128() -> None:
    assert hash_rate_to_target(1e60, 1) == (MAX_TARGET - (2**128 - 1)) // 2**128


@given(st.integers(min_value=1, max_value=MAX_TARGET))
def test_compact_rounds_down_to_three_significant_bytes(target: int) -> None:
    nbits = nbits_from_target(target)
    rounded = target_from_nbits(nbits)
    assert rounded <= target
    # What is lost is below the mantissa's last byte (exponent - 3 bytes up).
    assert target - rounded < 1 << 8 * max((nbits >> 24) - 3, 0)


@given(st.integers(min_value=3, max_value=0x20), st.integers(min_value=0x8000, max_value=0x7FFFFF))
def test_canonical_nbits_round_trip(exponent: int, mantissa: int) -> None:
    nbits = exponent << 24 | mantissa
    assert nbits_from_target(target_from_nbits(nbits)) == nbits


@given(st.floats(min_value=1e-9, max_value=1e18, allow_nan=False, allow_infinity=False))
def test_difficulty_round_trip_property(difficulty: float) -> None:
    assert target_to_difficulty(difficulty_to_target(difficulty)) == pytest.approx(difficulty, rel=1e-12)


@given(st.integers(min_value=0, max_value=MAX_TARGET))
def test_u256_round_trip(target: int) -> None:
    assert u256_to_target(target_to_u256(target)) == target
