"""Stratum V1 field encodings shared by the parsers and the encoders (PROTOCOL.md §8).

SV1 writes 32-bit header fields as big-endian hex, byte strings as plain hex,
and the previous block hash in its own order: the SV2/internal 32 bytes with
each 4-byte word byte-reversed (SRI ``sv1/src/utils.rs PrevHash``).  The
parsers here raise plain ``ValueError``; the message layer turns that into a
JSON-RPC error carrying the request id.
"""

from __future__ import annotations

import math
import re

PREVHASH_SIZE = 32

# ASCII only: str.isdigit and int(..., 16) accept Unicode digits, "_" and spaces.
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_HEX32 = re.compile(r"[0-9a-fA-F]{1,8}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Integral floats below this are written as JSON integers; beyond it the float's repr
# is both shorter and what the value really is.
_INTEGRAL_LIMIT = 2**63


def prevhash_to_sv1(raw: bytes) -> str:
    """The ``mining.notify`` prevhash text for 32 raw (SV2 ``SetNewPrevHash``) bytes."""
    if len(raw) != PREVHASH_SIZE:
        raise ValueError(f"a prevhash is {PREVHASH_SIZE} bytes, got {len(raw)}")
    return _swap_words(raw).hex()


def prevhash_from_sv1(text: str) -> bytes:
    """The 32 raw bytes (SV2 order) of a ``mining.notify`` prevhash text."""
    if len(text) != 2 * PREVHASH_SIZE or not _HEX.fullmatch(text):
        raise ValueError(f"a prevhash is {2 * PREVHASH_SIZE} hex digits, got {show(text)}")
    return _swap_words(bytes.fromhex(text))


def _swap_words(data: bytes) -> bytes:
    """Each 4-byte word byte-reversed (its own inverse)."""
    return b"".join(data[i : i + 4][::-1] for i in range(0, len(data), 4))


def hex_bytes(text: object) -> bytes:
    """Plain hex (even length, ASCII digits, no prefix or spaces) as bytes."""
    if not isinstance(text, str) or not _HEX.fullmatch(text):
        raise ValueError(f"expected an even number of hex digits, got {show(text)}")
    return bytes.fromhex(text)


def hex_u32(text: object) -> int:
    """A big-endian 32-bit field: 1 to 8 hex digits (miners drop leading zeros)."""
    if not isinstance(text, str) or not _HEX32.fullmatch(text):
        raise ValueError(f"expected 1 to 8 hex digits, got {show(text)}")
    return int(text, 16)


def u32_hex(value: int) -> str:
    """A 32-bit field as 8 big-endian hex digits."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"a 32-bit field must be in 0..0xffffffff, got {value}")
    return f"{value:08x}"


def difficulty_value(value: object) -> float:
    """A difficulty sent as a JSON number or a numeric string; finite and positive."""
    if isinstance(value, bool):
        raise ValueError(f"a difficulty is a number, got {show(value)}")
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise ValueError(f"a difficulty is a number, got {show(value)}")
    elif not isinstance(value, int | float):
        raise ValueError(f"a difficulty is a number, got {show(value)}")
    try:
        difficulty = float(value)
    except OverflowError:
        raise ValueError(f"difficulty {show(value)} is out of range") from None
    if not (math.isfinite(difficulty) and difficulty > 0):
        raise ValueError(f"a difficulty must be finite and positive, got {show(value)}")
    return difficulty


def difficulty_json(difficulty: float) -> int | float:
    """A difficulty as written on the wire: 1024, not 1024.0; fractions by their repr.

    Some firmwares parse the difficulty as an integer when it looks like one;
    a float's repr is the shortest text that reads back as the same float.
    """
    if isinstance(difficulty, bool) or not isinstance(difficulty, int | float):
        raise ValueError(f"a difficulty is a number, got {difficulty!r}")
    try:
        value = float(difficulty)
    except OverflowError:
        raise ValueError(f"difficulty {show(difficulty)} is out of range") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"a difficulty must be finite and positive, got {difficulty!r}")
    if value.is_integer() and value < _INTEGRAL_LIMIT:
        return int(value)
    return value


def show(value: object, limit: int = 40) -> str:
    """A short repr of a peer's value for an error message (never the whole line)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
