"""Targets, compact nBits and difficulty (PROTOCOL.md §6 "targets/difficulty").

A target is an integer; on the Stratum V2 wire it is a U256 in little-endian
order.  Difficulty 1 is Bitcoin's difficulty-1 target 0xFFFF * 2**208 (nBits
0x1d00ffff, Core's GetDifficulty and rust-bitcoin's, sometimes called "bdiff";
the "pdiff" 0x00000000FFFF…FF some pools use is not it), and
difficulty = DIFF1_TARGET / target, fractional values included.
"""

from __future__ import annotations

import math

DIFF1_TARGET = 0xFFFF << 208
MAX_TARGET = (1 << 256) - 1
U128_MAX = (1 << 128) - 1  # SRI holds h*t in a u128


def target_from_nbits(nbits: int) -> int:
    """The target a compact nBits value encodes (Bitcoin Core's arith_uint256::SetCompact).

    nBits is a base-256 float: exponent = the top byte, mantissa = the low 23 bits, bit 23 a
    sign.  Negative and overflowing encodings are refused.  As in Core, the sign only counts
    when the mantissa left after shifting is non-zero, so 0x01803456 is the target 0, not an
    error: Core's consensus check refuses a zero target separately, and so must the caller.
    """
    if not 0 <= nbits <= 0xFFFFFFFF:
        raise ValueError(f"nBits is a 32-bit unsigned integer, got {nbits}")
    exponent = nbits >> 24
    mantissa = nbits & 0x007FFFFF
    target = mantissa >> 8 * (3 - exponent) if exponent <= 3 else mantissa << 8 * (exponent - 3)
    if nbits & 0x00800000 and target:
        raise ValueError(f"nBits {nbits:#010x} encodes a negative target")
    if target > MAX_TARGET:
        raise ValueError(f"nBits {nbits:#010x} overflows 256 bits")
    return target


def nbits_from_target(target: int) -> int:
    """The compact nBits for ``target`` (rounded down, as Bitcoin Core's GetCompact does).

    The mantissa keeps the top three bytes; if its top bit is set it would read as a sign,
    so one byte more of exponent and one less of mantissa.
    """
    if not 0 <= target <= MAX_TARGET:
        raise ValueError("a target is a 256-bit unsigned integer")
    size = (target.bit_length() + 7) // 8
    mantissa = target >> 8 * (size - 3) if size > 3 else target << 8 * (3 - size)
    if mantissa & 0x00800000:
        mantissa >>= 8
        size += 1
    return (size << 24) | mantissa


def difficulty_to_target(difficulty: float) -> int:
    """The target for a (possibly fractional) difficulty, between 1 and the largest target.

    A difficulty so large that the quotient would be 0 gives 1: no target is easier to
    refuse than one no hash can meet, and 0 has no difficulty to convert back to.
    """
    if not (difficulty > 0 and math.isfinite(difficulty)):
        raise ValueError(f"difficulty must be positive and finite, got {difficulty}")
    # Integer arithmetic keeps large difficulties exact to the float's precision.
    numerator, denominator = float(difficulty).as_integer_ratio()
    return max(1, min(MAX_TARGET, DIFF1_TARGET * denominator // numerator))


def target_to_difficulty(target: int) -> float:
    """Difficulty of a target (rust-bitcoin's difficulty_float)."""
    if target <= 0:
        raise ValueError("a target must be positive")
    return DIFF1_TARGET / target


def target_to_u256(target: int) -> bytes:
    """A target as Stratum V2 U256 wire bytes (little-endian)."""
    if not 0 <= target <= MAX_TARGET:
        raise ValueError("a target is a 256-bit unsigned integer")
    return target.to_bytes(32, "little")


def u256_to_target(value: bytes) -> int:
    """A Stratum V2 U256 target as an integer (little-endian).

    Exactly 32 bytes: a shorter value would silently read as a different (smaller) target.
    """
    if len(value) != 32:
        raise ValueError(f"a U256 is 32 bytes, got {len(value)}")
    return int.from_bytes(value, "little")


def hash_rate_to_target(hash_rate: float, shares_per_minute: float) -> int:
    """The target at which ``hash_rate`` H/s finds ``shares_per_minute`` shares (SRI's formula).

    Expected hashes per share h*t with t = 60/spm; target = (2^256 - 1 - h*t) / (h*t + 1).
    h*t is computed as SRI does, ``hash_rate * (60 / spm)`` truncated to a u128 (saturating),
    so both sides derive the same target from the same nominal hash rate.  A non-positive
    rate or share rate gives the largest target.
    """
    if not (math.isfinite(hash_rate) and math.isfinite(shares_per_minute)):
        raise ValueError("hash rate and shares per minute must be finite")
    if hash_rate <= 0 or shares_per_minute <= 0:
        return MAX_TARGET
    work = min(int(hash_rate * (60.0 / shares_per_minute)), U128_MAX)
    return (MAX_TARGET - work) // (work + 1)
