"""Stratum V2 frames (PROTOCOL.md §1, SPEC 03 §3.2).

A frame is a 6-byte header -- ``extension_type`` U16 LE, ``msg_type`` U8,
``msg_length`` U24 LE -- followed by ``msg_length`` payload bytes.  Bit 15 of
``extension_type`` is the ``channel_msg`` flag; it is not part of the
extension number.

:class:`FrameDecoder` turns a byte stream cut anywhere into whole frames; it
never allocates per byte and never keeps more than one partial frame.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from sv2proxy.errors import ProtocolError

FRAME_HEADER_SIZE = 6
CHANNEL_MSG_BIT = 0x8000
EXTENSION_TYPE_MASK = 0x7FFF
MAX_PAYLOAD_LENGTH = 0xFFFFFF  # U24

# extension_type U16 LE, msg_type U8, msg_length as U16 LE low + U8 high.
_HEADER = struct.Struct("<HBHB")


class Frame(NamedTuple):
    """One undecoded frame: who it is for (extension, type) and its payload.

    A NamedTuple rather than a frozen dataclass: it is built once per frame on
    the receive path, where a frozen dataclass's ``__init__`` costs a quarter
    of an encrypted frame's budget (benchmarks/bench_noise.py).
    """

    extension_type: int  # without the channel_msg bit
    msg_type: int
    channel_msg: bool
    payload: bytes


def parse_header(header: bytes) -> tuple[int, int, int]:
    """``(raw extension_type, msg_type, msg_length)`` of a 6-byte header.

    The raw extension_type still carries the channel_msg bit.
    """
    if len(header) != FRAME_HEADER_SIZE:
        raise ProtocolError(f"a frame header is 6 bytes, got {len(header)}")
    ext, msg_type, low, high = _HEADER.unpack(header)
    return ext, msg_type, low | (high << 16)


def encode_header(extension_type: int, msg_type: int, msg_length: int, channel_msg: bool) -> bytes:
    """The 6-byte header; ``extension_type`` is given without the channel_msg bit."""
    if not 0 <= extension_type <= EXTENSION_TYPE_MASK:
        raise ProtocolError(f"extension_type {extension_type:#x} does not fit 15 bits")
    if not 0 <= msg_length <= MAX_PAYLOAD_LENGTH:
        raise ProtocolError(f"payload of {msg_length} bytes exceeds the U24 frame length")
    if channel_msg:
        extension_type |= CHANNEL_MSG_BIT
    return _HEADER.pack(extension_type, msg_type, msg_length & 0xFFFF, msg_length >> 16)


def encode_frame(extension_type: int, msg_type: int, payload: bytes, channel_msg: bool) -> bytes:
    """A whole frame: header then payload."""
    return encode_header(extension_type, msg_type, len(payload), channel_msg) + payload


class FrameDecoder:
    """Accumulates stream bytes and yields complete :class:`Frame` objects.

    ``max_payload`` bounds what a peer may make us buffer; a header announcing
    more raises :class:`ProtocolError` before any of that payload is read.
    """

    __slots__ = ("_buffer", "max_payload")

    def __init__(self, max_payload: int = MAX_PAYLOAD_LENGTH) -> None:
        self._buffer = bytearray()
        self.max_payload = max_payload

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a returned frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data`` and return every frame it completes, in order."""
        buf = self._buffer
        buf += data
        frames: list[Frame] = []
        offset = 0
        end = len(buf)
        unpack_from = _HEADER.unpack_from
        max_payload = self.max_payload
        while end - offset >= FRAME_HEADER_SIZE:
            ext, msg_type, low, high = unpack_from(buf, offset)
            length = low | (high << 16)
            if length > max_payload:
                raise ProtocolError(
                    f"frame of {length} bytes exceeds the limit of {max_payload} "
                    f"(extension_type {ext:#06x}, msg_type {msg_type:#04x})"
                )
            start = offset + FRAME_HEADER_SIZE
            stop = start + length
            if stop > end:
                break
            frames.append(
                Frame(ext & EXTENSION_TYPE_MASK, msg_type, bool(ext & CHANNEL_MSG_BIT), bytes(buf[start:stop]))
            )
            offset = stop
        if offset:
            del buf[:offset]
        return frames
