"""The web side inside the daemon: a listener for the API, /metrics and the dashboard.

A port that cannot be bound is logged and the daemon mines on: miners matter more than the
dashboard, and one host may run several daemons with the default ``web.listen``.  Stopping
ends every event stream, so the daemon stops cleanly with dashboards and curl sessions open.
Request bodies are refused past :data:`MAX_BODY_BYTES` as soon as their length is known
(twisted.web would otherwise buffer any body whole before a resource sees it).
"""

from __future__ import annotations

from io import BytesIO
from typing import Any, cast

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request, Site

from sv2proxy.config import Config
from sv2proxy.events import EventBus
from sv2proxy.merge_mining.coordinator import MergeMiningCoordinator
from sv2proxy.store.batched import BatchedStore
from sv2proxy.web.context import MiningView, WebContext
from sv2proxy.web.live import LiveState
from sv2proxy.web.metrics import Metrics
from sv2proxy.web.resources import EventBroadcaster, EventStream, Root

log = Logger()

#: The largest request body accepted: only ``POST /api/v1/reconnect`` has one, of a few bytes.
MAX_BODY_BYTES = 64 * 1024
_TOO_LARGE = b'{"error":"the request body is larger than %d bytes"}\n' % MAX_BODY_BYTES


class LimitedRequest(Request):
    """A Request that answers 413 and hangs up once its body passes :data:`MAX_BODY_BYTES`.

    A ``Content-Length`` past the limit is refused before any of the body is read; a chunked
    body when its running total passes it.  The refused request is never rendered.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refused = False
        self._received = 0

    def gotLength(self, length: int | None) -> None:  # noqa: N802
        if length is not None and length > MAX_BODY_BYTES:
            # No "100 Continue" after the refusal: the client must not send the body.
            self.requestHeaders.removeHeader(b"expect")
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802
        if self.refused:
            return
        self._received += len(data)
        if self._received > MAX_BODY_BYTES:
            self._refuse()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:  # noqa: N802
        if not self.refused:
            super().requestReceived(command, path, version)

    def _refuse(self) -> None:
        self.refused = True
        self.content = BytesIO()
        channel = self.channel
        if channel is None:
            return
        channel.transport.write(
            b"HTTP/1.1 413 Content Too Large\r\ncontent-type: application/json\r\n"
            b"x-content-type-options: nosniff\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(_TOO_LARGE), _TOO_LARGE)
        )
        channel.loseConnection()


class QuietSite(Site):
    """A Site that does not log every request (Prometheus scrapes every few seconds)."""

    noisy = False
    requestFactory = LimitedRequest

    def log(self, request: object) -> None:
        """Requests are not logged: failures are, by the resources that answer them."""


class WebService(Service):
    """Serves ``context`` at ``endpoint`` (a Twisted server endpoint description)."""

    name = "web"

    def __init__(
        self, endpoint: str, context: WebContext, reactor: Any, token: str | None = None, key: str = "web.listen"
    ) -> None:
        self.endpoint_text = endpoint
        self.context = context
        self.reactor = reactor
        self.key = key
        self.metrics = Metrics(context)
        self.broadcaster = EventBroadcaster(context.live.events, context.now)
        self.site = QuietSite(Root(context, self.metrics, token, self.broadcaster))
        self.port: IListeningPort | None = None
        self._listening: Deferred[IListeningPort | None] | None = None

    @property
    def streams(self) -> set[EventStream]:
        """The event streams open now."""
        return self.broadcaster.streams

    def startService(self) -> None:  # noqa: N802
        super().startService()
        self.context.started_at = self.context.now()
        self.context.live.start()
        observers = getattr(self.context.mining, "tip_observers", None)
        if observers is not None:
            observers.append(self.metrics.observe_tip_latency)
        endpoint = serverFromString(self.reactor, self.endpoint_text)
        self._listening = endpoint.listen(self.site).addCallbacks(self._bound, self._not_bound)

    def _bound(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        address = port.getHost()
        host = getattr(address, "host", "")
        where = f"[{host}]" if ":" in host else host
        log.info(
            "web API, metrics and dashboard on http://{where}:{port}/",
            where=where or str(address),
            port=getattr(address, "port", ""),
        )
        return port

    def _not_bound(self, failure: Failure) -> None:
        log.error(
            "{key}: cannot listen on {endpoint}: {error}; no API, metrics or dashboard (mining goes on)",
            key=self.key,
            endpoint=self.endpoint_text,
            error=failure.getErrorMessage(),
        )
        return None

    def when_listening(self) -> Deferred[IListeningPort | None]:
        """Fires with the listening port (None if it could not be bound)."""
        if self._listening is None:
            return succeed(None)
        waiter: Deferred[IListeningPort | None] = Deferred()

        def relay(port: IListeningPort | None) -> IListeningPort | None:
            waiter.callback(port)
            return port

        self._listening.addCallback(relay)
        return waiter

    def stopService(self) -> Deferred[None]:  # noqa: N802
        super().stopService()
        self.context.live.stop()
        observers = getattr(self.context.mining, "tip_observers", None)
        if observers is not None and self.metrics.observe_tip_latency in observers:
            observers.remove(self.metrics.observe_tip_latency)
        self.broadcaster.close_all()
        port, self.port = self.port, None
        if port is None:
            return succeed(None)
        stopped = port.stopListening()
        return cast(Deferred[None], stopped) if isinstance(stopped, Deferred) else succeed(None)


def web_service(
    config: Config,
    mining: MiningView,
    store: BatchedStore | None,
    reactor: Any,
    events: EventBus,
    merge_mining: MergeMiningCoordinator | None = None,
) -> WebService | None:
    """The daemon's web side as ``config.web`` says (None: ``web.listen`` is null)."""
    if config.web.listen is None:
        return None
    urls = tuple(url.text for url in config.pool_urls) if config.mode.value == "proxy" else ()
    clock = cast(IReactorTime, reactor)
    aux = merge_mining.get_secondary_chains if merge_mining is not None else None
    context = WebContext(config.mode.value, mining, LiveState(events, clock, urls), clock, store, urls, aux)
    return WebService(config.web.listen.endpoint, context, reactor, config.web.token)
