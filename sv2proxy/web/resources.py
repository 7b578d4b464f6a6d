"""The twisted.web resources: thin adapters from requests to :mod:`views` and :mod:`dashboard`.

``/`` the dashboard, ``/metrics`` Prometheus, ``/api/v1/...`` JSON, ``/api/v1/events`` a
Server-Sent Events stream of the bus's events.  With a token configured, every request must
carry it: ``Authorization: Bearer TOKEN``, or the cookie the dashboard sets when a browser
opens ``/?token=TOKEN`` once (browsers cannot add headers to a page load or an EventSource).
Without a token only loopback ``Host`` names are served (:mod:`sv2proxy.web.hosts` says why),
and a POST from a browser must come from a page of this daemon (its ``Origin``).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Literal

from prometheus_client import CONTENT_TYPE_LATEST
from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import Request
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from sv2proxy.events import Event, EventBus, StratumV2MessageReceived
from sv2proxy.store.batched import StoreNotReady
from sv2proxy.web import hosts
from sv2proxy.web.context import MAX_PAYOUT_WINDOW, WebContext
from sv2proxy.web.dashboard import CHART_WORKERS, DashboardData, render_dashboard
from sv2proxy.web.metrics import Metrics
from sv2proxy.web.views import event_document

log = Logger()

TOKEN_COOKIE = b"sv2proxy_token"
#: Seconds between keepalive comments on an event stream (proxies close idle connections).
KEEPALIVE_INTERVAL = 15.0
#: Events never streamed: raw miner frames are traffic, not news.
UNSTREAMED = (StratumV2MessageReceived,)
#: Dashboard chart spans a request may ask for (seconds), and the points each chart gets.
MIN_SPAN, MAX_SPAN, DEFAULT_SPAN = 300, 7 * 86400, 3600
CHART_BUCKETS = 60
DEFAULT_PAYOUT_WINDOW = 10_000
#: Workers ``/api/v1/workers`` lists unless ``?limit=`` says otherwise, and the most it may ask.
DEFAULT_WORKER_LIMIT, MAX_WORKER_LIMIT = 1000, 10_000
#: Event streams open at once; one more is refused (each costs a write per event).
MAX_EVENT_STREAMS = 32
#: Methods that only read; anything else changes the daemon and must not come from another site.
SAFE_METHODS = (b"GET", b"HEAD")


class HTTPError(Exception):
    """An answer other than 200: its status and a message for the JSON body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json_bytes(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def _int_arg(request: Request, name: str, default: int, low: int, high: int) -> int:
    values = (request.args or {}).get(name.encode())
    if not values:
        return default
    try:
        value = int(values[0])
    except ValueError:
        raise HTTPError(400, f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise HTTPError(400, f"{name} must be from {low} to {high}")
    return value


def _finish_error(request: Request, status: int, message: str) -> None:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.write(_json_bytes({"error": message}))
    request.finish()


class AsyncResource(Resource):
    """A leaf answering GET with ``produce(request)``'s bytes; errors become JSON."""

    isLeaf = True
    content_type = b"application/json"

    def __init__(self, produce: Callable[[Request], Awaitable[bytes]]) -> None:
        super().__init__()
        self._produce = produce

    def render_GET(self, request: Request) -> object:  # noqa: N802
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def done(body: bytes) -> None:
            if gone:
                return
            request.setHeader(b"content-type", self.content_type)
            request.setHeader(b"cache-control", b"no-store")
            request.write(body)
            request.finish()

        def failed(failure: Failure) -> None:
            if gone:
                return
            if failure.check(HTTPError):
                _finish_error(request, failure.value.status, str(failure.value))
                return
            if failure.check(StoreNotReady):
                request.setHeader(b"retry-after", b"5")
                _finish_error(request, 503, str(failure.value))
                return
            log.failure("the web API failed on {path}", failure, path=request.path)
            _finish_error(request, 500, "internal error (see the daemon's log)")

        Deferred.fromCoroutine(self._coroutine(request)).addCallbacks(done, failed)
        return NOT_DONE_YET

    async def _coroutine(self, request: Request) -> bytes:
        return await self._produce(request)


def json_resource(produce: Callable[[Request], Awaitable[object]]) -> AsyncResource:
    async def body(request: Request) -> bytes:
        return _json_bytes(await produce(request))

    return AsyncResource(body)


class NotFound(Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"application/json")
        return _json_bytes({"error": "not found"})


class Branch(Resource):
    """A path segment with children (``/api``, ``/api/v1``): anything else under it is JSON 404."""

    def getChild(self, path: bytes, request: Request) -> Resource:  # noqa: N802
        return NotFound()

    def render(self, request: Request) -> bytes:
        return NotFound().render(request)


class Unauthorized(Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setResponseCode(401)
        request.setHeader(b"www-authenticate", b'Bearer realm="sv2proxy"')
        request.setHeader(b"content-type", b"application/json")
        return _json_bytes({"error": "a bearer token is required (Authorization: Bearer TOKEN)"})


class Forbidden(Resource):
    """403 with a sentence saying why (a foreign Host or Origin)."""

    isLeaf = True

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def render(self, request: Request) -> bytes:
        request.setResponseCode(403)
        request.setHeader(b"content-type", b"application/json")
        return _json_bytes({"error": self.message})


@implementer(IPushProducer)
class EventStream:
    """One SSE client: the records the :class:`EventBroadcaster` hands it, and keepalives.

    While the client does not keep up (the transport pauses us), events are dropped and
    counted rather than buffered without bound; the count is sent as a comment on resume.
    """

    def __init__(
        self, request: Request, types: frozenset[str] | None, broadcaster: EventBroadcaster, clock: IReactorTime
    ) -> None:
        self.request = request
        self.types = types
        self.broadcaster = broadcaster
        self.paused = False
        self.dropped = 0
        self._keepalive = LoopingCall(self._ping)
        self._keepalive.clock = clock
        self._finished = False

    def start(self) -> None:
        request = self.request
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-accel-buffering", b"no")  # nginx: do not buffer the stream
        request.registerProducer(self, True)
        request.write(b"retry: 3000\n: sv2proxy events\n\n")
        self.broadcaster.add(self)
        self._keepalive.start(KEEPALIVE_INTERVAL, now=False)
        request.notifyFinish().addBoth(self._gone)

    def takes(self, name: str) -> bool:
        """Whether the next event called ``name`` is to be written here (a paused one counts a drop)."""
        if self._finished or (self.types is not None and name not in self.types):
            return False
        if self.paused:
            self.dropped += 1
            return False
        return True

    def send(self, record: bytes) -> None:
        if not self._finished:
            self.request.write(record)

    def _ping(self) -> None:
        self.request.write(b": keepalive\n\n")

    def pauseProducing(self) -> None:  # noqa: N802
        self.paused = True

    def resumeProducing(self) -> None:  # noqa: N802
        self.paused = False
        if self.dropped and not self._finished:
            self.request.write(f": dropped {self.dropped} events (slow client)\n\n".encode())
            self.dropped = 0

    def stopProducing(self) -> None:  # noqa: N802
        self._gone(None)

    def close(self) -> None:
        """End the stream from our side (the daemon is stopping)."""
        if not self._finished:
            self._cleanup()
            self.request.unregisterProducer()
            self.request.finish()

    def abandon(self) -> None:
        """Stop writing here: the request can no longer be written to."""
        self._gone(None)

    def _gone(self, _: object) -> None:
        if not self._finished:
            self._cleanup()

    def _cleanup(self) -> None:
        self._finished = True
        if self._keepalive.running:
            self._keepalive.stop()
        self.broadcaster.discard(self)


class EventBroadcaster:
    """Every open event stream, fed from one subscription to the bus.

    Each event is turned into its SSE record once, however many streams take it, and only
    if one does; the bus is subscribed to only while a stream is open.
    """

    def __init__(self, events: EventBus, now: Callable[[], float], limit: int = MAX_EVENT_STREAMS) -> None:
        self.events = events
        self.now = now
        self.limit = limit
        self.streams: set[EventStream] = set()
        self._unsubscribe: Callable[[], None] | None = None

    def full(self) -> bool:
        return len(self.streams) >= self.limit

    def add(self, stream: EventStream) -> None:
        self.streams.add(stream)
        if self._unsubscribe is None:
            self._unsubscribe = self.events.subscribe(Event, self._event)

    def discard(self, stream: EventStream) -> None:
        self.streams.discard(stream)
        if not self.streams and self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def close_all(self) -> None:
        for stream in list(self.streams):
            stream.close()

    def _event(self, event: Event) -> None:
        if isinstance(event, UNSTREAMED):
            return
        name = type(event).__name__
        takers = [stream for stream in self.streams if stream.takes(name)]
        if not takers:
            return
        data = json.dumps(event_document(event, self.now()), separators=(",", ":"), default=str)
        record = f"event: {name}\ndata: {data}\n\n".encode()
        for stream in takers:
            try:
                stream.send(record)
            except Exception:
                # One broken stream must not cost the others this event (the bus isolated each once).
                log.failure("event stream write failed; closing it")
                stream.abandon()


class EventsResource(Resource):
    """``/api/v1/events[?types=ShareSubmitted,BlockMined]``: Server-Sent Events."""

    isLeaf = True

    def __init__(self, broadcaster: EventBroadcaster, clock: IReactorTime) -> None:
        super().__init__()
        self.broadcaster = broadcaster
        self.clock = clock

    def render_GET(self, request: Request) -> object:  # noqa: N802
        if self.broadcaster.full():
            request.setResponseCode(503)
            request.setHeader(b"content-type", b"application/json")
            request.setHeader(b"retry-after", b"60")
            return _json_bytes({"error": f"too many event streams open (at most {self.broadcaster.limit})"})
        wanted = (request.args or {}).get(b"types")
        types = None
        if wanted:
            types = frozenset(t.strip() for t in wanted[0].decode(errors="replace").split(",") if t.strip())
        EventStream(request, types, self.broadcaster, self.clock).start()
        return NOT_DONE_YET


class ReconnectResource(Resource):
    """``POST /api/v1/reconnect`` with ``{"host": H, "port": P}`` (both optional: "come back here").

    Every miner with a channel is asked to move (Stratum V2 Reconnect, V1 ``client.reconnect``).
    The body must be ``application/json``: a page on another site cannot send that without a
    CORS preflight, which this server never grants, so a browser cannot be made to move miners.
    The answer says how many connections are told, and (when the mining service says so)
    whether the message still waits for the share store to make accepted shares durable.
    """

    isLeaf = True

    def __init__(self, context: WebContext) -> None:
        super().__init__()
        self.context = context

    def render_POST(self, request: Request) -> bytes:  # noqa: N802
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        try:
            host, port = self._target(request)
        except HTTPError as refused:
            request.setResponseCode(refused.status)
            return _json_bytes({"error": str(refused)})
        told = self.context.mining.reconnect_miners(host, port)
        if isinstance(told, tuple):
            miners, pending = told
            return _json_bytes({"miners": miners, "pending": bool(pending), "host": host, "port": port})
        return _json_bytes({"miners": told, "host": host, "port": port})

    @staticmethod
    def _target(request: Request) -> tuple[str, int]:
        kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if kind != b"application/json":
            raise HTTPError(415, "send the body as application/json")
        body = request.content.read() if request.content is not None else b""
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            raise HTTPError(400, "the body is not JSON") from None
        if not isinstance(document, dict) or set(document) - {"host", "port"}:
            raise HTTPError(400, 'expected {"host": "HOST", "port": PORT}, both optional')
        # Types first: a 0, false or "" must not pass for "not given".
        host = document.get("host", "")
        port = document.get("port", 0)
        if not isinstance(host, str) or not hosts.is_reconnect_host(host):
            raise HTTPError(
                400,
                f"host must be empty, an IP address or a host name of at most {hosts.MAX_HOST_BYTES} bytes"
                " (no scheme, no port)",
            )
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 0xFFFF:
            raise HTTPError(400, "port must be a whole number from 0 to 65535")
        return host, port


class WorkersResource(Resource):
    """``/api/v1/workers[?limit=N]`` (the busiest first) and ``/api/v1/workers/NAME``."""

    def __init__(self, context: WebContext) -> None:
        super().__init__()
        self.context = context

    def getChild(self, path: bytes, request: Request) -> Resource:  # noqa: N802
        if path == b"":
            return json_resource(self._list)
        name = path.decode(errors="replace")

        async def one(_: Request) -> object:
            found = await self.context.workers(name)
            if not found:
                raise HTTPError(404, f"no worker {name!r}")
            return found[0]

        return json_resource(one)

    def render_GET(self, request: Request) -> object:  # noqa: N802
        return json_resource(self._list).render_GET(request)

    async def _list(self, request: Request) -> object:
        limit = _int_arg(request, "limit", DEFAULT_WORKER_LIMIT, 1, MAX_WORKER_LIMIT)
        workers = await self.context.workers()
        request.setHeader(b"x-total-count", str(len(workers)).encode())
        return workers[:limit]


class ClientGone(Exception):
    """The client left while its answer was being gathered: no more work for it."""


def _watch(request: Request) -> Callable[[], None]:
    """A check to call before each slow step: raises :class:`ClientGone` once the client left."""
    gone: list[bool] = []
    request.notifyFinish().addErrback(lambda _: gone.append(True))

    def check() -> None:
        if gone:
            raise ClientGone()

    return check


def _on_unix_socket(request: Request) -> bool:
    """A unix socket has no host name to check: its permissions say who may connect."""
    return isinstance(request.getHost(), UNIXAddress)


class Root(Resource):
    """The site's root: the Host, Origin and token checks, then the dashboard, /metrics and /api/v1."""

    def __init__(
        self, context: WebContext, metrics: Metrics, token: str | None, broadcaster: EventBroadcaster | None = None
    ) -> None:
        super().__init__()
        self.context = context
        self.metrics = metrics
        self.token = token.encode() if token is not None else None
        if broadcaster is None:
            broadcaster = EventBroadcaster(context.live.events, context.now)
        self.broadcaster = broadcaster
        api = Branch()
        v1 = Branch()
        api.putChild(b"v1", v1)
        v1.putChild(b"status", json_resource(self._status))
        v1.putChild(b"workers", WorkersResource(context))
        v1.putChild(b"blocks", json_resource(lambda _: context.blocks()))
        v1.putChild(b"upstreams", json_resource(lambda _: context.upstream_history()))
        v1.putChild(b"payouts", json_resource(self._payouts))
        v1.putChild(b"events", EventsResource(broadcaster, context.clock))
        v1.putChild(b"reconnect", ReconnectResource(context))
        self._children = {b"api": api, b"metrics": self._metrics_resource(), b"": AsyncResource(self._dashboard)}
        self._children[b""].content_type = b"text/html; charset=utf-8"

    def getChildWithDefault(self, path: bytes, request: Request) -> Resource:  # noqa: N802
        request.setHeader(b"x-content-type-options", b"nosniff")
        refused = self._refusal(request)
        if refused is not None:
            return refused
        return self._children.get(path) or NotFound()

    def _refusal(self, request: Request) -> Resource | None:
        """Why ``request`` is not served (None: it is)."""
        changes = request.method not in SAFE_METHODS
        origin = request.getHeader(b"origin")
        if self.token is None:
            if not _on_unix_socket(request) and not hosts.is_loopback_host(request.getHeader(b"host")):
                return Forbidden(
                    "without web.token only loopback host names are served (localhost, 127.0.0.1, [::1]);"
                    " set web.token to serve others"
                )
            if changes and origin is not None and not hosts.is_loopback_origin(origin):
                return Forbidden("a page on another site cannot change this daemon")
            return None
        credential = self._credential(request)
        if credential is None:
            return Unauthorized()
        # Only a browser sends the cookie, and a browser says which page asks: it must be ours.
        if (
            credential == "cookie"
            and changes
            and origin is not None
            and not hosts.is_same_origin(origin, request.getHeader(b"host"))
        ):
            return Forbidden("a page on another site cannot change this daemon")
        return None

    def _credential(self, request: Request) -> Literal["header", "cookie", "query"] | None:
        """How ``request`` showed the token: ``header``, ``cookie`` or ``query`` (None: it did not)."""
        expected = self.token
        assert expected is not None
        header = request.getHeader(b"authorization") or b""
        scheme, _, given = header.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), expected):
            return "header"
        cookie = request.getCookie(TOKEN_COOKIE)
        if cookie is not None and hmac.compare_digest(cookie, expected):
            return "cookie"
        query = (request.args or {}).get(b"token")
        if query and hmac.compare_digest(query[0], expected):
            # A browser opening /?token=...: the dashboard's refreshes and links use the cookie.
            request.addCookie(TOKEN_COOKIE, expected, path=b"/", httpOnly=True, sameSite="strict")
            return "query"
        return None

    def _metrics_resource(self) -> AsyncResource:
        async def body(_: Request) -> bytes:
            return self.metrics.render()

        resource = AsyncResource(body)
        resource.content_type = CONTENT_TYPE_LATEST.encode()
        return resource

    async def _status(self, _: Request) -> object:
        return self.context.status()

    async def _payouts(self, request: Request) -> object:
        window = _int_arg(request, "window", DEFAULT_PAYOUT_WINDOW, 1, MAX_PAYOUT_WINDOW)
        document = await self.context.payouts(window)
        if document is None:
            raise HTTPError(503, "no share store (store.url is null): no payouts to compute")
        return document

    async def _dashboard(self, request: Request) -> bytes:
        context = self.context
        span = _int_arg(request, "span", DEFAULT_SPAN, MIN_SPAN, MAX_SPAN)
        # Each step may be a store query on the reader thread: none is started for a client
        # that has gone (a browser that gave up on a slow page and refreshed).
        still_here = _watch(request)
        workers = await context.workers()
        still_here()
        blocks = await context.blocks()
        still_here()
        pool = await context.hash_rate_history(span, CHART_BUCKETS)
        histories = []
        for worker in workers[:CHART_WORKERS]:
            still_here()
            histories.append((worker["name"], await context.hash_rate_history(span, CHART_BUCKETS, worker["name"])))
        data = DashboardData(
            status=context.status(),
            workers=workers,
            blocks=blocks,
            pool_history=pool,
            worker_histories=histories,
            now=context.now(),
            span=span,
            notes=() if context.store is not None else ("No share store: charts show this process's last hour only.",),
        )
        return render_dashboard(data).encode()
