"""TLV fields appended to core messages by extensions (PROTOCOL.md §1, §3.5).

A TLV is ``extension_type`` U16, ``field_type`` U8, ``length`` U16, then the
value.  The spec's example prints the header big-endian; SRI encodes it
little-endian, and interoperating with SRI is what matters, so we use LE.

Extension 0x0002 (worker-specific hashrate tracking) appends one TLV,
``(0x0002, 0x01)``, to SubmitSharesExtended: the worker's ``user_identity``
as UTF-8, at most 32 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from sv2proxy.codec.types import WireType
from sv2proxy.errors import ProtocolError

EXTENSION_WORKER_HASHRATE_TRACKING = 0x0002
TLV_FIELD_USER_IDENTITY = 0x01
MAX_WORKER_NAME_BYTES = 32

_TLV_HEADER = struct.Struct("<HBH")
TLV_HEADER_SIZE = _TLV_HEADER.size


@dataclass(frozen=True, slots=True)
class Tlv:
    """One type-length-value field."""

    extension_type: int
    field_type: int
    value: bytes


def _check_known(tlv: Tlv) -> None:
    if (tlv.extension_type, tlv.field_type) == (EXTENSION_WORKER_HASHRATE_TRACKING, TLV_FIELD_USER_IDENTITY):
        if len(tlv.value) > MAX_WORKER_NAME_BYTES:
            raise ProtocolError(
                f"worker name TLV holds at most {MAX_WORKER_NAME_BYTES} bytes, got {len(tlv.value)}"
            )
        try:
            tlv.value.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("worker name TLV is not valid UTF-8") from None


class TlvList(WireType):
    """The TLVs that end a payload: zero or more, consuming every remaining byte."""

    name = "TLV_LIST"

    def check(self, value: Any) -> None:
        if not isinstance(value, tuple):
            raise ProtocolError(f"TLV list expects a tuple, got {type(value).__name__}")
        for tlv in value:
            if not isinstance(tlv, Tlv):
                raise ProtocolError(f"TLV list holds Tlv values, got {type(tlv).__name__}")
            if not (
                isinstance(tlv.extension_type, int)
                and isinstance(tlv.field_type, int)
                and isinstance(tlv.value, bytes)
            ):
                raise ProtocolError("a Tlv holds int extension_type and field_type, bytes value")
            if not (0 <= tlv.extension_type <= 0xFFFF and 0 <= tlv.field_type <= 0xFF):
                raise ProtocolError(f"TLV type ({tlv.extension_type}, {tlv.field_type}) out of range")
            if len(tlv.value) > 0xFFFF:
                raise ProtocolError(f"TLV value holds at most 65535 bytes, got {len(tlv.value)}")
            _check_known(tlv)

    def read(self, buf: bytes, offset: int) -> tuple[tuple[Tlv, ...], int]:
        tlvs = []
        end = len(buf)
        while offset < end:
            if offset + TLV_HEADER_SIZE > end:
                raise ProtocolError(
                    f"TLV header at offset {offset} needs {TLV_HEADER_SIZE} bytes, only {end - offset} left"
                )
            extension_type, field_type, length = _TLV_HEADER.unpack_from(buf, offset)
            start = offset + TLV_HEADER_SIZE
            if start + length > end:
                raise ProtocolError(
                    f"TLV ({extension_type:#06x}, {field_type:#04x}) at offset {offset} declares "
                    f"{length} bytes, only {end - start} left"
                )
            tlv = Tlv(extension_type, field_type, bytes(buf[start : start + length]))
            _check_known(tlv)
            tlvs.append(tlv)
            offset = start + length
        return tuple(tlvs), offset

    def write(self, value: Any, out: bytearray) -> None:
        self.check(value)
        for tlv in value:
            out += _TLV_HEADER.pack(tlv.extension_type, tlv.field_type, len(tlv.value))
            out += tlv.value


TLV_LIST = TlvList()


def worker_name_tlv(name: str) -> Tlv:
    """The extension 0x0002 TLV carrying ``name``; ProtocolError if over 32 bytes."""
    try:
        value = name.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates have no UTF-8 form
        raise ProtocolError("worker name cannot be encoded as UTF-8") from None
    tlv = Tlv(EXTENSION_WORKER_HASHRATE_TRACKING, TLV_FIELD_USER_IDENTITY, value)
    _check_known(tlv)
    return tlv


def find_tlv(tlvs: tuple[Tlv, ...], extension_type: int, field_type: int) -> bytes | None:
    """The value of the first TLV of that type, or None."""
    for tlv in tlvs:
        if tlv.extension_type == extension_type and tlv.field_type == field_type:
            return tlv.value
    return None
