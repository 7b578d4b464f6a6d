"""The HTTP resources, driven in memory through a real twisted.web Site (treq's StubTreq).

Nothing here runs the reactor: the fake store answers at once, and the event stream's
keepalives run on a Clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import treq
from prometheus_client.parser import text_string_to_metric_families
from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.server import Site

from sv2proxy.events import (
    BlockMined,
    BlockSubmitted,
    EventBus,
    HandshakeFailed,
    MiningPoolConnected,
    ShareSubmitted,
    StratumV2MessageReceived,
)
from sv2proxy.store.records import HASHES_PER_DIFFICULTY, BlockRecord, UpstreamEventRecord, WorkerStats
from sv2proxy.web import resources
from sv2proxy.web.context import MAX_PAYOUT_WINDOW, WebContext
from sv2proxy.web.metrics import Metrics
from sv2proxy.web.resources import (
    DEFAULT_PAYOUT_WINDOW,
    DEFAULT_WORKER_LIMIT,
    KEEPALIVE_INTERVAL,
    MAX_EVENT_STREAMS,
    MAX_WORKER_LIMIT,
    EventStream,
    Root,
)
from sv2proxy.web.service import WebService

from .fakes import T0, FakeChannel, FakeMining, FakeStore, make_context

BASE = "http://127.0.0.1:8080"  # without a token only loopback Host names are served


def result(d: Deferred[Any]) -> Any:
    """What a Deferred fired with; it must have fired (everything here is synchronous)."""
    fired: list[Any] = []
    d.addBoth(fired.append)
    assert fired, f"{d!r} has not fired"
    if isinstance(fired[0], Failure):
        fired[0].raiseException()
    return fired[0]


class Client:
    """One in-memory client (with its own cookie jar) of a fresh Root over ``context``."""

    def __init__(self, context: WebContext, token: str | None = None) -> None:
        self.context = context
        self.metrics = Metrics(context)
        self.root = Root(context, self.metrics, token)
        self.streams: set[EventStream] = self.root.broadcaster.streams
        self.stub = StubTreq(self.root)

    def get(self, path: str, **kwargs: Any) -> tuple[Any, bytes]:
        d = self.stub.get(BASE + path, **kwargs)
        self.stub.flush()
        response = result(d)
        body = treq.content(response)
        self.stub.flush()
        return response, result(body)

    def json(self, path: str, status: int = 200, **kwargs: Any) -> Any:
        response, body = self.get(path, **kwargs)
        assert response.code == status, body
        assert response.headers.getRawHeaders("content-type") == ["application/json"]
        return json.loads(body)


@pytest.fixture
def mining() -> FakeMining:
    return FakeMining([FakeChannel(1, "alice"), FakeChannel(2, "bob")], {1: 2e12, 2: 1e12})


@pytest.fixture
def live_only(mining: FakeMining) -> Iterator[tuple[WebContext, EventBus, Clock]]:
    context, bus, clock = make_context(mining, upstream_urls=("sv2://up:3336",))
    yield context, bus, clock
    assert clock.getDelayedCalls() == []  # no keepalive left running


@pytest.fixture
def client(live_only: tuple[WebContext, EventBus, Clock]) -> Client:
    return Client(live_only[0])


@pytest.fixture
def bus(live_only: tuple[WebContext, EventBus, Clock]) -> EventBus:
    return live_only[1]


@pytest.fixture
def clock(live_only: tuple[WebContext, EventBus, Clock]) -> Clock:
    return live_only[2]


# -- JSON --------------------------------------------------------------------------------------


def test_status(client: Client, bus: EventBus, clock: Clock) -> None:
    bus.publish(ShareSubmitted(1, 1, "alice", 1.0, True))
    bus.publish(ShareSubmitted(1, 1, "alice", 1.0, False, "stale-share"))
    bus.publish(MiningPoolConnected("sv2://up:3336"))
    clock.advance(30)
    response, body = client.get("/api/v1/status")
    assert response.code == 200
    assert response.headers.getRawHeaders("cache-control") == ["no-store"]
    status = json.loads(body)
    assert status["mode"] == "pool" and status["version"] == "9.9.9"
    assert status["time"] == T0 + 30 and status["uptime"] == 30.0
    assert (status["connections"], status["channels"], status["hash_rate_estimate"]) == (2, 2, 3e12)
    # The headline rate: accepted difficulty over the 30 s the daemon has run.
    assert status["hash_rate_window"] == 30.0
    assert status["hash_rate"] == pytest.approx(1.0 * HASHES_PER_DIFFICULTY / 30)
    assert status["shares"] == {"accepted": 1, "rejected": {"stale-share": 1}}
    assert status["store"] == {"enabled": False}
    # The status lists the upstreams without their event history.
    assert status["upstreams"] == [
        {"url": "sv2://up:3336", "state": "connected", "since": T0, "connects": 1, "disconnects": 0,
         "last_reason": ""}
    ]


def test_workers_and_one_worker(client: Client, bus: EventBus, clock: Clock) -> None:
    bus.publish(ShareSubmitted(1, 1, "alice", 1.0, True))
    bus.publish(ShareSubmitted(3, 1, "carol", 1.0, True))  # seen, no channel open any more
    clock.advance(10)
    workers = client.json("/api/v1/workers")
    rate = pytest.approx(HASHES_PER_DIFFICULTY / 10)  # one share of difficulty 1 in 10 s
    # Busiest first by accepted difficulty, then by vardiff's estimate.
    assert [(w["name"], w["connected"], w["hash_rate"], w["hash_rate_estimate"], w["accepted"]) for w in workers] == [
        ("alice", True, rate, 2e12, 1),
        ("carol", False, rate, 0.0, 1),
        ("bob", True, 0.0, 1e12, 0),
    ]
    assert client.json("/api/v1/workers/") == workers
    alice = client.json("/api/v1/workers/alice")
    assert alice == workers[0]
    assert client.json("/api/v1/workers/carol")["connected"] is False
    assert client.json("/api/v1/workers/nobody", 404) == {"error": "no worker 'nobody'"}


def test_the_workers_list_is_capped(client: Client, bus: EventBus) -> None:
    for i in range(DEFAULT_WORKER_LIMIT + 5):
        bus.publish(ShareSubmitted(9, 1, f"rig{i:05}", 1.0, True))
    response, body = client.get("/api/v1/workers")
    assert response.code == 200
    assert response.headers.getRawHeaders("x-total-count") == [str(DEFAULT_WORKER_LIMIT + 7)]
    workers = json.loads(body)
    assert len(workers) == DEFAULT_WORKER_LIMIT
    assert [w["name"] for w in workers[:3]] == ["alice", "bob", "rig00000"]  # the busiest first
    assert [w["name"] for w in client.json("/api/v1/workers?limit=2")] == ["alice", "bob"]
    assert len(client.json("/api/v1/workers/?limit=3")) == 3
    assert client.json(f"/api/v1/workers?limit={MAX_WORKER_LIMIT + 1}", 400) == {
        "error": f"limit must be from 1 to {MAX_WORKER_LIMIT}"
    }
    assert client.json("/api/v1/workers?limit=0", 400)["error"]


def test_a_worker_name_is_url_decoded(live_only: tuple[WebContext, EventBus, Clock]) -> None:
    context, bus, _ = live_only
    bus.publish(ShareSubmitted(1, 1, "bc1q.rig 1", 1.0, True))
    assert Client(context).json("/api/v1/workers/bc1q.rig%201")["name"] == "bc1q.rig 1"


def test_blocks_from_the_live_state(client: Client, bus: EventBus, clock: Clock) -> None:
    assert client.json("/api/v1/blocks") == []
    bus.publish(BlockMined("aa" * 32, worker="alice"))
    clock.advance(60)
    bus.publish(BlockMined("bb" * 32, worker="bob"))
    bus.publish(BlockSubmitted("aa" * 32, True, height=7))
    blocks = client.json("/api/v1/blocks")
    assert [(b["hash"], b["status"], b["at"], b["worker"], b["height"]) for b in blocks] == [
        ("bb" * 32, "found", T0 + 60, "bob", None),
        ("aa" * 32, "accepted", T0, "alice", 7),
    ]


def test_upstreams(client: Client, bus: EventBus) -> None:
    bus.publish(MiningPoolConnected("sv2://other:1"))
    assert [(u["url"], u["state"], u["events"]) for u in client.json("/api/v1/upstreams")] == [
        ("sv2://up:3336", "connecting", None),
        ("sv2://other:1", "connected", None),
    ]


def test_payouts_need_a_store(client: Client) -> None:
    assert client.json("/api/v1/payouts?window=10", 503) == {
        "error": "no share store (store.url is null): no payouts to compute"
    }


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("abc", "window must be a whole number"),
        ("1.5", "window must be a whole number"),
        ("0", f"window must be from 1 to {MAX_PAYOUT_WINDOW}"),
        ("-3", f"window must be from 1 to {MAX_PAYOUT_WINDOW}"),
        (str(MAX_PAYOUT_WINDOW + 1), f"window must be from 1 to {MAX_PAYOUT_WINDOW}"),
    ],
)
def test_a_bad_payout_window_is_400(window: str, message: str) -> None:
    context, _, _ = make_context(store=FakeStore())
    assert Client(context).json(f"/api/v1/payouts?window={window}", 400) == {"error": message}


def test_the_store_answers_when_there_is_one(mining: FakeMining) -> None:
    store = FakeStore(
        stats=[WorkerStats("alice", (1.0, 2.0, 3.0, 4.0), 10, 20.0, 1, T0 - 5, {})],
        stored_blocks=[BlockRecord("cc" * 32, "accepted", T0 - 100, "alice", 9, 5000)],
        upstream=[UpstreamEventRecord("sv2://up:3336", "connected", T0 - 50)],
        payout_rows=[("alice", 30.0, 0.75), ("bob", 10.0, 0.25)],
    )
    context, _, _ = make_context(mining, store=store, upstream_urls=("sv2://up:3336",))
    client = Client(context)

    payouts = client.json("/api/v1/payouts?window=500")
    assert payouts == {
        "window": 500,
        "total_difficulty": 40.0,
        "workers": [
            {"worker": "alice", "difficulty": 30.0, "fraction": 0.75},
            {"worker": "bob", "difficulty": 10.0, "fraction": 0.25},
        ],
    }
    assert client.json("/api/v1/payouts")["window"] == DEFAULT_PAYOUT_WINDOW
    assert client.json("/api/v1/blocks")[0]["reward"] == 5000
    assert client.json("/api/v1/upstreams")[0]["events"] == [{"event": "connected", "at": T0 - 50, "reason": ""}]
    alice = client.json("/api/v1/workers/alice")
    assert alice["stored"]["hash_rates"] == {"1m": 1.0, "15m": 2.0, "1h": 3.0, "24h": 4.0}
    assert alice["last_share_at"] == T0 - 5
    assert client.json("/api/v1/status")["store"]["pending_shares"] == 3
    assert ("payouts", 500) in store.asked and ("worker_stats", "alice") in store.asked


@pytest.mark.parametrize("path", ["/nope", "/api", "/api/", "/api/v2/status", "/api/v1/nope", "/api/v1"])
def test_unknown_paths_are_json_404(client: Client, path: str) -> None:
    assert client.json(path, 404) == {"error": "not found"}


def test_a_failing_query_is_a_json_500(live_only: tuple[WebContext, EventBus, Clock]) -> None:
    context, _, _ = live_only

    class Broken(FakeMining):
        def miner_channels(self) -> list[FakeChannel]:
            raise RuntimeError("boom")

    context.mining = Broken()
    assert Client(context).json("/api/v1/status", 500) == {"error": "internal error (see the daemon's log)"}


def test_a_store_not_ready_yet_is_a_503_to_retry() -> None:
    from twisted.internet.defer import fail

    from sv2proxy.store.batched import StoreNotReady

    store = FakeStore()
    store.payouts = lambda window: fail(StoreNotReady("share store X is not ready yet (starting)"))
    context, _, _ = make_context(store=store)
    client = Client(context)
    response, body = client.get("/api/v1/payouts?window=10")
    assert response.code == 503 and response.headers.getRawHeaders("retry-after") == ["5"]
    assert json.loads(body) == {"error": "share store X is not ready yet (starting)"}


def test_without_a_ready_store_the_dashboard_and_lists_show_live_figures(bus: EventBus) -> None:
    from twisted.internet.defer import fail

    from sv2proxy.store.batched import StoreNotReady

    store = FakeStore()
    for query in ("worker_stats", "blocks", "upstream_events", "hash_rate_history"):
        setattr(store, query, lambda *_: fail(StoreNotReady("share store X is not ready yet (failing: refused)")))
    context, bus, _ = make_context(store=store)
    bus.publish(ShareSubmitted(1, 1, "alice", 1.0, True))
    client = Client(context)
    workers = client.json("/api/v1/workers")
    assert [(w["name"], w["accepted"], w["stored"]) for w in workers] == [("alice", 1, None)]
    assert client.json("/api/v1/blocks") == []
    response, body = client.get("/")
    assert response.code == 200 and b"alice" in body


# -- metrics and dashboard ---------------------------------------------------------------------


def test_metrics(client: Client, bus: EventBus) -> None:
    bus.publish(HandshakeFailed("p", "timeout"))
    response, body = client.get("/metrics")
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type")[0].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert {s.labels["kind"]: s.value for s in families["sv2proxy_noise_handshake_failures"].samples} == {
        "invalid": 0.0, "timeout": 1.0,
    }
    assert families["sv2proxy_channels"].samples[0].value == 2.0


def test_the_dashboard(client: Client, bus: EventBus) -> None:
    bus.publish(ShareSubmitted(1, 1, "alice", 1.0, True))
    response, body = client.get("/")
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type") == ["text/html; charset=utf-8"]
    page = body.decode()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 3
    assert "No share store: charts show this process&#x27;s last hour only." in page
    assert '<span class="state-connecting">connecting</span>' in page


def test_the_dashboard_span(client: Client) -> None:
    response, body = client.get("/?span=21600")
    assert response.code == 200 and b"last 6.0 h" in body
    assert client.json("/?span=10", 400) == {"error": "span must be from 300 to 604800"}


def test_the_dashboard_with_a_store_reads_its_history(mining: FakeMining) -> None:
    store = FakeStore(
        stats=[WorkerStats("alice", (1.0, 2.0, 3.0, 4.0), 10, 20.0, 1, T0 - 5, {})],
        history=[(T0 - 60, 5e12), (T0 - 30, 6e12)],
    )
    context, _, _ = make_context(mining, store=store)
    response, body = Client(context).get("/?span=600")
    assert response.code == 200
    assert b'data-chart="pool-hash-rate" data-points="2"' in body
    asked = [a for kind, a in store.asked if kind == "hash_rate_history"]
    assert asked == [(600, 60, None), (600, 60, "alice"), (600, 60, "bob")]


# -- the token ---------------------------------------------------------------------------------

TOKEN = "s3cret-t0ken"


@pytest.mark.parametrize("path", ["/", "/api/v1/status", "/metrics", "/api/v1/events", "/nope"])
def test_without_the_token_everything_is_401(live_only: tuple[WebContext, EventBus, Clock], path: str) -> None:
    client = Client(live_only[0], TOKEN)
    response, body = client.get(path)
    assert response.code == 401
    assert response.headers.getRawHeaders("www-authenticate") == ['Bearer realm="sv2proxy"']
    assert json.loads(body) == {"error": "a bearer token is required (Authorization: Bearer TOKEN)"}
    assert client.streams == set()


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Cookie": "sv2proxy_token=wrong"},
    ],
)
def test_a_wrong_token_is_401(live_only: tuple[WebContext, EventBus, Clock], headers: dict[str, str]) -> None:
    response, _ = Client(live_only[0], TOKEN).get("/api/v1/status", headers=headers)
    assert response.code == 401


def test_the_bearer_header_opens_everything(live_only: tuple[WebContext, EventBus, Clock]) -> None:
    client = Client(live_only[0], TOKEN)
    for header in (f"Bearer {TOKEN}", f"bearer {TOKEN}"):
        response, body = client.get("/api/v1/status", headers={"Authorization": header})
        assert response.code == 200 and json.loads(body)["mode"] == "pool"
        assert response.headers.getRawHeaders("set-cookie") is None
    response, _ = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.code == 200


def test_the_token_in_the_query_sets_a_cookie(live_only: tuple[WebContext, EventBus, Clock]) -> None:
    client = Client(live_only[0], TOKEN)
    assert client.get("/?token=wrong")[0].code == 401
    response, body = client.get(f"/?token={TOKEN}")
    assert response.code == 200 and b"<svg" in body
    [cookie] = response.headers.getRawHeaders("set-cookie")
    parts = [part.strip() for part in cookie.split(";")]
    assert parts[0] == f"sv2proxy_token={TOKEN}"
    assert {p.lower() for p in parts[1:]} >= {"path=/", "httponly", "samesite=strict"}
    # A browser then carries the cookie: the API, with no header and no query, answers.
    response, _ = client.get("/api/v1/status", headers={"Cookie": f"sv2proxy_token={TOKEN}"})
    assert response.code == 200
    assert response.headers.getRawHeaders("set-cookie") is None


# -- the event stream --------------------------------------------------------------------------


class Stream:
    """An open ``/api/v1/events`` response and the records read from it so far."""

    def __init__(self, client: Client, query: str = "", **kwargs: Any) -> None:
        self.client = client
        d = client.stub.get(BASE + "/api/v1/events" + query, **kwargs)
        client.stub.flush()
        self.response = result(d)
        self.chunks: list[bytes] = []
        self.done = treq.collect(self.response, self.chunks.append)
        client.stub.flush()

    def read(self) -> bytes:
        self.client.stub.flush()
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data

    def records(self) -> list[tuple[str, dict[str, Any]]]:
        """The events since the last read, as (event name, data)."""
        found = []
        for record in self.read().decode().split("\n\n"):
            lines = record.split("\n")
            if lines[0].startswith("event: "):
                assert len(lines) == 2 and lines[1].startswith("data: "), record
                found.append((lines[0][len("event: "):], json.loads(lines[1][len("data: "):])))
        return found


def test_events_stream_as_server_sent_events(client: Client, bus: EventBus, clock: Clock) -> None:
    stream = Stream(client)
    assert stream.response.code == 200
    assert stream.response.headers.getRawHeaders("content-type") == ["text/event-stream; charset=utf-8"]
    assert stream.response.headers.getRawHeaders("x-accel-buffering") == ["no"]
    assert stream.read() == b"retry: 3000\n: sv2proxy events\n\n"

    clock.advance(2)
    bus.publish(ShareSubmitted(1, 2, "alice", 1.5, True))
    bus.publish(StratumV2MessageReceived(b"\x00\x00\x18", "10.0.0.1:4000"))  # raw frames: never streamed
    bus.publish(MiningPoolConnected("sv2://up:3336"))
    raw = stream.read()
    assert raw.startswith(b'event: ShareSubmitted\ndata: {"type":"ShareSubmitted","at":1800000002.0,')
    assert raw.endswith(b"\n\n")
    assert stream.records() == []  # read() consumed them
    bus.publish(HandshakeFailed("p", "timeout"))
    assert stream.records() == [
        ("HandshakeFailed", {"type": "HandshakeFailed", "at": T0 + 2, "peer": "p", "reason": "timeout"})
    ]
    assert len(client.streams) == 1
    for s in list(client.streams):
        s.close()
    client.stub.flush()
    assert result(stream.done) is None


def test_every_event_is_one_record(client: Client, bus: EventBus) -> None:
    stream = Stream(client)
    stream.read()
    bus.publish(ShareSubmitted(1, 2, "alice\nevent: Fake", 1.0, True))  # JSON escapes the newline
    bus.publish(MiningPoolConnected("sv2://up:3336"))
    assert [(name, data.get("worker")) for name, data in stream.records()] == [
        ("ShareSubmitted", "alice\nevent: Fake"),
        ("MiningPoolConnected", None),
    ]
    for s in list(client.streams):
        s.close()


def test_the_types_filter(client: Client, bus: EventBus) -> None:
    stream = Stream(client, "?types=BlockMined,%20MiningPoolConnected,,StratumV2MessageReceived")
    bus.publish(ShareSubmitted(1, 2, "alice", 1.0, True))
    bus.publish(BlockMined("aa" * 32, worker="alice"))
    bus.publish(StratumV2MessageReceived(b"\x01", "p"))  # asked for, still never streamed
    bus.publish(MiningPoolConnected("sv2://up:3336"))
    assert [name for name, _ in stream.records()] == ["BlockMined", "MiningPoolConnected"]
    for s in list(client.streams):
        s.close()


def test_each_event_is_serialized_once_for_every_stream(
    client: Client, bus: EventBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents: list[str] = []
    real = resources.event_document

    def counting(event: Any, at: float) -> dict[str, Any]:
        documents.append(type(event).__name__)
        return real(event, at)

    monkeypatch.setattr(resources, "event_document", counting)
    streams = [Stream(client), Stream(client), Stream(client, "?types=ShareSubmitted"), Stream(client, "?types=X")]
    for stream in streams:
        stream.read()
    bus.publish(ShareSubmitted(1, 2, "alice", 1.0, True))
    bus.publish(MiningPoolConnected("sv2://up:3336"))
    bus.publish(HandshakeFailed("p", "timeout"))
    assert documents == ["ShareSubmitted", "MiningPoolConnected", "HandshakeFailed"]
    records = [stream.read() for stream in streams]
    assert records[0] == records[1] and records[0].count(b"event: ") == 3
    assert records[2].count(b"event: ") == 1 and records[2] in records[0]
    assert records[3] == b""
    for s in list(client.streams):
        s.close()


def test_nobody_listening_costs_no_serializing(
    client: Client, bus: EventBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents: list[object] = []
    monkeypatch.setattr(resources, "event_document", lambda event, at: documents.append(event) or {})
    stream = Stream(client, "?types=BlockMined")
    bus.publish(ShareSubmitted(1, 2, "alice", 1.0, True))
    for s in list(client.streams):
        s.close()
    bus.publish(BlockMined("aa" * 32, worker="alice"))  # no stream open: not even subscribed
    assert documents == []
    assert stream.read().count(b"event: ") == 0


def test_event_streams_are_capped(client: Client) -> None:
    streams = [Stream(client) for _ in range(MAX_EVENT_STREAMS)]
    assert all(stream.response.code == 200 for stream in streams)
    assert client.json("/api/v1/events", 503) == {"error": f"too many event streams open (at most {MAX_EVENT_STREAMS})"}
    assert len(client.streams) == MAX_EVENT_STREAMS
    next(iter(client.streams)).close()
    assert Stream(client).response.code == 200  # a place came free
    for s in list(client.streams):
        s.close()


def test_keepalives_on_the_clock(client: Client, clock: Clock) -> None:
    stream = Stream(client)
    stream.read()
    clock.advance(KEEPALIVE_INTERVAL - 0.1)
    assert stream.read() == b""
    clock.advance(0.1)
    assert stream.read() == b": keepalive\n\n"
    clock.pump([KEEPALIVE_INTERVAL, KEEPALIVE_INTERVAL])
    assert stream.read() == b": keepalive\n\n: keepalive\n\n"
    for s in list(client.streams):
        s.close()
    assert clock.getDelayedCalls() == []


def test_service_stop_closes_the_streams(live_only: tuple[WebContext, EventBus, Clock]) -> None:
    context, bus, clock = live_only
    service = WebService("tcp:0:interface=127.0.0.1", context, reactor=None)  # never started: no port
    stub = StubTreq(service.site.resource)
    client = Client(context)
    client.stub = stub
    first, second = Stream(client), Stream(client, "?types=BlockMined")
    assert len(service.streams) == 2
    assert not first.done.called and not second.done.called

    assert result(service.stopService()) is None
    stub.flush()
    assert result(first.done) is None and result(second.done) is None
    assert service.streams == set()
    assert clock.getDelayedCalls() == []
    bus.publish(BlockMined("aa" * 32, worker="alice"))  # nobody writes to a finished request
    stub.flush()


def raw_stream(context: WebContext) -> tuple[set[EventStream], Any, StringTransport]:
    """An event stream over a bare HTTP channel, to lose the connection or press back."""
    root = Root(context, Metrics(context), None)
    site = Site(root)
    channel = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    channel.dataReceived(b"GET /api/v1/events HTTP/1.1\r\nHost: localhost:8080\r\n\r\n")
    streams = root.broadcaster.streams
    assert transport.value().startswith(b"HTTP/1.1 200 OK\r\n")
    transport.clear()
    return streams, channel, transport


def test_a_client_going_away_ends_its_stream(live_only: tuple[WebContext, EventBus, Clock]) -> None:
    context, bus, clock = live_only
    streams, channel, transport = raw_stream(context)
    assert len(streams) == 1 and clock.getDelayedCalls() != []
    channel.connectionLost(Failure(ConnectionDone()))
    assert streams == set()
    assert clock.getDelayedCalls() == []
    bus.publish(ShareSubmitted(1, 2, "alice", 1.0, True))
    assert transport.value() == b""


def test_a_slow_client_loses_events_not_memory(live_only: tuple[WebContext, EventBus, Clock]) -> None:
    context, bus, _ = live_only
    streams, channel, transport = raw_stream(context)
    transport.producer.pauseProducing()
    for _ in range(3):
        bus.publish(ShareSubmitted(1, 2, "alice", 1.0, True))
    assert transport.value() == b""
    transport.producer.resumeProducing()
    assert b": dropped 3 events (slow client)\n\n" in transport.value()
    transport.clear()
    bus.publish(ShareSubmitted(1, 2, "alice", 1.0, True))
    assert b"event: ShareSubmitted\n" in transport.value()
    channel.connectionLost(Failure(ConnectionDone()))
    assert streams == set()
