"""WebService on a real loopback port: listening, a busy port, and stopping with streams open."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest_twisted
import treq
from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import LogLevel, globalLogPublisher
from twisted.web.client import Agent, HTTPConnectionPool

from sv2proxy.events import ShareSubmitted
from sv2proxy.web.service import WebService

from .fakes import T0, FakeChannel, FakeMining, make_context

LOOPBACK = "tcp:0:interface=127.0.0.1"
TIMEOUT = 10.0


class TippingMining(FakeMining):
    """A mining service that reports new-tip latencies to its observers."""

    def __init__(self) -> None:
        super().__init__([FakeChannel(1, "alice")], {1: 1e12})
        self.tip_observers: list[Any] = []


@pytest_twisted.async_yield_fixture
async def http() -> AsyncIterator[HTTPClient]:
    pool = HTTPConnectionPool(reactor, persistent=False)
    yield HTTPClient(Agent(reactor, pool=pool))
    await pool.closeCachedConnections()


def url(port: Any, path: str) -> str:
    return f"http://127.0.0.1:{port.getHost().port}{path}"


@pytest_twisted.ensureDeferred
async def test_it_serves_on_the_port_it_was_given(http: HTTPClient) -> None:
    mining = TippingMining()
    context, bus, clock = make_context(mining, start=False)
    context.started_at = 0.0
    service = WebService(LOOPBACK, context, reactor)
    service.startService()
    try:
        port = await service.when_listening().addTimeout(TIMEOUT, reactor)
        assert port is not None and port is service.port
        assert port.getHost().host == "127.0.0.1" and port.getHost().port != 0
        assert context.started_at == T0  # from the context's clock
        assert mining.tip_observers == [service.metrics.observe_tip_latency]
        bus.publish(ShareSubmitted(1, 1, "alice", 1.0, True))  # the live state now listens

        response = await http.get(url(port, "/api/v1/status")).addTimeout(TIMEOUT, reactor)
        assert response.code == 200
        status = json.loads(await treq.content(response))
        assert (status["channels"], status["hash_rate_estimate"], status["shares"]["accepted"]) == (1, 1e12, 1)

        mining.tip_observers[0](0.002)
        response = await http.get(url(port, "/metrics")).addTimeout(TIMEOUT, reactor)
        assert b"sv2proxy_new_block_to_jobs_seconds_count 1.0" in await treq.content(response)
        # A late waiter hears the same port.
        assert await service.when_listening() is port
    finally:
        await service.stopService()
    assert service.port is None
    assert mining.tip_observers == []
    bus.publish(ShareSubmitted(1, 1, "alice", 1.0, True))
    assert context.live.accepted == 1  # stopped: no longer counting
    assert clock.getDelayedCalls() == []


@pytest_twisted.ensureDeferred
async def test_before_start_there_is_no_port() -> None:
    context, _, _ = make_context(start=False)
    service = WebService(LOOPBACK, context, reactor)
    assert await service.when_listening() is None
    assert await service.stopService() is None


@pytest_twisted.ensureDeferred
async def test_a_busy_port_is_logged_and_mining_goes_on() -> None:
    taken = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    context, bus, _ = make_context(start=False)
    endpoint = f"tcp:{taken.getHost().port}:interface=127.0.0.1"
    service = WebService(endpoint, context, reactor, key="web.listen")
    try:
        service.startService()  # does not raise
        assert await service.when_listening().addTimeout(TIMEOUT, reactor) is None
        assert service.running and service.port is None
        errors = [e for e in events if e.get("log_level") == LogLevel.error and e.get("key") == "web.listen"]
        assert [e["endpoint"] for e in errors] == [endpoint]
        # The rest of the web side still works (the live state counts).
        bus.publish(ShareSubmitted(1, 1, "alice", 1.0, True))
        assert context.live.accepted == 1
        assert await service.stopService() is None
    finally:
        globalLogPublisher.removeObserver(events.append)
        await taken.stopListening()


@pytest_twisted.ensureDeferred
async def test_stopping_closes_open_event_streams(http: HTTPClient) -> None:
    context, bus, clock = make_context(start=False)
    service = WebService(LOOPBACK, context, reactor)
    service.startService()
    stopped = False
    try:
        port = await service.when_listening().addTimeout(TIMEOUT, reactor)
        response = await http.get(url(port, "/api/v1/events"), unbuffered=True).addTimeout(TIMEOUT, reactor)
        assert response.code == 200
        chunks: list[bytes] = []
        arrived: Deferred[None] = Deferred()

        def collect(data: bytes) -> None:
            chunks.append(data)
            if b"event: ShareSubmitted" in b"".join(chunks) and not arrived.called:
                arrived.callback(None)

        done = treq.collect(response, collect)
        bus.publish(ShareSubmitted(1, 1, "alice", 1.0, True))
        await arrived.addTimeout(TIMEOUT, reactor)
        assert len(service.streams) == 1

        await service.stopService()
        stopped = True
        await done.addTimeout(TIMEOUT, reactor)  # the body ended: the stream was closed
        assert service.streams == set()
        assert clock.getDelayedCalls() == []
        assert b"".join(chunks).startswith(b"retry: 3000\n")
    finally:
        if not stopped:
            await service.stopService()
