"""The Stratum V1 JSON-RPC codec, sans-IO: lines in, typed values out (PROTOCOL.md §8).

- :mod:`.constants`: error codes, the line limit, version-rolling masks, method names
- :mod:`.lines`: :class:`LineBuffer`, newline framing with a length limit
- :mod:`.fields`: hex fields, the word-swapped prevhash, difficulty numbers
- :mod:`.messages`: :func:`parse_message`, the typed requests and notifications
- :mod:`.encode`: one function per line we send, server and client side

No reactor, no clock, no logging: the Protocols in server/ and upstream/ own the I/O.
"""

from sv2proxy.sv1.constants import (
    BIP320_MASK,
    ERROR_DUPLICATE,
    ERROR_JOB_NOT_FOUND,
    ERROR_LOW_DIFFICULTY,
    ERROR_MESSAGES,
    ERROR_NOT_SUBSCRIBED,
    ERROR_OTHER,
    ERROR_UNAUTHORIZED,
    MAX_EXTRANONCE2_SIZE,
    MAX_LINE_LENGTH,
    VERSION_ROLLING_MASK,
)
from sv2proxy.sv1.encode import (
    authorize_request,
    configure_request,
    configure_result,
    error,
    extranonce_subscribe_request,
    notify,
    reconnect,
    result,
    set_difficulty,
    set_extranonce,
    set_version_mask,
    submit_request,
    subscribe_request,
    subscribe_result,
    suggest_difficulty_request,
)
from sv2proxy.sv1.fields import prevhash_from_sv1, prevhash_to_sv1
from sv2proxy.sv1.lines import LineBuffer, LineTooLong
from sv2proxy.sv1.messages import (
    Authorize,
    ClientRequest,
    Configure,
    ExtranonceSubscribe,
    Notification,
    Notify,
    Reconnect,
    Request,
    RequestId,
    Response,
    ServerNotification,
    SetDifficulty,
    SetExtranonce,
    SetVersionMask,
    Submit,
    Subscribe,
    SuggestDifficulty,
    Sv1Error,
    negotiate_version_mask,
    parse_configure_result,
    parse_error,
    parse_message,
    parse_notification,
    parse_request,
    parse_subscribe_result,
)

__all__ = [
    # constants
    "BIP320_MASK",
    "ERROR_DUPLICATE",
    "ERROR_JOB_NOT_FOUND",
    "ERROR_LOW_DIFFICULTY",
    "ERROR_MESSAGES",
    "ERROR_NOT_SUBSCRIBED",
    "ERROR_OTHER",
    "ERROR_UNAUTHORIZED",
    "MAX_EXTRANONCE2_SIZE",
    "MAX_LINE_LENGTH",
    "VERSION_ROLLING_MASK",
    # errors and framing
    "Sv1Error",
    "LineTooLong",
    "LineBuffer",
    # generic messages
    "RequestId",
    "Request",
    "Notification",
    "Response",
    "parse_message",
    "parse_error",
    # client -> server
    "ClientRequest",
    "Subscribe",
    "Authorize",
    "Configure",
    "ExtranonceSubscribe",
    "SuggestDifficulty",
    "Submit",
    "parse_request",
    "negotiate_version_mask",
    # server -> client
    "ServerNotification",
    "Notify",
    "SetDifficulty",
    "SetExtranonce",
    "SetVersionMask",
    "Reconnect",
    "parse_notification",
    "parse_subscribe_result",
    "parse_configure_result",
    # fields
    "prevhash_to_sv1",
    "prevhash_from_sv1",
    # encoders, server side
    "result",
    "error",
    "subscribe_result",
    "configure_result",
    "notify",
    "set_difficulty",
    "set_extranonce",
    "set_version_mask",
    "reconnect",
    # encoders, client side
    "subscribe_request",
    "authorize_request",
    "configure_request",
    "extranonce_subscribe_request",
    "suggest_difficulty_request",
    "submit_request",
]
