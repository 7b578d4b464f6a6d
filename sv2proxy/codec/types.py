"""Stratum V2 data types with their wire bounds (PROTOCOL.md §2, SPEC 03 §3.1).

Each type is a small object that knows how to read itself from a payload at
an offset and write itself to a buffer, and what values it admits.  Message
fields name their type in an ``Annotated`` hint, for example
``channel_id: Annotated[int, U32]``; :mod:`sv2proxy.codec.message` compiles a
message's fields into one reader and one writer.

Fixed-size types also carry a ``struct`` code so that runs of them compile into
a single precompiled :class:`struct.Struct`.  All integers are little-endian.
Readers never raise anything but :class:`ProtocolError`: every length is
checked against what is left before it is used.
"""

from __future__ import annotations

import math
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from sv2proxy.errors import ProtocolError

Reader = Callable[[bytes, int], tuple[Any, int]]
Writer = Callable[[Any, bytearray], None]


class WireType(ABC):
    """A Stratum V2 data type.

    ``size`` is the fixed wire size or None when it depends on the value.
    ``pack_code``/``unpack_code`` are the struct codes for fixed types that
    fit a struct run (None otherwise); ``from_wire`` converts an unpacked value
    where the struct value is not yet the Python one (BOOL).
    """

    name: str = "?"
    size: int | None = None
    pack_code: str | None = None
    unpack_code: str | None = None
    from_wire: Callable[[Any], Any] | None = None

    @abstractmethod
    def read(self, buf: bytes, offset: int) -> tuple[Any, int]:
        """The value at ``offset`` and the offset just after it."""

    @abstractmethod
    def write(self, value: Any, out: bytearray) -> None:
        """Append the encoding of ``value``; ProtocolError if it is out of bounds."""

    @abstractmethod
    def check(self, value: Any) -> None:
        """Raise ProtocolError if ``value`` cannot be encoded as this type."""

    def __repr__(self) -> str:
        return self.name


def _short(name: str, need: int, offset: int, buf: bytes) -> ProtocolError:
    return ProtocolError(
        f"{name} at offset {offset} needs {need} bytes, only {len(buf) - offset} left"
    )


class UInt(WireType):
    """U8, U16, U24, U32, U64: unsigned little-endian integers."""

    def __init__(self, name: str, size: int, code: str | None) -> None:
        self.name = name
        self.size = size
        self.bits = size * 8
        self.max = (1 << self.bits) - 1
        self.pack_code = self.unpack_code = code

    def check(self, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProtocolError(f"{self.name} expects an int, got {type(value).__name__}")
        if not 0 <= value <= self.max:
            raise ProtocolError(f"{self.name} value {value} is out of range 0..{self.max}")

    def read(self, buf: bytes, offset: int) -> tuple[int, int]:
        end = offset + self.size  # type: ignore[operator]
        if end > len(buf):
            raise _short(self.name, self.size, offset, buf)  # type: ignore[arg-type]
        return int.from_bytes(buf[offset:end], "little"), end

    def write(self, value: Any, out: bytearray) -> None:
        self.check(value)
        out += value.to_bytes(self.size, "little")  # type: ignore[arg-type]


class Bool(WireType):
    """BOOL: one byte; receivers look at bit 0 only (SRI decodes ``(x << 7) >> 7``)."""

    name = "BOOL"
    size = 1
    pack_code = "?"
    unpack_code = "B"

    @staticmethod
    def from_wire(value: int) -> bool:  # type: ignore[override]
        return bool(value & 1)

    def check(self, value: Any) -> None:
        if not isinstance(value, bool):
            raise ProtocolError(f"BOOL expects a bool, got {type(value).__name__}")

    def read(self, buf: bytes, offset: int) -> tuple[bool, int]:
        if offset >= len(buf):
            raise _short(self.name, 1, offset, buf)
        return bool(buf[offset] & 1), offset + 1

    def write(self, value: Any, out: bytearray) -> None:
        self.check(value)
        out.append(1 if value else 0)


class Float32(WireType):
    """F32: IEEE-754 binary32, little-endian (``nominal_hash_rate``)."""

    name = "F32"
    size = 4
    pack_code = unpack_code = "f"
    _STRUCT = struct.Struct("<f")

    def check(self, value: Any) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ProtocolError(f"F32 expects a float, got {type(value).__name__}")
        try:
            fits = not math.isfinite(value) or abs(value) <= 3.4028234663852886e38
        except OverflowError:  # an int too large for any float
            fits = False
        if not fits:
            raise ProtocolError(f"F32 value {value} does not fit binary32")

    def read(self, buf: bytes, offset: int) -> tuple[float, int]:
        if offset + 4 > len(buf):
            raise _short(self.name, 4, offset, buf)
        return self._STRUCT.unpack_from(buf, offset)[0], offset + 4

    def write(self, value: Any, out: bytearray) -> None:
        self.check(value)
        out += self._STRUCT.pack(value)


class FixedBytes(WireType):
    """U256, PUBKEY, SIGNATURE, MAC: raw bytes of a fixed length.

    A U256 read as a number (a target) is little-endian; a hash is kept in its
    raw SHA256d (internal) byte order.  We keep both as bytes and leave the
    interpretation to the caller.
    """

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self.pack_code = self.unpack_code = f"{size}s"

    def check(self, value: Any) -> None:
        if not isinstance(value, bytes):
            raise ProtocolError(f"{self.name} expects bytes, got {type(value).__name__}")
        if len(value) != self.size:
            raise ProtocolError(f"{self.name} must be exactly {self.size} bytes, got {len(value)}")

    def read(self, buf: bytes, offset: int) -> tuple[bytes, int]:
        end = offset + self.size  # type: ignore[operator]
        if end > len(buf):
            raise _short(self.name, self.size, offset, buf)  # type: ignore[arg-type]
        return bytes(buf[offset:end]), end

    def write(self, value: Any, out: bytearray) -> None:
        self.check(value)
        out += value


class VarBytes(WireType):
    """B0_32, B0_255, B0_64K, B0_16M: a little-endian length prefix, then bytes."""

    def __init__(self, name: str, prefix: int, max_len: int) -> None:
        self.name = name
        self.prefix = prefix
        self.max_len = max_len

    def check(self, value: Any) -> None:
        if not isinstance(value, bytes):
            raise ProtocolError(f"{self.name} expects bytes, got {type(value).__name__}")
        if len(value) > self.max_len:
            raise ProtocolError(f"{self.name} holds at most {self.max_len} bytes, got {len(value)}")

    def read(self, buf: bytes, offset: int) -> tuple[bytes, int]:
        start = offset + self.prefix
        if start > len(buf):
            raise _short(f"{self.name} length", self.prefix, offset, buf)
        length = int.from_bytes(buf[offset:start], "little")
        if length > self.max_len:
            raise ProtocolError(
                f"{self.name} at offset {offset} declares {length} bytes, over its bound {self.max_len}"
            )
        end = start + length
        if end > len(buf):
            raise ProtocolError(
                f"{self.name} at offset {offset} declares {length} bytes, "
                f"only {len(buf) - start} left"
            )
        return bytes(buf[start:end]), end

    def write(self, value: Any, out: bytearray) -> None:
        self.check(value)
        out += len(value).to_bytes(self.prefix, "little")
        out += value


class Str(WireType):
    """STR0_255: a U8 length, then that many bytes of UTF-8 text (no NUL)."""

    name = "STR0_255"
    max_len = 255

    def check(self, value: Any) -> None:
        if not isinstance(value, str):
            raise ProtocolError(f"STR0_255 expects a str, got {type(value).__name__}")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:  # lone surrogates have no UTF-8 form
            raise ProtocolError("STR0_255 value cannot be encoded as UTF-8") from None
        if size > 255:
            raise ProtocolError(f"STR0_255 holds at most 255 bytes, got {size}")

    def read(self, buf: bytes, offset: int) -> tuple[str, int]:
        if offset >= len(buf):
            raise _short("STR0_255 length", 1, offset, buf)
        end = offset + 1 + buf[offset]
        if end > len(buf):
            raise ProtocolError(
                f"STR0_255 at offset {offset} declares {buf[offset]} bytes, "
                f"only {len(buf) - offset - 1} left"
            )
        try:
            return buf[offset + 1 : end].decode("utf-8"), end
        except UnicodeDecodeError:
            raise ProtocolError(f"STR0_255 at offset {offset} is not valid UTF-8") from None

    def write(self, value: Any, out: bytearray) -> None:
        self.check(value)
        raw = value.encode("utf-8")
        out.append(len(raw))
        out += raw


class Seq(WireType):
    """SEQ0_255[T], SEQ0_64K[T]: a count, then the elements back to back (a tuple)."""

    def __init__(self, name: str, prefix: int, max_len: int, item: WireType) -> None:
        self.name = f"{name}[{item.name}]"
        self.prefix = prefix
        self.max_len = max_len
        self.item = item
        # Sequences of a fixed-size item are bounds-checked once, then read in
        # one unpack (integers) or by slicing (U256 hashes).
        self._item_code = item.unpack_code if isinstance(item, UInt) and item.unpack_code else None
        self._item_bytes = item.size if isinstance(item, FixedBytes) else None

    def check(self, value: Any) -> None:
        if not isinstance(value, tuple):
            raise ProtocolError(f"{self.name} expects a tuple, got {type(value).__name__}")
        if len(value) > self.max_len:
            raise ProtocolError(f"{self.name} holds at most {self.max_len} items, got {len(value)}")
        for element in value:
            self.item.check(element)

    def read(self, buf: bytes, offset: int) -> tuple[tuple[Any, ...], int]:
        start = offset + self.prefix
        if start > len(buf):
            raise _short(f"{self.name} count", self.prefix, offset, buf)
        count = int.from_bytes(buf[offset:start], "little")
        code = self._item_code
        width = self._item_bytes
        if code is not None or width is not None:
            end = start + self.item.size * count  # type: ignore[operator]
            if end > len(buf):
                raise ProtocolError(
                    f"{self.name} at offset {offset} declares {count} items ({end - start} bytes), "
                    f"only {len(buf) - start} left"
                )
            if code is not None:
                return struct.unpack_from(f"<{count}{code}", buf, start), end
            return tuple(bytes(buf[i : i + width]) for i in range(start, end, width)), end  # type: ignore[arg-type]
        items = []
        pos = start
        read = self.item.read
        for _ in range(count):
            element, pos = read(buf, pos)
            items.append(element)
        return tuple(items), pos

    def write(self, value: Any, out: bytearray) -> None:
        if not isinstance(value, tuple) or len(value) > self.max_len:
            self.check(value)
        out += len(value).to_bytes(self.prefix, "little")
        write = self.item.write
        for element in value:
            write(element, out)


class Option(WireType):
    """OPTION[T]: SEQ0_1 -- a U8 count of 0 (None) or 1, then the element."""

    def __init__(self, item: WireType) -> None:
        self.name = f"OPTION[{item.name}]"
        self.item = item

    def check(self, value: Any) -> None:
        if value is not None:
            self.item.check(value)

    def read(self, buf: bytes, offset: int) -> tuple[Any, int]:
        if offset >= len(buf):
            raise _short(f"{self.name} count", 1, offset, buf)
        count = buf[offset]
        if count == 0:
            return None, offset + 1
        if count != 1:
            raise ProtocolError(f"{self.name} at offset {offset} has count {count}, expected 0 or 1")
        return self.item.read(buf, offset + 1)

    def write(self, value: Any, out: bytearray) -> None:
        if value is None:
            out.append(0)
        else:
            out.append(1)
            self.item.write(value, out)


U8 = UInt("U8", 1, "B")
U16 = UInt("U16", 2, "H")
U24 = UInt("U24", 3, None)
U32 = UInt("U32", 4, "I")
U64 = UInt("U64", 8, "Q")
BOOL = Bool()
F32 = Float32()
U256 = FixedBytes("U256", 32)
PUBKEY = FixedBytes("PUBKEY", 32)
SIGNATURE = FixedBytes("SIGNATURE", 64)
MAC = FixedBytes("MAC", 16)
STR0_255 = Str()
B0_32 = VarBytes("B0_32", 1, 32)
B0_255 = VarBytes("B0_255", 1, 255)
B0_64K = VarBytes("B0_64K", 2, 0xFFFF)
B0_16M = VarBytes("B0_16M", 3, 0xFFFFFF)


def SEQ0_255(item: WireType) -> Seq:  # noqa: N802 -- named as the spec's type
    """SEQ0_255[item]: at most 255 elements behind a U8 count."""
    return Seq("SEQ0_255", 1, 255, item)


def SEQ0_64K(item: WireType) -> Seq:  # noqa: N802 -- named as the spec's type
    """SEQ0_64K[item]: at most 65535 elements behind a U16 count."""
    return Seq("SEQ0_64K", 2, 0xFFFF, item)


def OPTION(item: WireType) -> Option:  # noqa: N802 -- named as the spec's type
    """OPTION[item]: absent (None) or one element."""
    return Option(item)


def u256_to_int(value: bytes) -> int:
    """A U256 target as an integer (targets are little-endian on the wire)."""
    return int.from_bytes(value, "little")


def int_to_u256(value: int) -> bytes:
    """An integer target as U256 wire bytes (little-endian)."""
    return value.to_bytes(32, "little")
