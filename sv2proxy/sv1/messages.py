"""Stratum V1 messages: JSON-RPC lines parsed into typed values (PROTOCOL.md §8).

Two steps, so each can fail with the right answer: :func:`parse_message`
turns one line into a generic :class:`Request`, :class:`Notification` or
:class:`Response`; :func:`parse_request` (server side) and
:func:`parse_notification` (client side) turn those into the typed messages.
Everything a peer can get wrong raises :class:`Sv1Error`, which carries what
the JSON-RPC error reply needs; nothing else escapes.

Known parameters are checked strictly; trailing extra parameters are ignored,
because firmwares append their own (a host and port after
``mining.subscribe``'s session id, for one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

from sv2proxy.errors import ProtocolError
from sv2proxy.sv1.constants import (
    ERROR_OTHER,
    ERROR_UNAUTHORIZED,
    EXTENSION_VERSION_ROLLING,
    MAX_EXTRANONCE2_SIZE,
    METHOD_AUTHORIZE,
    METHOD_CONFIGURE,
    METHOD_EXTRANONCE_SUBSCRIBE,
    METHOD_NOTIFY,
    METHOD_RECONNECT,
    METHOD_SET_DIFFICULTY,
    METHOD_SET_EXTRANONCE,
    METHOD_SET_VERSION_MASK,
    METHOD_SUBMIT,
    METHOD_SUBSCRIBE,
    METHOD_SUGGEST_DIFFICULTY,
    VERSION_ROLLING_MASK,
    VERSION_ROLLING_MASK_PARAM,
    VERSION_ROLLING_MIN_BIT_COUNT_PARAM,
)
from sv2proxy.sv1.fields import PREVHASH_SIZE, difficulty_value, hex_bytes, hex_u32, prevhash_from_sv1, show

#: A JSON-RPC id as we accept it: miners use integers, some proxies strings.
RequestId = int | str

_T = TypeVar("_T")

#: BIP310 "version-rolling.mask" when the miner leaves it out: every bit.
DEFAULT_REQUESTED_MASK = 0xFFFFFFFF

# C0 controls and DEL: a worker's name is logged, shown and stored, and PostgreSQL's text cannot
# hold NUL at all.
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class Sv1Error(ProtocolError):
    """Something a peer sent that is answered with a JSON-RPC error, not by closing.

    ``request_id`` is the id of the request the error answers, or None when the
    line was not a usable request at all.  ``error_code`` (the SV2 error
    string of :class:`ProtocolError`) stays None: SV1 answers with ``code``, so
    a protocol catches Sv1Error before ProtocolError.
    """

    def __init__(self, code: int, message: str, request_id: RequestId | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


# Generic JSON-RPC messages ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """A method call with an id: the sender waits for a :class:`Response` with that id.

    ``params`` holds the JSON values as decoded (lists and dicts stay lists and dicts).
    """

    id: RequestId
    method: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Notification:
    """A method call with a null or absent id: nothing answers it (``mining.notify`` and co)."""

    method: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Response:
    """The answer to a request; ``error`` is None on success.

    The id may be None: some pools answer a request they could not parse that way.
    """

    id: RequestId | None
    result: Any = None
    error: Any = None


def parse_message(line: bytes) -> Request | Response | Notification:
    """One line (without its newline) as a generic JSON-RPC message.

    Strict JSON: NaN and Infinity are refused, as is anything but UTF-8.
    """
    try:
        # RecursionError: json recurses once per nesting level, and "[[[[..." is cheap to send.
        decoded = json.loads(bytes(line).decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise Sv1Error(ERROR_OTHER, "a Stratum V1 line must be one JSON object") from None
    if not isinstance(decoded, dict):
        raise Sv1Error(ERROR_OTHER, "a Stratum V1 message must be a JSON object")
    raw_id = decoded.get("id")
    method = decoded.get("method")
    if method is not None:
        request_id = _message_id(raw_id)
        if not isinstance(method, str):
            raise Sv1Error(ERROR_OTHER, f"a method name must be a string, got {show(method)}", request_id)
        params = decoded.get("params")
        # An absent or null params is read as no params: some miners omit it for methods that take none.
        if params is None:
            params = []
        if not isinstance(params, list):
            raise Sv1Error(ERROR_OTHER, f"{show(method)}: params must be a list", request_id)
        if request_id is None:
            return Notification(method, tuple(params))
        return Request(request_id, method, tuple(params))
    if "result" in decoded or "error" in decoded:
        return Response(_message_id(raw_id), decoded.get("result"), decoded.get("error"))
    raise Sv1Error(ERROR_OTHER, "a message needs a method, a result or an error", _id_or_none(raw_id))


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _message_id(raw: object) -> RequestId | None:
    """The id as sent; bools and floats are refused since they could not be echoed as sent."""
    if raw is None or (isinstance(raw, int | str) and not isinstance(raw, bool)):
        return raw
    raise Sv1Error(ERROR_OTHER, f"an id must be an integer, a string or null, got {show(raw)}")


def _id_or_none(raw: object) -> RequestId | None:
    try:
        return _message_id(raw)
    except Sv1Error:
        return None


# Client -> server requests ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscribe:
    """``mining.subscribe``: the first request; ``session_id`` asks to resume a session."""

    user_agent: str | None = None
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class Authorize:
    """``mining.authorize``: names the worker that later submits carry."""

    username: str
    password: str = ""


@dataclass(frozen=True, slots=True)
class Configure:
    """``mining.configure`` (BIP310): extensions asked for, with their parameters.

    ``parameters`` is the JSON object as sent, so unknown extensions'
    parameters survive; the ones we act on are checked when parsing.
    """

    extensions: tuple[str, ...]
    parameters: dict[str, Any] = field(default_factory=dict)

    def version_rolling(self) -> tuple[int, int] | None:
        """(requested mask, min-bit-count) if version rolling was asked for, else None."""
        try:
            return _version_rolling_request(self.extensions, self.parameters)
        except ValueError as e:
            raise Sv1Error(ERROR_OTHER, f"{METHOD_CONFIGURE}: {e}") from None


@dataclass(frozen=True, slots=True)
class ExtranonceSubscribe:
    """``mining.extranonce.subscribe``: the miner accepts ``mining.set_extranonce``."""


@dataclass(frozen=True, slots=True)
class SuggestDifficulty:
    """``mining.suggest_difficulty``: the difficulty the miner would like (may be below 1)."""

    difficulty: float


@dataclass(frozen=True, slots=True)
class Submit:
    """``mining.submit``: a share; 32-bit fields as integers, extranonce2 as raw bytes.

    ``version_bits`` is None when the miner does not roll the version.
    """

    worker: str
    job_id: str
    extranonce2: bytes
    ntime: int
    nonce: int
    version_bits: int | None = None


ClientRequest = Subscribe | Authorize | Configure | ExtranonceSubscribe | SuggestDifficulty | Submit


def parse_request(req: Request) -> ClientRequest:
    """The typed client request; an unknown method or bad params raise Sv1Error with ``req.id``."""
    parser = _REQUEST_PARSERS.get(req.method)
    if parser is None:
        raise Sv1Error(ERROR_OTHER, f"unknown method {show(req.method)}", req.id)
    try:
        return parser(req.params)
    except _BadWorkerName as e:
        raise Sv1Error(ERROR_UNAUTHORIZED, f"{req.method}: {e}", req.id) from None
    except ValueError as e:
        raise Sv1Error(ERROR_OTHER, f"{req.method}: {e}", req.id) from None


def _parse_subscribe(params: tuple[Any, ...]) -> Subscribe:
    user_agent = _optional_text(params[0], "user agent") if len(params) > 0 else None
    session_id = _optional_text(params[1], "session id") if len(params) > 1 else None
    return Subscribe(user_agent, session_id)


def _parse_authorize(params: tuple[Any, ...]) -> Authorize:
    _require(params, 1, "[username, password]")
    username = _worker_name(params[0], "username")
    password = _optional_text(params[1], "password") if len(params) > 1 else None
    return Authorize(username, password or "")


def _parse_configure(params: tuple[Any, ...]) -> Configure:
    _require(params, 1, "[[extension, ...], {parameters}]")
    if not isinstance(params[0], list):
        raise ValueError(f"the extensions must be a list, got {show(params[0])}")
    extensions = tuple(_text(name, "extension name") for name in params[0])
    parameters = params[1] if len(params) > 1 and params[1] is not None else {}
    if not isinstance(parameters, dict):
        raise ValueError(f"the parameters must be an object, got {show(parameters)}")
    _version_rolling_request(extensions, parameters)
    return Configure(extensions, dict(parameters))


def _version_rolling_request(extensions: tuple[str, ...], parameters: dict[str, Any]) -> tuple[int, int] | None:
    if EXTENSION_VERSION_ROLLING not in extensions:
        return None
    raw_mask = parameters.get(VERSION_ROLLING_MASK_PARAM)
    mask = DEFAULT_REQUESTED_MASK if raw_mask is None else hex_u32(raw_mask)
    min_bit_count = parameters.get(VERSION_ROLLING_MIN_BIT_COUNT_PARAM)
    if min_bit_count is None:
        min_bit_count = 0
    if isinstance(min_bit_count, bool) or not isinstance(min_bit_count, int) or not 0 <= min_bit_count <= 32:
        raise ValueError(f"{VERSION_ROLLING_MIN_BIT_COUNT_PARAM} must be 0 to 32, got {show(min_bit_count)}")
    return mask, min_bit_count


def _parse_extranonce_subscribe(params: tuple[Any, ...]) -> ExtranonceSubscribe:
    return ExtranonceSubscribe()


def _parse_suggest_difficulty(params: tuple[Any, ...]) -> SuggestDifficulty:
    _require(params, 1, "[difficulty]")
    return SuggestDifficulty(difficulty_value(params[0]))


def _parse_submit(params: tuple[Any, ...]) -> Submit:
    _require(params, 5, "[worker, job_id, extranonce2, ntime, nonce, (version_bits)]")
    version_bits = params[5] if len(params) > 5 else None
    return Submit(
        worker=_worker_name(params[0], "worker"),
        job_id=_text(params[1], "job_id"),
        extranonce2=_field(hex_bytes, params[2], "extranonce2"),
        ntime=_field(hex_u32, params[3], "ntime"),
        nonce=_field(hex_u32, params[4], "nonce"),
        version_bits=None if version_bits is None else _field(hex_u32, version_bits, "version_bits"),
    )


_REQUEST_PARSERS: dict[str, Callable[[tuple[Any, ...]], ClientRequest]] = {
    METHOD_SUBSCRIBE: _parse_subscribe,
    METHOD_AUTHORIZE: _parse_authorize,
    METHOD_CONFIGURE: _parse_configure,
    METHOD_EXTRANONCE_SUBSCRIBE: _parse_extranonce_subscribe,
    METHOD_SUGGEST_DIFFICULTY: _parse_suggest_difficulty,
    METHOD_SUBMIT: _parse_submit,
}


def negotiate_version_mask(requested: int, min_bit_count: int, allowed: int = VERSION_ROLLING_MASK) -> int | None:
    """The mask to grant (``requested & allowed``), or None if it has fewer than min_bit_count bits."""
    mask = requested & allowed
    return mask if mask.bit_count() >= min_bit_count else None


# Server -> client notifications -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notify:
    """``mining.notify``: a job, with SV1's text fields decoded.

    ``prev_hash`` is in SV2 ``SetNewPrevHash`` order (the word swap undone).
    """

    job_id: str
    prev_hash: bytes
    coinbase_prefix: bytes
    coinbase_suffix: bytes
    merkle_path: tuple[bytes, ...]
    version: int
    nbits: int
    ntime: int
    clean_jobs: bool


@dataclass(frozen=True, slots=True)
class SetDifficulty:
    """``mining.set_difficulty``: applies from the next job on."""

    difficulty: float


@dataclass(frozen=True, slots=True)
class SetExtranonce:
    """``mining.set_extranonce``: a new extranonce1 and extranonce2 size."""

    extranonce1: bytes
    extranonce2_size: int


@dataclass(frozen=True, slots=True)
class SetVersionMask:
    """``mining.set_version_mask``: the bits the miner may now roll."""

    mask: int


@dataclass(frozen=True, slots=True)
class Reconnect:
    """``client.reconnect``: None host or port means "the one you are connected to"."""

    host: str | None
    port: int | None
    wait_seconds: int = 0


ServerNotification = Notify | SetDifficulty | SetExtranonce | SetVersionMask | Reconnect


def parse_notification(n: Notification) -> ServerNotification:
    """The typed server notification; unknown methods and bad params raise Sv1Error."""
    parser = _NOTIFICATION_PARSERS.get(n.method)
    if parser is None:
        raise Sv1Error(ERROR_OTHER, f"unknown method {show(n.method)}")
    try:
        return parser(n.params)
    except ValueError as e:
        raise Sv1Error(ERROR_OTHER, f"{n.method}: {e}") from None


def _parse_notify(params: tuple[Any, ...]) -> Notify:
    _require(params, 9, "[job_id, prevhash, coinb1, coinb2, merkle_branch, version, nbits, ntime, clean_jobs]")
    if not isinstance(params[4], list):
        raise ValueError(f"merkle_branch must be a list, got {show(params[4])}")
    merkle_path = tuple(_field(hex_bytes, branch, "merkle branch") for branch in params[4])
    if any(len(branch) != PREVHASH_SIZE for branch in merkle_path):
        raise ValueError(f"a merkle branch is {PREVHASH_SIZE} bytes")
    if not isinstance(params[8], bool):
        raise ValueError(f"clean_jobs must be true or false, got {show(params[8])}")
    return Notify(
        job_id=_text(params[0], "job_id"),
        prev_hash=_field(prevhash_from_sv1, _text(params[1], "prevhash"), "prevhash"),
        coinbase_prefix=_field(hex_bytes, params[2], "coinb1"),
        coinbase_suffix=_field(hex_bytes, params[3], "coinb2"),
        merkle_path=merkle_path,
        version=_field(hex_u32, params[5], "version"),
        nbits=_field(hex_u32, params[6], "nbits"),
        ntime=_field(hex_u32, params[7], "ntime"),
        clean_jobs=params[8],
    )


def _parse_set_difficulty(params: tuple[Any, ...]) -> SetDifficulty:
    _require(params, 1, "[difficulty]")
    return SetDifficulty(difficulty_value(params[0]))


def _parse_set_extranonce(params: tuple[Any, ...]) -> SetExtranonce:
    _require(params, 2, "[extranonce1, extranonce2_size]")
    return SetExtranonce(_field(hex_bytes, params[0], "extranonce1"), _extranonce2_size(params[1]))


def _parse_set_version_mask(params: tuple[Any, ...]) -> SetVersionMask:
    _require(params, 1, "[mask]")
    return SetVersionMask(_field(hex_u32, params[0], "mask"))


def _parse_reconnect(params: tuple[Any, ...]) -> Reconnect:
    host = _optional_text(params[0], "host") if len(params) > 0 else None
    port = _optional_int(params[1], "port", 0xFFFF) if len(params) > 1 else None
    wait = _optional_int(params[2], "wait", None) if len(params) > 2 else None
    # An empty host is sent by some pools to mean "same host", like null.
    return Reconnect(host or None, port, wait or 0)


_NOTIFICATION_PARSERS: dict[str, Callable[[tuple[Any, ...]], ServerNotification]] = {
    METHOD_NOTIFY: _parse_notify,
    METHOD_SET_DIFFICULTY: _parse_set_difficulty,
    METHOD_SET_EXTRANONCE: _parse_set_extranonce,
    METHOD_SET_VERSION_MASK: _parse_set_version_mask,
    METHOD_RECONNECT: _parse_reconnect,
}


# Results of the client's requests ---------------------------------------------------------


def parse_subscribe_result(result: Any) -> tuple[bytes, int]:
    """(extranonce1, extranonce2_size) from ``[subscriptions, extranonce1_hex, size]``.

    The subscriptions are not looked at: pools disagree on their shape and nothing uses them.
    """
    try:
        if not isinstance(result, list) or len(result) < 3:
            raise ValueError(f"expected [subscriptions, extranonce1, extranonce2_size], got {show(result)}")
        return _field(hex_bytes, result[1], "extranonce1"), _extranonce2_size(result[2])
    except ValueError as e:
        raise Sv1Error(ERROR_OTHER, f"{METHOD_SUBSCRIBE} result: {e}") from None


def parse_configure_result(result: Any) -> int | None:
    """The version-rolling mask the server granted, or None if it did not."""
    try:
        if not isinstance(result, dict):
            raise ValueError(f"expected an object, got {show(result)}")
        granted = result.get(EXTENSION_VERSION_ROLLING, False)
        if not isinstance(granted, bool):
            raise ValueError(f"{EXTENSION_VERSION_ROLLING} must be true or false, got {show(granted)}")
        if not granted:
            return None
        return _field(hex_u32, result.get(VERSION_ROLLING_MASK_PARAM), VERSION_ROLLING_MASK_PARAM)
    except ValueError as e:
        raise Sv1Error(ERROR_OTHER, f"{METHOD_CONFIGURE} result: {e}") from None


def parse_error(error: Any) -> tuple[int, str] | None:
    """A response's error as (code, message), or None for a null error.

    Never raises: pools send ``[code, message, traceback]``, ``{"code", "message"}``
    or a bare string, and the answer is only ever shown or counted.
    """
    if error is None:
        return None
    code: Any = ERROR_OTHER
    message: Any = error
    if isinstance(error, list) and error:
        code, message = error[0], error[1] if len(error) > 1 else ""
    elif isinstance(error, dict):
        code, message = error.get("code", ERROR_OTHER), error.get("message", "")
    if isinstance(code, bool) or not isinstance(code, int):
        code = ERROR_OTHER
    if not isinstance(message, str):
        message = show(message, 200)
    return code, message


# Parameter helpers (they raise ValueError; the callers add the method and the id) --------


def _require(params: tuple[Any, ...], count: int, shape: str) -> None:
    if len(params) < count:
        raise ValueError(f"expected params {shape}, got {len(params)} of them")


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {show(value)}")
    try:
        # JSON escapes can carry lone surrogates, which no later UTF-8 encode (SV2 strings) accepts.
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid Unicode") from None
    return value


class _BadWorkerName(ValueError):
    """A worker's name no pool would take: answered as unauthorized (24), not as malformed (20)."""


def _worker_name(value: Any, name: str) -> str:
    text = _text(value, name)
    if _CONTROL.search(text):
        raise _BadWorkerName(f"the {name} must not contain control characters, got {show(text)}")
    return text


def _optional_text(value: Any, name: str) -> str | None:
    return None if value is None else _text(value, name)


def _optional_int(value: Any, name: str, maximum: int | None) -> int | None:
    """A non-negative integer, sent as a number or as decimal text (both are seen for ports)."""
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdecimal():
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise ValueError(f"{name} must be an integer, got {show(value)}")
    if number < 0 or (maximum is not None and number > maximum):
        raise ValueError(f"{name} is out of range: {show(value)}")
    return number


def _extranonce2_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_EXTRANONCE2_SIZE:
        raise ValueError(f"extranonce2_size must be 0 to {MAX_EXTRANONCE2_SIZE}, got {show(value)}")
    return value


def _field(parse: Callable[[Any], _T], value: Any, name: str) -> _T:
    """``parse(value)``, with the field's name in the error."""
    try:
        return parse(value)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
