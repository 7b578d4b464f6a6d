"""Which class decodes a frame: the registry keyed by (extension_type, msg_type).

The channel_msg bit is not part of the key: we send it exactly as the spec's
table says and accept either value, because peers of different spec
versions disagree on it for a few messages (PROTOCOL.md §1, §10).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType, ModuleType

from sv2proxy.codec import common, extensions, job_declaration, mining, template_distribution
from sv2proxy.codec.framing import Frame, FrameDecoder
from sv2proxy.codec.message import Message
from sv2proxy.errors import ProtocolError

PROTOCOL_MODULES = (common, mining, job_declaration, template_distribution, extensions)


def _collect(modules: Iterable[ModuleType]) -> dict[tuple[int, int], type[Message]]:
    registry: dict[tuple[int, int], type[Message]] = {}
    for module in modules:
        for obj in vars(module).values():
            if not (isinstance(obj, type) and issubclass(obj, Message) and "MSG_TYPE" in vars(obj)):
                continue
            key = (obj.EXTENSION_TYPE, obj.MSG_TYPE)
            other = registry.setdefault(key, obj)
            if other is not obj:
                raise TypeError(f"{obj.__qualname__} and {other.__qualname__} share message key {key}")
    return registry


#: (extension_type, msg_type) -> message class, for every message we know.
MESSAGE_TYPES: Mapping[tuple[int, int], type[Message]] = MappingProxyType(_collect(PROTOCOL_MODULES))


def decode_message(extension_type: int, msg_type: int, payload: bytes) -> Message:
    """Decode one payload; ProtocolError for unknown types and malformed payloads.

    ``extension_type`` may still carry the channel_msg bit; it is ignored.
    """
    cls = MESSAGE_TYPES.get((extension_type & 0x7FFF, msg_type))
    if cls is None:
        raise ProtocolError(
            f"unknown message type {msg_type:#04x} for extension {extension_type & 0x7FFF:#06x}"
        )
    return cls.decode(payload)


def decode_frame(frame: Frame) -> Message:
    """Decode the message a :class:`Frame` carries."""
    return decode_message(frame.extension_type, frame.msg_type, frame.payload)


class MessageDecoder:
    """A byte stream in, decoded messages out: a FrameDecoder plus the registry.

    For plaintext links (tests, a Template Provider on a trusted socket); an
    encrypted link decrypts frames first and decodes each with
    :func:`decode_frame`.
    """

    __slots__ = ("_frames",)

    def __init__(self, max_payload: int = 0xFFFFFF) -> None:
        self._frames = FrameDecoder(max_payload)

    def feed(self, data: bytes) -> list[Message]:
        """Every message completed by ``data``, in order."""
        return [decode_frame(frame) for frame in self._frames.feed(data)]
