"""The web side inside the daemon: a listener for the API, /metrics and the dashboard.

A port that cannot be bound is logged and the daemon mines on: miners matter more than the
dashboard, and one host may run several daemons with the default ``web.listen``.  Stopping
ends every event stream, so the daemon stops cleanly with dashboards and curl sessions open.
"""

from __future__ import annotations

from typing import Any, cast

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site

from sv2proxy.config import Config
from sv2proxy.events import EventBus
from sv2proxy.merge_mining.coordinator import MergeMiningCoordinator
from sv2proxy.store.batched import BatchedStore
from sv2proxy.web.context import MiningView, WebContext
from sv2proxy.web.live import LiveState
from sv2proxy.web.metrics import Metrics
from sv2proxy.web.resources import EventStream, Root

log = Logger()


class QuietSite(Site):
    """A Site that does not log every request (Prometheus scrapes every few seconds)."""

    noisy = False

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
        self.streams: set[EventStream] = set()
        self.site = QuietSite(Root(context, self.metrics, token, self.streams))
        self.port: IListeningPort | None = None
        self._listening: Deferred[IListeningPort | None] | None = None

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
        for stream in list(self.streams):
            stream.close()
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
