"""Extension 0x0001, Extensions Negotiation (PROTOCOL.md §3.5).

These frames carry ``extension_type = 0x0001``; ``request_id`` is a U16 here.
"""

from typing import Annotated

from sv2proxy.codec.message import Message, message
from sv2proxy.codec.types import SEQ0_64K, U16

EXTENSION_NEGOTIATION = 0x0001


@message(0x00, channel_msg=False, extension_type=EXTENSION_NEGOTIATION)
class RequestExtensions(Message):
    """Client -> server, right after SetupConnection.Success."""

    request_id: Annotated[int, U16]
    requested_extensions: Annotated[tuple[int, ...], SEQ0_64K(U16)]


@message(0x01, channel_msg=False, extension_type=EXTENSION_NEGOTIATION)
class RequestExtensionsSuccess(Message):
    request_id: Annotated[int, U16]
    supported_extensions: Annotated[tuple[int, ...], SEQ0_64K(U16)]


@message(0x02, channel_msg=False, extension_type=EXTENSION_NEGOTIATION)
class RequestExtensionsError(Message):
    request_id: Annotated[int, U16]
    unsupported_extensions: Annotated[tuple[int, ...], SEQ0_64K(U16)]
    required_extensions: Annotated[tuple[int, ...], SEQ0_64K(U16)]
