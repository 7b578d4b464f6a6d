"""A Bitcoin Core JSON-RPC client over treq (issue: solo mining against a node).

Every call has a deadline from the injected clock.  Failures come back as :class:`NodeError`
with what went wrong in words an operator can act on -- the node refused our credentials, is
unreachable, timed out, answered HTTP 500 or with an RPC error (code and message), or is
still syncing -- so the caller can log it, keep miners on the last good template, and retry.

Authentication is Bitcoin Core's: ``rpcuser``/``rpcpassword``, or the cookie file the node
writes at start (``<datadir>/[<chain>/].cookie``).  The cookie is read again after a 401,
since a restarted node writes a new one.
"""

from __future__ import annotations

import itertools
import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectError, ConnectingCancelledError, ConnectionRefusedError, DNSLookupError
from twisted.internet.interfaces import IReactorTime
from twisted.web.client import ResponseFailed

from sv2proxy.config import redact_url
from sv2proxy.errors import ServerError

DEFAULT_TIMEOUT = 30.0
#: Where Bitcoin Core keeps its data for each chain, below the default datadir (~/.bitcoin).
CHAIN_SUBDIRS = {"main": "", "test": "testnet3", "testnet4": "testnet4", "signet": "signet", "regtest": "regtest"}
#: RPC error codes that mean "not ready yet", not "wrong".
RPC_IN_WARMUP = -28
RPC_CLIENT_IN_INITIAL_DOWNLOAD = -10


def _cancelled(error: BaseException) -> bool:
    """Was this request cancelled (treq wraps a cancel in ResponseFailed at some stages)?"""
    if isinstance(error, CancelledError | ConnectingCancelledError):
        return True
    return isinstance(error, ResponseFailed) and any(
        reason.check(CancelledError, ConnectingCancelledError) for reason in error.reasons
    )


class NodeError(ServerError):
    """The node could not answer; ``retryable`` says whether trying again later makes sense."""

    def __init__(self, message: str, *, code: int | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class NodeTimeout(NodeError):
    """The node did not answer in time (for a long poll, that can simply mean nothing changed)."""


@dataclass(frozen=True, slots=True)
class RPCAuth:
    """Credentials: a user and password, or a cookie file read when needed."""

    user: str | None = None
    password: str | None = None
    cookie_file: Path | None = None

    def credentials(self) -> tuple[str, str]:
        if self.user is not None and self.password is not None:
            return self.user, self.password
        if self.cookie_file is None:
            raise NodeError("no RPC credentials: set rpcuser/rpcpassword or a cookie file", retryable=False)
        try:
            text = self.cookie_file.read_text().strip()
        except OSError as e:
            raise NodeError(
                f"cannot read the node's cookie file {self.cookie_file}: {e.strerror or e}"
                " (is the node running, and is its datadir right?)"
            ) from None
        user, sep, password = text.partition(":")
        if not sep:
            raise NodeError(f"the cookie file {self.cookie_file} is not USER:PASSWORD", retryable=False)
        return user, password


def default_cookie_file(chain: str, datadir: Path | None = None) -> Path:
    """Where Bitcoin Core writes its cookie for ``chain`` (main, test, testnet4, signet, regtest)."""
    base = datadir if datadir is not None else Path.home() / ".bitcoin"
    return base / CHAIN_SUBDIRS[chain] / ".cookie"


class BitcoinCoreRPC:
    """JSON-RPC calls to one node; one instance per node URL."""

    def __init__(
        self,
        url: str,
        auth: RPCAuth,
        http: HTTPClient,
        clock: IReactorTime,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        shown = redact_url(url)
        # http://USER:PASSWORD@host:port/ is a common way to write a node's URL; the HTTP client
        # takes no user info, so it becomes the credentials unless others were given.
        parts = urllib.parse.urlsplit(url)
        if parts.username is not None or parts.password is not None:
            host = parts.netloc.rpartition("@")[2]
            url = urllib.parse.urlunsplit(parts._replace(netloc=host))
            if auth.user is None and auth.password is None:
                user = urllib.parse.unquote(parts.username or "")
                auth = RPCAuth(user, urllib.parse.unquote(parts.password or ""), auth.cookie_file)
        self.url = self._given = url
        self._shown = shown
        self.auth = auth
        self._http = http
        self._clock = clock
        self.timeout = timeout
        self._ids = itertools.count(1)

    @property
    def shown_url(self) -> str:
        """The URL as errors and logs show it: as configured, its password masked (the embedded
        demo node sets :attr:`url` later, and then that is shown)."""
        return self._shown if self.url == self._given else redact_url(self.url)

    async def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        """The ``result`` of ``method(*params)``; NodeError for every kind of failure."""
        body = json.dumps({"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": list(params)})
        deadline = self.timeout if timeout is None else timeout
        status, payload = await self._post(method, body, deadline)
        if status == 401:
            # A restarted node writes a new cookie: read it once more before giving up.
            status, payload = await self._post(method, body, deadline)
            if status == 401:
                raise NodeError(f"{method}: the node refused our RPC credentials (HTTP 401)", retryable=False)
        try:
            answer = json.loads(payload)
        except ValueError:
            raise NodeError(f"{method}: HTTP {status} with a body that is not JSON: {payload[:120]!r}") from None
        if not isinstance(answer, dict):
            raise NodeError(f"{method}: unexpected JSON-RPC answer {str(answer)[:120]}")
        error = answer.get("error")
        if error:
            code = error.get("code") if isinstance(error, dict) else None
            message = error.get("message") if isinstance(error, dict) else str(error)
            retryable = code in (RPC_IN_WARMUP, RPC_CLIENT_IN_INITIAL_DOWNLOAD)
            raise NodeError(f"{method}: node error {code}: {message}", code=code, retryable=retryable)
        if status != 200:
            raise NodeError(f"{method}: HTTP {status} from the node")
        return answer.get("result")

    async def _post(self, method: str, body: str, deadline: float) -> tuple[int, bytes]:
        user, password = self.auth.credentials()
        # Our own deadline, so that a cancel from outside (the caller gave up on this call) and
        # running out of time stay distinguishable: the first raises CancelledError, the second
        # NodeTimeout.  It covers connecting, the request and reading the body.
        timed_out = False
        pending: Deferred[Any] | None = None

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            if pending is not None:
                pending.cancel()

        timer = self._clock.callLater(deadline, expire)
        try:
            pending = self._http.post(
                self.url,
                data=body.encode(),
                headers={"Content-Type": ["application/json"]},
                auth=(user, password),
            )
            response = await pending
            pending = response.content()
            payload: bytes = await pending
        except Exception as e:
            if timed_out:
                where = self.shown_url
                raise NodeTimeout(f"{method}: no answer from the node at {where} within {deadline:g} s") from None
            if _cancelled(e):
                raise CancelledError() from None
            if isinstance(e, ConnectionRefusedError | ConnectError | DNSLookupError):
                where = self.shown_url
                raise NodeError(f"{method}: cannot reach the node at {where}: {e.__class__.__name__}") from None
            if isinstance(e, ResponseFailed):
                reason = e.reasons[0].getErrorMessage() if e.reasons else "unknown reason"
                raise NodeError(f"{method}: the connection to the node broke: {reason}") from None
            # Whatever else the HTTP stack raises is still the node being unavailable, never a
            # reason for the caller's loop to die.
            raise NodeError(f"{method}: {e.__class__.__name__}: {e}") from None
        finally:
            if timer.active():
                timer.cancel()
        return response.code, payload

    # -- the calls the daemon makes ---------------------------------------------------------

    async def getblocktemplate(self, longpollid: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        """A template with the segwit rule; with ``longpollid``, waits for a change first."""
        request: dict[str, Any] = {"rules": ["segwit"]}
        if longpollid is not None:
            request["longpollid"] = longpollid
        result = await self.call("getblocktemplate", request, timeout=timeout)
        if not isinstance(result, dict):
            raise NodeError(f"getblocktemplate: expected an object, got {str(result)[:80]}")
        return result

    async def submitblock(self, block_hex: str) -> str | None:
        """None when the node accepted the block, else its reason (``duplicate``, ``high-hash``, ...)."""
        result = await self.call("submitblock", block_hex)
        return None if result is None else str(result)

    async def getbestblockhash(self) -> str:
        return str(await self.call("getbestblockhash"))

    async def getblockchaininfo(self) -> dict[str, Any]:
        result = await self.call("getblockchaininfo")
        if not isinstance(result, dict):
            raise NodeError("getblockchaininfo: expected an object")
        return result
