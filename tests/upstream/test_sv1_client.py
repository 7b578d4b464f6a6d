"""Sv1UpstreamProtocol over a StringTransport: what it writes, what it hands the mining service,
what it tells its listener, and when it gives up on a Stratum V1 pool (Clock-timed)."""

from __future__ import annotations

import json

import pytest
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from sv2proxy.pool.jobs import PrevHash
from sv2proxy.sv1 import notify, reconnect, result, set_difficulty, set_extranonce, subscribe_result
from sv2proxy.upstream.link import ANSWER_TIMEOUT
from sv2proxy.upstream.sv1_client import Sv1UpstreamProtocol
from sv2proxy.upstream.sv1_session import Authorized, Sv1UpstreamSession

from .fakes import FakeMining, share

EXTRANONCE1 = b"\xf0\x0d"
PREV = bytes(range(32))
NTIME = 1_700_000_000


def job(job_id: str, clean: bool = True) -> bytes:
    return notify(job_id, PREV, b"\x01" * 40, b"\x02" * 60, (), 0x20000000, 0x1D00FFFF, NTIME, clean)


class Listener:
    def __init__(self) -> None:
        self.heard: list[tuple] = []

    def link_up(self, protocol) -> None:
        self.heard.append(("up",))

    def channel_opened(self, protocol, opened) -> None:
        assert isinstance(opened, Authorized)
        self.heard.append(("ready", opened.extranonce1))

    def reconnect_requested(self, protocol, host: str, port: int, wait: float = 0.0) -> None:
        self.heard.append(("reconnect", host, port, wait))

    def link_lost(self, protocol, reason: str) -> None:
        self.heard.append(("lost", reason))


class Link:
    """A protocol on a StringTransport, its clock, mining stand-in and listener."""

    def __init__(self, stall_timeout: float = 120.0, open_timeout: float = 30.0, **session) -> None:
        self.clock = Clock()
        self.mining = FakeMining()
        self.listener = Listener()
        options = {"min_extranonce2_size": 6}
        options.update(session)
        self.protocol = Sv1UpstreamProtocol(
            Sv1UpstreamSession("proxy", "x", "10.0.0.1", 3333, **options),
            self.mining,
            self.clock,
            self.listener,
            "pool-v1",
            stall_timeout,
            open_timeout,
        )
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def feed(self, *lines: bytes) -> None:
        self.protocol.dataReceived(b"".join(lines))

    def sent(self) -> list[dict]:
        lines = self.transport.value().splitlines()
        self.transport.clear()
        return [json.loads(raw) for raw in lines]

    def ready(self) -> None:
        self.feed(
            result(1, {"version-rolling": True, "version-rolling.mask": "1fffe000"}),
            subscribe_result(2, "s", EXTRANONCE1, 8),
            result(4, True),
        )
        self.sent()

    def lose(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionDone("closed by the test")))


def test_a_link_subscribes_authorizes_and_then_gives_work_in_order():
    link = Link()
    assert link.listener.heard == [("up",)]
    assert [m["method"] for m in link.sent()] == ["mining.configure", "mining.subscribe"]
    link.feed(subscribe_result(2, "s", EXTRANONCE1, 8), set_difficulty(4), job("j1"))
    assert [m["method"] for m in link.sent()] == ["mining.extranonce.subscribe", "mining.authorize"]
    assert link.mining.calls == [] and link.listener.heard == [("up",)]  # nothing before the worker is taken
    link.feed(result(4, True), job("j2", clean=False))
    # The extranonce space is set before the first work; the job kept from before is the tip.
    assert link.mining.names() == ["set_extranonce_space", "new_tip", "new_work"]
    assert link.mining.calls[0][1] == (EXTRANONCE1, 10)
    work, prev = link.mining.calls[1][1]
    assert (work.source_id, work.future, prev) == (1, True, PrevHash(PREV, NTIME, 0x1D00FFFF))
    assert link.listener.heard == [("up",), ("ready", EXTRANONCE1)]
    link.feed(set_extranonce(b"\x01\x02\x03", 9))
    assert link.mining.calls[-1] == ("set_extranonce_space", (b"\x01\x02\x03", 12))
    assert not link.transport.disconnecting


def test_shares_go_to_the_pool_as_mining_submit_and_their_answers_are_taken_in():
    link = Link()
    link.ready()
    link.feed(job("j1"))
    link.protocol.forward_share(share(1, EXTRANONCE1 + bytes(8)))
    link.protocol.forward_share(share(1, EXTRANONCE1 + bytes(8), is_block=True))
    link.protocol.update_channel(1e12)  # V1 has nothing to say it with
    [first, block] = link.sent()
    assert first == {
        "id": 5,
        "method": "mining.submit",
        "params": ["proxy", "j1", "0000000000000000", f"{NTIME:08x}", "0000002a", "00000000"],
    }
    assert block["id"] == 6
    link.feed(result(5, True), b'{"id":6,"result":null,"error":[21,"Stale",null]}\n')
    session = link.protocol.session
    assert (session.accepted, dict(session.rejected), session.in_flight) == (1, {"stale-share": 1}, 0)


def test_work_the_mining_service_refuses_is_logged_not_fatal():
    link = Link()
    link.ready()
    link.mining.refuse_work = True
    link.feed(job("j1"), job("j2", clean=False))
    assert not link.transport.disconnecting


def test_a_fatal_answer_drops_the_link_with_its_reason():
    link = Link()
    link.feed(b'{"id":2,"result":null,"error":[20,"full",null]}\n')
    assert link.transport.disconnecting
    link.lose()
    assert link.listener.heard[-1] == ("lost", "the pool refused mining.subscribe: 20 full")
    assert link.clock.getDelayedCalls() == []


def test_an_over_long_line_drops_the_link():
    link = Link(max_line_length=1000)
    link.ready()
    link.feed(b"{" * 1001)
    assert link.transport.disconnecting
    link.lose()
    assert "exceeded 1000 bytes" in link.listener.heard[-1][1]


def test_an_extranonce_space_the_miners_cannot_use_drops_the_link_before_any_work():
    link = Link()
    link.mining.refuse_space = "the per-channel bytes do not fit"
    link.feed(subscribe_result(2, "s", EXTRANONCE1, 8), job("j1"), result(4, True), job("j2"))
    assert link.transport.disconnecting and link.mining.calls == []
    assert ("ready", EXTRANONCE1) not in link.listener.heard
    link.lose()
    assert "does not fit our miners" in link.listener.heard[-1][1]


def test_a_pool_that_answers_no_submit_is_dropped_though_it_sends_jobs():
    link = Link(stall_timeout=120.0)
    link.ready()
    link.feed(job("j1"))
    link.protocol.forward_share(share(1, EXTRANONCE1 + bytes(8)))  # request 5
    link.protocol.forward_share(share(1, EXTRANONCE1 + bytes(8)))  # request 6
    link.feed(result(5, True))
    link.clock.advance(ANSWER_TIMEOUT - 0.1)
    link.feed(job("j2", clean=False))
    assert not link.transport.disconnecting
    link.clock.advance(0.1)
    assert link.transport.disconnecting
    link.lose()
    assert link.listener.heard[-1] == ("lost", f"no answer to a share for {ANSWER_TIMEOUT:.0f} s")
    assert link.clock.getDelayedCalls() == []


def test_client_reconnect_tells_the_listener_and_closes_gracefully():
    link = Link()
    link.ready()
    link.feed(reconnect("10.9.9.9", 4444, 3), job("j1"))
    assert link.listener.heard[-1] == ("reconnect", "10.9.9.9", 4444, 3.0)
    assert link.transport.disconnecting and link.mining.names() == ["set_extranonce_space"]  # nothing after it
    link.protocol.forward_share(share(1, EXTRANONCE1 + bytes(8)))
    assert link.sent() == []
    link.lose()
    assert link.listener.heard[-1] == ("lost", "the pool asked us to reconnect to 10.9.9.9:4444")


def test_a_silent_pool_is_dropped_after_the_stall_timeout_and_garbage_is_silence():
    link = Link(stall_timeout=120.0, open_timeout=1000.0)
    link.ready()
    link.clock.advance(100)
    link.feed(job("j1"))  # heard at 100 s: the deadline moves to 220 s
    link.clock.advance(60)
    link.feed(b"garbage\n", b'{"id":null,"method":"client.show_message","params":["hi"]}\n')
    link.clock.advance(59)
    assert not link.transport.disconnecting
    link.clock.advance(1)
    assert link.transport.disconnecting
    link.lose()
    assert link.listener.heard[-1] == ("lost", "no message for 120 s")
    assert link.clock.getDelayedCalls() == []


def test_a_pool_that_does_not_authorize_us_in_time_is_dropped():
    link = Link(open_timeout=30.0)
    link.feed(subscribe_result(2, "s", EXTRANONCE1, 8))
    link.clock.advance(29.9)
    assert not link.transport.disconnecting
    link.clock.advance(0.1)
    assert link.transport.disconnecting
    link.lose()
    assert link.listener.heard[-1] == ("lost", "not authorized within 30 s (awaiting the mining.authorize result)")


def test_authorization_cancels_the_open_deadline_and_a_loss_every_timer():
    link = Link()
    link.ready()
    assert len(link.clock.getDelayedCalls()) == 1  # the stall check only
    link.lose()
    assert link.clock.getDelayedCalls() == []
    assert link.listener.heard[-1] == ("lost", "Connection was closed cleanly: closed by the test.")


def test_nothing_is_read_once_the_link_is_closing():
    link = Link()
    link.ready()
    link.protocol.close("test")
    link.feed(job("j1"))
    assert link.mining.names() == ["set_extranonce_space"]


def test_timeouts_must_be_positive():
    with pytest.raises(ValueError):
        Sv1UpstreamProtocol(Sv1UpstreamSession("x"), FakeMining(), Clock(), Listener(), "w", stall_timeout=0)
