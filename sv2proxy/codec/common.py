"""Common messages (PROTOCOL.md §3.1, SPEC 03 §3.6): connection setup and moves."""

from typing import Annotated

from sv2proxy.codec.message import Message, message
from sv2proxy.codec.types import STR0_255, U8, U16, U32


@message(0x00, channel_msg=False)
class SetupConnection(Message):
    """Client -> server, first message on every connection."""

    protocol: Annotated[int, U8]  # 0 Mining, 1 Job Declaration, 2 Template Distribution
    min_version: Annotated[int, U16]
    max_version: Annotated[int, U16]
    flags: Annotated[int, U32]
    endpoint_host: Annotated[str, STR0_255]
    endpoint_port: Annotated[int, U16]
    vendor: Annotated[str, STR0_255]
    hardware_version: Annotated[str, STR0_255]
    firmware: Annotated[str, STR0_255]
    device_id: Annotated[str, STR0_255]


@message(0x01, channel_msg=False)
class SetupConnectionSuccess(Message):
    used_version: Annotated[int, U16]
    flags: Annotated[int, U32]


@message(0x02, channel_msg=False)
class SetupConnectionError(Message):
    """``flags``: the requested flags the server does not support (0 = other reason)."""

    flags: Annotated[int, U32]
    error_code: Annotated[str, STR0_255]


@message(0x03, channel_msg=True)
class ChannelEndpointChanged(Message):
    channel_id: Annotated[int, U32]


@message(0x04, channel_msg=False)
class Reconnect(Message):
    """Server -> client: reconnect elsewhere (empty host / port 0 = same as now)."""

    new_host: Annotated[str, STR0_255]
    new_port: Annotated[int, U16]
