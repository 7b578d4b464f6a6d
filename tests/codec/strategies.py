"""Hypothesis strategies for every codec message, derived from the wire types.

Nothing here lists a message's fields by hand: :func:`message_strategy` reads
``cls.FIELDS`` and asks :func:`wire_strategy` for each ``WireType``, so a new
message or a changed field type is covered without touching this module.

Sizes are kept small so a CI run stays fast (sequences of at most
:data:`MAX_ITEMS` items, short byte strings), but the bounded types B0_32,
B0_255 and STR0_255 also produce values of exactly their maximum length, where
off-by-one errors in length prefixes live.
"""

from __future__ import annotations

import dataclasses

from hypothesis import strategies as st

from sv2proxy.codec.message import Message
from sv2proxy.codec.registry import MESSAGE_TYPES
from sv2proxy.codec.tlv import (
    EXTENSION_WORKER_HASHRATE_TRACKING,
    MAX_WORKER_NAME_BYTES,
    TLV_FIELD_USER_IDENTITY,
    Tlv,
    TlvList,
)
from sv2proxy.codec.types import (
    Bool,
    FixedBytes,
    Float32,
    Option,
    Seq,
    Str,
    UInt,
    VarBytes,
    WireType,
)

#: Most items drawn for any SEQ0_255 / SEQ0_64K / TLV list.
MAX_ITEMS = 5
#: Longest byte string drawn for a variable-length field, unless it is an exact bound.
MAX_SMALL_BYTES = 40
#: Bounds small enough to hit exactly on every run (B0_32, B0_255, STR0_255, worker name).
_EXACT_BOUND_LIMIT = 255

#: Every message class, sorted by (extension_type, msg_type) for stable parametrization.
ALL_MESSAGES: tuple[type[Message], ...] = tuple(cls for _, cls in sorted(MESSAGE_TYPES.items()))

# Any Unicode scalar value UTF-8 can carry (no lone surrogates).
_UTF8_CHARS = st.characters(codec="utf-8")


def utf8_text(max_bytes: int, *, exact: bool = False) -> st.SearchStrategy[str]:
    """Text whose UTF-8 form is at most ``max_bytes`` long (exactly, with ``exact``).

    Short text is generated and filtered by its encoded length; the exact
    form truncates a longer draw on a character boundary and pads it with
    ASCII, so multi-byte characters reach the very end of the bound too.
    """
    if not exact:
        # Four bytes per character at most: keep the char count at the byte
        # bound so the filter rejects only a small share of draws.
        return st.text(_UTF8_CHARS, max_size=min(max_bytes, MAX_SMALL_BYTES)).filter(
            lambda s: len(s.encode("utf-8")) <= max_bytes
        )

    def fill(text: str) -> str:
        head = text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
        return head + "a" * (max_bytes - len(head.encode("utf-8")))

    return st.text(_UTF8_CHARS, max_size=max_bytes).map(fill)


def _sized_bytes(max_len: int) -> st.SearchStrategy[bytes]:
    small = st.binary(max_size=min(max_len, MAX_SMALL_BYTES))
    if max_len <= _EXACT_BOUND_LIMIT:
        return st.one_of(small, st.binary(min_size=max_len, max_size=max_len))
    return small


def tlv_strategy() -> st.SearchStrategy[Tlv]:
    """A worker-name TLV (valid UTF-8, at most 32 bytes) or any other TLV."""
    worker_name = st.one_of(
        utf8_text(MAX_WORKER_NAME_BYTES), utf8_text(MAX_WORKER_NAME_BYTES, exact=True)
    ).map(
        lambda name: Tlv(
            EXTENSION_WORKER_HASHRATE_TRACKING, TLV_FIELD_USER_IDENTITY, name.encode("utf-8")
        )
    )
    other = st.builds(
        Tlv,
        extension_type=st.integers(0, 0xFFFF),
        field_type=st.integers(0, 0xFF),
        value=st.binary(max_size=MAX_SMALL_BYTES),
    ).filter(
        lambda t: (t.extension_type, t.field_type)
        != (EXTENSION_WORKER_HASHRATE_TRACKING, TLV_FIELD_USER_IDENTITY)
    )
    return st.one_of(worker_name, other)


def wire_strategy(wire: WireType) -> st.SearchStrategy[object]:
    """Values that ``wire`` can encode, within the size limits above."""
    if isinstance(wire, UInt):
        return st.integers(0, wire.max)
    if isinstance(wire, Bool):
        return st.booleans()
    if isinstance(wire, Float32):
        return st.floats(width=32, allow_nan=False)
    if isinstance(wire, FixedBytes):
        assert wire.size is not None
        return st.binary(min_size=wire.size, max_size=wire.size)
    if isinstance(wire, VarBytes):
        return _sized_bytes(wire.max_len)
    if isinstance(wire, Str):
        return st.one_of(utf8_text(wire.max_len), utf8_text(wire.max_len, exact=True))
    if isinstance(wire, Seq):
        return st.lists(wire_strategy(wire.item), max_size=min(wire.max_len, MAX_ITEMS)).map(tuple)
    if isinstance(wire, Option):
        return st.one_of(st.none(), wire_strategy(wire.item))
    if isinstance(wire, TlvList):
        return st.lists(tlv_strategy(), max_size=MAX_ITEMS).map(tuple)
    raise TypeError(f"no strategy for wire type {wire!r} ({type(wire).__name__})")


def message_strategy(cls: type[Message]) -> st.SearchStrategy[Message]:
    """Instances of the message class ``cls`` with every field drawn from its wire type."""
    return st.builds(cls, **{name: wire_strategy(wire) for name, wire in cls.FIELDS})


def any_message() -> st.SearchStrategy[Message]:
    """An instance of any registered message class."""
    return st.sampled_from(ALL_MESSAGES).flatmap(message_strategy)


def minimal_value(wire: WireType) -> object:
    """The smallest valid value of ``wire`` (zero, empty, absent)."""
    if isinstance(wire, UInt):
        return 0
    if isinstance(wire, Bool):
        return False
    if isinstance(wire, Float32):
        return 0.0
    if isinstance(wire, FixedBytes):
        assert wire.size is not None
        return bytes(wire.size)
    if isinstance(wire, VarBytes):
        return b""
    if isinstance(wire, Str):
        return ""
    if isinstance(wire, (Seq, TlvList)):
        return ()
    if isinstance(wire, Option):
        return None
    raise TypeError(f"no minimal value for wire type {wire!r}")


def minimal_message(cls: type[Message]) -> Message:
    """``cls`` with every field at its :func:`minimal_value`."""
    return cls(**{name: minimal_value(wire) for name, wire in cls.FIELDS})


def replace_field(msg: Message, name: str, value: object) -> Message:
    """A copy of ``msg`` with one field changed (no validation: encoding checks)."""
    return dataclasses.replace(msg, **{name: value})  # type: ignore[type-var]


__all__ = [
    "ALL_MESSAGES",
    "MAX_ITEMS",
    "MAX_SMALL_BYTES",
    "any_message",
    "message_strategy",
    "minimal_message",
    "minimal_value",
    "replace_field",
    "tlv_strategy",
    "utf8_text",
    "wire_strategy",
]
