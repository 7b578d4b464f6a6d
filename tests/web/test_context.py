"""WebContext's store reads: identical questions in flight share one query, answers are reused
for a few seconds, and a dashboard whose browser has left asks nothing more."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.server import Site

from sv2proxy.store.records import BlockRecord, WorkerStats
from sv2proxy.web.context import STORE_CACHE_ENTRIES, STORE_CACHE_SECONDS
from sv2proxy.web.metrics import Metrics
from sv2proxy.web.resources import Root

from .fakes import T0, FakeChannel, FakeMining, FakeStore, make_context


@dataclass
class SlowStore(FakeStore):
    """A store whose queries answer only when the test says (the reader thread is busy)."""

    waiting: list[tuple[str, Any, Deferred[Any]]] = field(default_factory=list)

    def _later(self, kind: str, key: Any) -> Deferred[Any]:
        self.asked.append((kind, key))
        d: Deferred[Any] = Deferred()
        self.waiting.append((kind, key, d))
        return d

    def worker_stats(self, now: float, worker: str | None = None) -> Deferred[list[WorkerStats]]:
        return self._later("worker_stats", worker)

    def blocks(self, limit: int = 50) -> Deferred[list[BlockRecord]]:
        return self._later("blocks", limit)

    def payouts(self, window: int) -> Deferred[list[tuple[str, float, float]]]:
        return self._later("payouts", window)

    def hash_rate_history(
        self, now: float, span: float, buckets: int, worker: str | None = None
    ) -> Deferred[list[tuple[float, float]]]:
        return self._later("hash_rate_history", (span, buckets, worker))

    def answer(self, value: Any) -> None:
        kind, key, d = self.waiting.pop(0)
        d.callback(value)


def collect(d: Deferred[Any]) -> list[Any]:
    fired: list[Any] = []
    d.addBoth(fired.append)
    return fired


STATS = [WorkerStats("alice", (1.0, 2.0, 3.0, 4.0), 10, 20.0, 1, T0 - 5, {})]


def test_identical_questions_in_flight_share_one_query() -> None:
    store = SlowStore()
    context, _, _ = make_context(store=store)
    first = collect(Deferred.fromCoroutine(context.workers()))
    second = collect(Deferred.fromCoroutine(context.workers()))
    other = collect(Deferred.fromCoroutine(context.workers("alice")))  # another question: its own query
    assert store.asked == [("worker_stats", None), ("worker_stats", "alice")]
    assert first == second == other == []
    store.answer(STATS)
    assert first == second and first[0][0]["stored"]["shares_24h"] == 10
    store.answer(STATS)
    assert other[0][0]["name"] == "alice"


def test_an_answer_is_reused_for_a_few_seconds() -> None:
    store = SlowStore()
    context, _, clock = make_context(store=store)
    collect(Deferred.fromCoroutine(context.payouts(500)))
    store.answer([("alice", 1.0, 1.0)])
    clock.advance(STORE_CACHE_SECONDS - 0.1)
    again = collect(Deferred.fromCoroutine(context.payouts(500)))
    assert again[0]["workers"] == [{"worker": "alice", "difficulty": 1.0, "fraction": 1.0}]
    assert store.asked == [("payouts", 500)]
    clock.advance(0.1)
    later = collect(Deferred.fromCoroutine(context.payouts(500)))
    assert store.asked == [("payouts", 500), ("payouts", 500)] and later == []
    store.answer([])
    assert later[0]["workers"] == []


def test_a_failure_reaches_every_caller_and_is_not_reused() -> None:
    store = SlowStore()
    context, _, _ = make_context(store=store)
    first = collect(Deferred.fromCoroutine(context.blocks()))
    second = collect(Deferred.fromCoroutine(context.blocks()))
    store.waiting.pop(0)[2].errback(Failure(RuntimeError("database is locked")))
    assert all(isinstance(r[0], Failure) and r[0].check(RuntimeError) for r in (first, second))
    third = collect(Deferred.fromCoroutine(context.blocks()))
    assert store.asked == [("blocks", 100), ("blocks", 100)]
    store.answer([])
    assert third == [[]]


def test_a_query_that_raises_does_not_wedge_its_question() -> None:
    class Raising(FakeStore):
        def blocks(self, limit: int = 50) -> Deferred[list[BlockRecord]]:
            raise RuntimeError("closed")

    context, _, _ = make_context(store=Raising())
    for _ in range(2):
        [failure] = collect(Deferred.fromCoroutine(context.blocks()))
        assert isinstance(failure, Failure) and failure.check(RuntimeError)


def test_the_cache_is_bounded_forgetting_the_oldest() -> None:
    store = FakeStore()
    context, _, _ = make_context(store=store)
    names = [f"rig{i}" for i in range(STORE_CACHE_ENTRIES + 1)]
    for name in names:
        collect(Deferred.fromCoroutine(context.workers(name)))
    store.asked.clear()
    collect(Deferred.fromCoroutine(context.workers(names[-1])))
    collect(Deferred.fromCoroutine(context.workers(names[1])))
    assert store.asked == []  # still remembered
    collect(Deferred.fromCoroutine(context.workers(names[0])))
    assert store.asked == [("worker_stats", "rig0")]  # forgotten for room


@pytest.mark.parametrize("leave_after", [1, 2, 3])
def test_a_dashboard_whose_client_left_asks_nothing_more(leave_after: int) -> None:
    store = SlowStore()
    mining = FakeMining([FakeChannel(1, "alice")], {1: 1e12})
    context, _, _ = make_context(mining, store=store)
    channel = Site(Root(context, Metrics(context), None)).buildProtocol(None)
    transport = StringTransport(hostAddress=IPv4Address("TCP", "127.0.0.1", 8080))
    channel.makeConnection(transport)
    channel.dataReceived(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    answers: list[Any] = [STATS, [], []]
    for step in range(leave_after):
        if step == leave_after - 1:
            channel.connectionLost(Failure(ConnectionDone()))
        store.answer(answers[step])
    assert len(store.asked) == leave_after  # the query under way ran out; none after it started
    assert store.waiting == []
    assert transport.value() == b""
