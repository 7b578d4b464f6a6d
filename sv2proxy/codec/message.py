"""The message base class and the compiler that gives each message its codec.

A message is declared once, as the spec's table reads::

    @message(0x1A, channel_msg=True)
    class SubmitSharesStandard(Message):
        channel_id: Annotated[int, U32]
        ...

:func:`message` makes it a frozen slotted dataclass and compiles its fields
into a reader and a writer.  Consecutive fixed-size fields become one
precompiled :class:`struct.Struct`, so a message made only of such fields
(SubmitSharesStandard, SetTarget, ...) decodes with a single ``unpack``.
"""

from __future__ import annotations

import dataclasses
import operator
import struct
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, dataclass_transform, get_type_hints

from sv2proxy.codec.framing import FRAME_HEADER_SIZE, encode_header
from sv2proxy.codec.types import U32, FixedBytes, Float32, WireType
from sv2proxy.errors import ProtocolError

M = TypeVar("M", bound="Message")


class Message:
    """Base of every Stratum V2 message.

    Class attributes (set by :func:`message`): ``EXTENSION_TYPE`` (without the
    channel_msg bit), ``MSG_TYPE``, ``CHANNEL_MSG`` (the bit we send; receivers
    accept either) and ``FIELDS``, the ``(name, WireType)`` pairs in wire order.
    """

    __slots__ = ()

    EXTENSION_TYPE: ClassVar[int]
    MSG_TYPE: ClassVar[int]
    CHANNEL_MSG: ClassVar[bool]
    FIELDS: ClassVar[tuple[tuple[str, WireType], ...]]
    _decode_payload: ClassVar[Callable[[bytes], Any]]
    _encode_payload: ClassVar[Callable[[Any], bytes]]
    #: For a message whose payload opens with ``channel_id`` U32: its other fields, as a tuple.
    _after_channel_id: ClassVar[Callable[[Any], tuple[Any, ...]] | None] = None

    @classmethod
    def decode(cls: type[M], payload: bytes) -> M:
        """The message encoded in ``payload``; ProtocolError if it is malformed."""
        result: M = cls._decode_payload(payload)
        return result

    def encode(self) -> bytes:
        """The payload bytes of this message (no frame header)."""
        return self._encode_payload(self)

    def to_frame(self) -> bytes:
        """This message as a whole plaintext frame: header, then payload."""
        payload = self._encode_payload(self)
        return encode_header(self.EXTENSION_TYPE, self.MSG_TYPE, len(payload), self.CHANNEL_MSG) + payload


@dataclass_transform(frozen_default=True)
def message(msg_type: int, *, channel_msg: bool, extension_type: int = 0) -> Callable[[type[M]], type[M]]:
    """Class decorator: a frozen slotted dataclass with a compiled codec."""

    def build(cls: type[M]) -> type[M]:
        cls = dataclasses.dataclass(frozen=True, slots=True)(cls)
        hints = get_type_hints(cls, include_extras=True)
        fields = tuple((f.name, _wire_type_of(cls, f.name, hints[f.name])) for f in dataclasses.fields(cls))
        cls.EXTENSION_TYPE = extension_type
        cls.MSG_TYPE = msg_type
        cls.CHANNEL_MSG = channel_msg
        cls.FIELDS = fields
        cls._decode_payload = staticmethod(_compile_decoder(cls, fields))  # type: ignore[assignment]
        cls._encode_payload = staticmethod(_compile_encoder(cls, fields))  # type: ignore[assignment]
        if len(fields) > 1 and fields[0] == ("channel_id", U32) and not any(_has_float(w) for _, w in fields):
            rest = operator.attrgetter(*(name for name, _ in fields[1:]))
            cls._after_channel_id = staticmethod(  # type: ignore[assignment]
                rest if len(fields) > 2 else lambda msg: (rest(msg),)
            )
        return cls

    return build


def _has_float(wire: WireType) -> bool:
    """Whether values of ``wire`` may be equal yet encode differently (0.0 and -0.0 as F32)."""
    if isinstance(wire, Float32):
        return True
    item = getattr(wire, "item", None)
    return isinstance(item, WireType) and _has_float(item)


def _wire_type_of(cls: type, name: str, hint: Any) -> WireType:
    for meta in getattr(hint, "__metadata__", ()):
        if isinstance(meta, WireType):
            return meta
    raise TypeError(f"{cls.__name__}.{name}: annotate as Annotated[<python type>, <WireType>], got {hint!r}")


# -- compilation -------------------------------------------------------------


class _StructRun:
    """Consecutive fixed-size fields read and written by one struct."""

    def __init__(self, names: list[str], types: list[WireType]) -> None:
        self.names = tuple(names)
        self.unpacker = struct.Struct("<" + "".join(t.unpack_code or "" for t in types))
        self.packer = struct.Struct("<" + "".join(t.pack_code or "" for t in types))
        self.size = self.unpacker.size
        # (position, converter) for values whose struct form is not the Python one.
        self.converters = tuple((i, t.from_wire) for i, t in enumerate(types) if t.from_wire is not None)
        # Fields struct would silently pad or truncate (``32s``) or coerce (``?``): check first.
        self.checked = tuple(
            (name, t)
            for name, t in zip(names, types, strict=True)
            if isinstance(t, FixedBytes) or t.from_wire is not None
        )
        self.types = tuple(types)


def _plan(fields: tuple[tuple[str, WireType], ...]) -> list[_StructRun | tuple[str, WireType]]:
    steps: list[_StructRun | tuple[str, WireType]] = []
    names: list[str] = []
    types: list[WireType] = []
    for name, wire in fields:
        if wire.unpack_code is not None:
            names.append(name)
            types.append(wire)
            continue
        if names:
            steps.append(_StructRun(names, types))
            names, types = [], []
        steps.append((name, wire))
    if names:
        steps.append(_StructRun(names, types))
    return steps


def _compile_decoder(cls: type, fields: tuple[tuple[str, WireType], ...]) -> Callable[[bytes], Any]:
    name = cls.__name__
    steps = _plan(fields)

    if len(steps) == 1 and isinstance(steps[0], _StructRun) and not steps[0].converters:
        # The hot path: the whole payload is one struct (SubmitSharesStandard & co).
        unpack = steps[0].unpacker.unpack
        size = steps[0].size

        def decode_fixed(payload: bytes) -> Any:
            try:
                return cls(*unpack(payload))
            except struct.error:
                raise ProtocolError(f"{name}: payload must be {size} bytes, got {len(payload)}") from None

        return decode_fixed

    readers: list[Callable[[bytes, int, list[Any]], int]] = []
    for step in steps:
        if isinstance(step, _StructRun):
            readers.append(_run_reader(name, step))
        else:
            readers.append(_field_reader(name, *step))

    def decode(payload: bytes) -> Any:
        values: list[Any] = []
        offset = 0
        for read in readers:
            offset = read(payload, offset, values)
        if offset != len(payload):
            raise ProtocolError(f"{name}: {len(payload) - offset} trailing bytes after the last field")
        return cls(*values)

    return decode


def _run_reader(msg_name: str, run: _StructRun) -> Callable[[bytes, int, list[Any]], int]:
    unpack_from = run.unpacker.unpack_from
    size = run.size
    converters = run.converters
    first = run.names[0]

    def read(buf: bytes, offset: int, values: list[Any]) -> int:
        if offset + size > len(buf):
            raise ProtocolError(
                f"{msg_name}.{first}: needs {size} bytes at offset {offset}, only {len(buf) - offset} left"
            )
        unpacked = unpack_from(buf, offset)
        if converters:
            converted = list(unpacked)
            for position, convert in converters:
                converted[position] = convert(converted[position])
            values.extend(converted)
        else:
            values.extend(unpacked)
        return offset + size

    return read


def _field_reader(msg_name: str, field: str, wire: WireType) -> Callable[[bytes, int, list[Any]], int]:
    wire_read = wire.read

    def read(buf: bytes, offset: int, values: list[Any]) -> int:
        try:
            value, offset = wire_read(buf, offset)
        except ProtocolError as e:
            raise ProtocolError(f"{msg_name}.{field}: {e}", e.error_code) from None
        values.append(value)
        return offset

    return read


def _compile_encoder(cls: type, fields: tuple[tuple[str, WireType], ...]) -> Callable[[Any], bytes]:
    name = cls.__name__
    steps = _plan(fields)
    writers: list[Callable[[Any, bytearray], None]] = []
    for step in steps:
        if isinstance(step, _StructRun):
            writers.append(_run_writer(name, step))
        else:
            writers.append(_field_writer(name, *step))

    if len(writers) == 1 and isinstance(steps[0], _StructRun) and not steps[0].checked:
        run = steps[0]
        pack = run.packer.pack
        getters = run.names

        def encode_fixed(msg: Any) -> bytes:
            try:
                return pack(*[getattr(msg, n) for n in getters])
            except (struct.error, OverflowError):  # OverflowError: an F32 beyond binary32
                _explain_run(name, run, msg)
                raise

        return encode_fixed

    def encode(msg: Any) -> bytes:
        out = bytearray()
        for write in writers:
            write(msg, out)
        return bytes(out)

    return encode


def _run_writer(msg_name: str, run: _StructRun) -> Callable[[Any, bytearray], None]:
    pack = run.packer.pack
    names = run.names
    checked = run.checked

    def write(msg: Any, out: bytearray) -> None:
        for field, wire in checked:
            try:
                wire.check(getattr(msg, field))
            except ProtocolError as e:
                raise ProtocolError(f"{msg_name}.{field}: {e}") from None
        try:
            out += pack(*[getattr(msg, n) for n in names])
        except (struct.error, OverflowError):  # OverflowError: an F32 beyond binary32
            _explain_run(msg_name, run, msg)
            raise

    return write


def _explain_run(msg_name: str, run: _StructRun, msg: Any) -> None:
    """Turn a struct.error into a ProtocolError naming the offending field."""
    for field, wire in zip(run.names, run.types, strict=True):
        try:
            wire.check(getattr(msg, field))
        except ProtocolError as e:
            raise ProtocolError(f"{msg_name}.{field}: {e}") from None
    raise ProtocolError(f"{msg_name}: fields do not fit their wire types")


def _field_writer(msg_name: str, field: str, wire: WireType) -> Callable[[Any, bytearray], None]:
    wire_write = wire.write

    def write(msg: Any, out: bytearray) -> None:
        try:
            wire_write(getattr(msg, field), out)
        except ProtocolError as e:
            raise ProtocolError(f"{msg_name}.{field}: {e}") from None

    return write


# channel_id U32 LE, the first payload field of a channel message (SPEC 03 §3.2).
_CHANNEL_ID = struct.Struct("<I")
_CHANNEL_ID_END = FRAME_HEADER_SIZE + _CHANNEL_ID.size


class FrameEncoder:
    """Encodes messages into frames, a fan-out's repeated message only once.

    A message that opens with ``channel_id`` U32 and equals the previous one of its type in
    every other field has that one's frame with bytes 6..10 (the channel id, U32 LE) replaced:
    the same bytes :meth:`Message.to_frame` gives, without encoding the rest again.  One job
    or SetNewPrevHash sent to a thousand groups is encoded once.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        # Message type -> (its fields after channel_id, its frame), for the last one encoded.
        self._last: dict[type[Message], tuple[tuple[Any, ...], bytes]] = {}

    def frame(self, message: Message) -> bytes:
        """``message.to_frame()``."""
        rest = message._after_channel_id
        if rest is None:
            return message.to_frame()
        cls = type(message)
        fields = rest(message)
        last = self._last.get(cls)
        if last is not None and last[0] == fields:
            frame = last[1]
            try:
                channel_id = _CHANNEL_ID.pack(message.channel_id)  # type: ignore[attr-defined]
            except struct.error:
                return message.to_frame()  # which says what is wrong with the channel id
            return b"".join((frame[:FRAME_HEADER_SIZE], channel_id, frame[_CHANNEL_ID_END:]))
        frame = message.to_frame()
        self._last[cls] = (fields, frame)
        return frame


__all__ = ["FrameEncoder", "Message", "message"]
