"""Bitcoin Core's JSON-RPC server, the HTTP side: auth, envelopes, errors (httprpc.cpp, request.cpp).

A ``twisted.web`` resource that answers like ``bitcoind``:

- only POST (``405 JSONRPC server handles only POST requests`` otherwise), at ``/`` and
  ``/wallet/...``;
- HTTP basic auth against one ``user:password`` (``rpcuser``/``rpcpassword``, or
  ``__cookie__:<hex>`` from the cookie file); a missing or wrong one is a 401 with
  ``WWW-Authenticate: Basic realm="jsonrpc"``, a wrong one after a 250 ms pause as Core does
  to slow brute force;
- JSON-RPC 1.0 envelopes ``{"result": ..., "error": ..., "id": ...}`` whose errors also set
  the HTTP status (500; 404 for -32601; 400 for -32600), JSON-RPC 2.0 ones (``"jsonrpc":
  "2.0"``: HTTP 200, the null member omitted, notifications answered with 204), batches;
- parameters by position or by name, with Core's messages for unknown names, wrong types
  and wrong counts.

Methods are :class:`Method` values supplied by the node; a handler may return a Deferred or
coroutine (``getblocktemplate`` long polling), which is cancelled if the client goes away.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from twisted.internet.defer import CancelledError, ensureDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import resource, server
from twisted.web.server import Request

log = Logger()

# rpc/protocol.h
RPC_MISC_ERROR = -1
RPC_TYPE_ERROR = -3
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_INVALID_PARAMETER = -8
RPC_CLIENT_NOT_CONNECTED = -9
RPC_DESERIALIZATION_ERROR = -22
RPC_VERIFY_ERROR = -25  # RPC_TRANSACTION_ERROR
RPC_VERIFY_REJECTED = -26  # RPC_TRANSACTION_REJECTED
RPC_VERIFY_ALREADY_IN_UTXO_SET = -27
RPC_INVALID_REQUEST = -32600
RPC_METHOD_NOT_FOUND = -32601
RPC_PARSE_ERROR = -32700

WWW_AUTHENTICATE = b'Basic realm="jsonrpc"'
AUTH_FAILURE_DELAY = 0.25  # seconds, Core's deterrent against password guessing
_REQUIRED = object()
_JSON_TYPE_NAMES = {type(None): "null", bool: "bool", dict: "object", list: "array", str: "string"}


class RPCError(Exception):
    """A JSON-RPC error object: Core's numeric code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, Any]:
        """``{"code": ..., "message": ...}`` as the reply's ``error`` member."""
        return {"code": self.code, "message": self.message}


def json_type_name(value: object) -> str:
    """UniValue's name for a JSON value's type (``number`` for ints and floats)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return _JSON_TYPE_NAMES.get(type(value), "unknown")


def _type_error(value: object, expected: str) -> RPCError:
    return RPCError(RPC_TYPE_ERROR, f"JSON value of type {json_type_name(value)} is not of expected type {expected}")


def _as_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _type_error(value, "number")
    if isinstance(value, float) and not value.is_integer():
        raise RPCError(RPC_TYPE_ERROR, "JSON integer out of range")
    return int(value)


def _as_str(value: object) -> str:
    if not isinstance(value, str):
        raise _type_error(value, "string")
    return value


def _as_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise _type_error(value, "bool")
    return value


def _as_object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _type_error(value, "object")
    return value


def _as_verbosity(value: object) -> int:
    """ParseVerbosity: a number, or a bool (true is 1, false is 0) for older clients."""
    if isinstance(value, bool):
        return int(value)
    return _as_int(value)


def _as_amount(value: object) -> int:
    """AmountFromValue: a number or numeric string of BTC, as satoshis (8 decimals at most)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RPCError(RPC_TYPE_ERROR, "Amount is not a number or string")
    try:
        btc = Decimal(str(value))
    except InvalidOperation:
        raise RPCError(RPC_TYPE_ERROR, "Invalid amount") from None
    satoshis = btc * 100_000_000
    if not btc.is_finite() or satoshis != satoshis.to_integral_value():
        raise RPCError(RPC_TYPE_ERROR, "Invalid amount")
    if not 0 <= satoshis <= 21_000_000 * 100_000_000:
        raise RPCError(RPC_TYPE_ERROR, "Amount out of range")
    return int(satoshis)


CONVERTERS: Mapping[str, Callable[[object], Any]] = {
    "int": _as_int,
    "str": _as_str,
    "bool": _as_bool,
    "object": _as_object,
    "verbosity": _as_verbosity,
    "amount": _as_amount,
    "any": lambda value: value,
}


@dataclass(frozen=True, slots=True)
class Param:
    """One named parameter: its kind (a key of :data:`CONVERTERS`) and default, if optional."""

    name: str
    kind: str
    default: object = _REQUIRED

    @property
    def required(self) -> bool:
        """Whether the caller must give it."""
        return self.default is _REQUIRED


@dataclass(frozen=True, slots=True)
class Method:
    """A handler and the parameters it takes, in Core's positional order."""

    handler: Callable[..., Any]
    params: tuple[Param, ...] = field(default=())

    def usage(self, name: str) -> str:
        """The first line of Core's help text, which Core answers with for a wrong argument count."""
        args = " ".join(p.name if p.required else f"( {p.name} )" for p in self.params)
        return f"{name} {args}".rstrip()

    def bind(self, name: str, params: Sequence[Any] | Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments for the handler from positional or named JSON parameters."""
        names = [p.name for p in self.params]
        if isinstance(params, Mapping):
            for key in params:
                if key not in names:
                    raise RPCError(RPC_INVALID_PARAMETER, f"Unknown named parameter {key}")
            values = [params.get(n) for n in names]
            given = max((i + 1 for i, n in enumerate(names) if n in params), default=0)
        else:
            if len(params) > len(names):
                raise RPCError(RPC_MISC_ERROR, self.usage(name))
            values = [*params, *([None] * (len(names) - len(params)))]
            given = len(params)
        if given < sum(1 for p in self.params if p.required):
            raise RPCError(RPC_MISC_ERROR, self.usage(name))
        bound: dict[str, Any] = {}
        for param, value in zip(self.params, values, strict=True):
            if value is None:
                if param.required:
                    raise RPCError(RPC_MISC_ERROR, self.usage(name))
                bound[param.name] = param.default
            else:
                bound[param.name] = CONVERTERS[param.kind](value)
        return bound


class _Request:
    """One parsed JSON-RPC request object (JSONRPCRequest::parse)."""

    def __init__(self, obj: object) -> None:
        self.has_id = False
        self.id: Any = None
        self.v2 = False
        if not isinstance(obj, dict):
            raise RPCError(RPC_INVALID_REQUEST, "Invalid Request object")
        if "id" in obj:
            self.has_id = True
            self.id = obj["id"]
        version = obj.get("jsonrpc")
        if version is not None:
            if not isinstance(version, str):
                raise RPCError(RPC_INVALID_REQUEST, "jsonrpc field must be a string")
            if version not in ("1.0", "2.0"):
                raise RPCError(RPC_INVALID_REQUEST, "JSON-RPC version not supported")
            self.v2 = version == "2.0"
        method = obj.get("method")
        if method is None:
            raise RPCError(RPC_INVALID_REQUEST, "Missing method")
        if not isinstance(method, str):
            raise RPCError(RPC_INVALID_REQUEST, "Method must be a string")
        self.method = method
        params = obj.get("params")
        if params is None:
            params = []
        if not isinstance(params, list | dict):
            raise RPCError(RPC_INVALID_REQUEST, "Params must be an array or object")
        self.params: list[Any] | dict[str, Any] = params

    @property
    def is_notification(self) -> bool:
        return self.v2 and not self.has_id

    def reply(self, result: Any = None, error: RPCError | None = None) -> dict[str, Any]:
        return _reply_object(result, error, self.has_id, self.id, self.v2)


def _reply_object(result: Any, error: RPCError | None, has_id: bool, request_id: Any, v2: bool) -> dict[str, Any]:
    """JSONRPCReplyObj: both members in 1.0, only the non-null one (and ``jsonrpc``) in 2.0."""
    reply: dict[str, Any] = {"jsonrpc": "2.0"} if v2 else {}
    if error is None:
        reply["result"] = result
        if not v2:
            reply["error"] = None
    else:
        if not v2:
            reply["result"] = None
        reply["error"] = error.to_json()
    if has_id:
        reply["id"] = request_id
    return reply


def _http_status(error: RPCError) -> int:
    """JSONErrorReply's mapping from an error code to the HTTP status of a 1.0 reply."""
    if error.code == RPC_INVALID_REQUEST:
        return 400
    if error.code == RPC_METHOD_NOT_FOUND:
        return 404
    return 500


def _encode(value: Any) -> bytes:
    return (json.dumps(value, separators=(",", ":")) + "\n").encode()


class JSONRPCResource(resource.Resource):
    """Core's JSON-RPC endpoint over HTTP; ``authorized`` returns the accepted ``user:password``."""

    isLeaf = True

    def __init__(
        self, methods: Mapping[str, Method], authorized: Callable[[], str | None], clock: IReactorTime
    ) -> None:
        super().__init__()
        self._methods = methods
        self._authorized = authorized
        self._clock = clock
        self._delayed: set[IDelayedCall] = set()

    def close(self) -> None:
        """Cancel the pending 401 answers (their connections are being closed anyway)."""
        delayed, self._delayed = self._delayed, set()
        for call in delayed:
            if call.active():
                call.cancel()

    def render(self, request: Request) -> bytes | int:
        """POST only, at ``/`` or under ``/wallet/``; everything else as Core's HTTP server does."""
        path = request.path or b"/"
        if path != b"/" and not path.startswith(b"/wallet/"):
            request.setResponseCode(404)
            return b""
        if request.method != b"POST":
            request.setResponseCode(405)
            return b"JSONRPC server handles only POST requests"
        header = request.getHeader(b"authorization")
        if header is None:
            return self._unauthorized(request)
        if not self._check_auth(header):
            log.warn("RPC incorrect password attempt from {peer}", peer=str(request.getClientAddress()))
            call = self._clock.callLater(AUTH_FAILURE_DELAY, self._finish_unauthorized, request)
            self._delayed.add(call)
            return server.NOT_DONE_YET
        body = request.content.read() if request.content is not None else b""
        finished = request.notifyFinish()
        result = ensureDeferred(self._handle(body))
        # A client that hangs up mid long poll cancels its wait.
        finished.addErrback(lambda _: result.cancel())
        result.addCallback(self._respond, request)
        result.addErrback(self._failed, request)
        return server.NOT_DONE_YET

    @staticmethod
    def _unauthorized(request: Request) -> bytes:
        request.setResponseCode(401)
        request.setHeader(b"www-authenticate", WWW_AUTHENTICATE)
        return b""

    def _finish_unauthorized(self, request: Request) -> None:
        self._delayed = {call for call in self._delayed if call.active()}
        if request.finished or request.channel is None:
            return
        request.write(self._unauthorized(request))
        request.finish()

    def _check_auth(self, header: bytes) -> bool:
        """RPCAuthorized: ``Basic base64(user:password)`` compared in constant time."""
        expected = self._authorized()
        if expected is None or not header.startswith(b"Basic "):
            return False
        try:
            given = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, expected.encode())

    async def _handle(self, body: bytes) -> tuple[int, bytes]:
        """(HTTP status, body) for one HTTP request's JSON-RPC payload."""
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            error = RPCError(RPC_PARSE_ERROR, "Parse error")
            return 500, _encode(_reply_object(None, error, False, None, False))
        if isinstance(payload, dict):
            return await self._single(payload)
        if isinstance(payload, list):
            replies = []
            for item in payload:
                reply = await self._batch_item(item)
                if reply is not None:
                    replies.append(reply)
            if not replies and payload:
                return 204, b""
            return 200, _encode(replies)
        error = RPCError(RPC_PARSE_ERROR, "Top-level object parse error")
        return 500, _encode(_reply_object(None, error, False, None, False))

    async def _single(self, payload: dict[str, Any]) -> tuple[int, bytes]:
        try:
            request = _Request(payload)
        except RPCError as error:
            has_id = "id" in payload
            return _http_status(error), _encode(_reply_object(None, error, has_id, payload.get("id"), False))
        try:
            result = await self._execute(request)
        except RPCError as error:
            if request.v2:
                return (204, b"") if request.is_notification else (200, _encode(request.reply(error=error)))
            return _http_status(error), _encode(request.reply(error=error))
        if request.is_notification:
            return 204, b""
        return 200, _encode(request.reply(result))

    async def _batch_item(self, item: object) -> dict[str, Any] | None:
        try:
            request = _Request(item)
        except RPCError as error:
            has_id = isinstance(item, dict) and "id" in item
            return _reply_object(None, error, has_id, item.get("id") if isinstance(item, dict) else None, False)
        try:
            reply = request.reply(await self._execute(request))
        except RPCError as error:
            reply = request.reply(error=error)
        return None if request.is_notification else reply

    async def _execute(self, request: _Request) -> Any:
        method = self._methods.get(request.method)
        if method is None:
            raise RPCError(RPC_METHOD_NOT_FOUND, "Method not found")
        kwargs = method.bind(request.method, request.params)
        try:
            result = method.handler(**kwargs)
            if isinstance(result, Awaitable):
                result = await result
        except RPCError:
            raise
        except CancelledError:
            raise
        except Exception as exc:
            log.failure("RPC {method} failed", method=request.method)
            raise RPCError(RPC_MISC_ERROR, str(exc)) from exc
        return result

    @staticmethod
    def _respond(answer: tuple[int, bytes], request: Request) -> None:
        if request.finished or request.channel is None:
            return
        status, body = answer
        request.setResponseCode(status)
        if body:
            request.setHeader(b"content-type", b"application/json")
            request.write(body)
        request.finish()

    @staticmethod
    def _failed(failure: Failure, request: Request) -> None:
        if failure.check(CancelledError):
            return
        log.failure("RPC request handling failed", failure)
        if request.finished or request.channel is None:
            return
        request.setResponseCode(500)
        request.finish()
