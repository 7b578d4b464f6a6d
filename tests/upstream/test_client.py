"""UpstreamProtocol over a StringTransport: what it writes, what it hands the mining service,
what it tells its listener, and when it gives up on a pool (Clock-timed)."""

from __future__ import annotations

import pytest
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from sv2proxy.codec.common import Reconnect, SetupConnection, SetupConnectionError, SetupConnectionSuccess
from sv2proxy.codec.extensions import RequestExtensions
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import (
    NewExtendedMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    SetExtranoncePrefix,
    SetNewPrevHash,
    SetTarget,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSharesSuccess,
    UpdateChannel,
)
from sv2proxy.pool.jobs import PrevHash
from sv2proxy.upstream.client import UpstreamProtocol
from sv2proxy.upstream.link import ANSWER_TIMEOUT, CLOSE_TIMEOUT
from sv2proxy.upstream.session import ANY_TARGET, ChannelOpened, UpstreamSession

from .fakes import FakeMining, share, written

PREFIX = b"\xaa\xbb"
TARGET = (1 << 240).to_bytes(32, "little")
PREV = SetNewPrevHash(5, 1, bytes(range(32)), 1_700_000_000, 0x1D00FFFF)


def job(job_id: int, min_ntime: int | None = None) -> NewExtendedMiningJob:
    return NewExtendedMiningJob(5, job_id, min_ntime, 0x20000000, True, (), b"\x01" * 40, b"\x02" * 60)


class Listener:
    def __init__(self) -> None:
        self.heard: list[tuple] = []

    def link_up(self, protocol) -> None:
        self.heard.append(("up",))

    def channel_opened(self, protocol, opened: ChannelOpened) -> None:
        self.heard.append(("opened", opened.channel_id))

    def reconnect_requested(self, protocol, host: str, port: int, wait: float = 0.0) -> None:
        self.heard.append(("reconnect", host, port))

    def link_lost(self, protocol, reason: str) -> None:
        self.heard.append(("lost", reason))


class Link:
    """A protocol on a StringTransport, its clock, mining stand-in and listener."""

    def __init__(self, stall_timeout: float = 120.0, open_timeout: float = 30.0) -> None:
        self.clock = Clock()
        self.mining = FakeMining()
        self.listener = Listener()
        session = UpstreamSession("proxy", 1e9, 6, "10.0.0.1", 3333)
        self.protocol = UpstreamProtocol(
            session, self.mining, self.clock, self.listener, "pool-a", stall_timeout, open_timeout
        )
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def feed(self, *messages: Message) -> None:
        # Through the framing, as bytes from a socket.
        self.protocol.dataReceived(b"".join(m.to_frame() for m in messages))

    def sent(self) -> list[Message]:
        messages = written(self.transport.value())
        self.transport.clear()
        return messages

    def open(self) -> None:
        self.feed(SetupConnectionSuccess(2, 0), OpenExtendedMiningChannelSuccess(1, 5, TARGET, 8, PREFIX, 7))
        self.sent()

    def lose(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionDone("closed by the test")))


def test_a_link_sets_up_opens_its_channel_and_then_gives_work_in_order():
    link = Link()
    assert link.listener.heard == [("up",)]
    [setup] = link.sent()
    assert isinstance(setup, SetupConnection) and (setup.endpoint_host, setup.endpoint_port) == ("10.0.0.1", 3333)
    link.feed(SetupConnectionSuccess(2, 0))
    [extensions, request] = link.sent()
    assert isinstance(extensions, RequestExtensions) and isinstance(request, OpenExtendedMiningChannel)
    link.feed(
        OpenExtendedMiningChannelSuccess(1, 5, TARGET, 8, PREFIX, 7),
        job(1),
        PREV,
        job(2, min_ntime=1_700_000_010),
    )
    # The extranonce space is set before the channel's first work.
    assert link.mining.names() == ["set_extranonce_space", "new_work", "new_prev_hash", "new_work"]
    assert link.mining.calls[0][1] == (PREFIX, 10)
    assert link.mining.calls[2][1] == (1, PrevHash(bytes(range(32)), 1_700_000_000, 0x1D00FFFF))
    assert link.listener.heard == [("up",), ("opened", 5)]
    link.feed(SetExtranoncePrefix(5, b"\x01\x02\x03"), SetTarget(5, ANY_TARGET))
    assert link.mining.calls[-1] == ("set_extranonce_space", (b"\x01\x02\x03", 11))
    assert not link.transport.disconnecting


def test_shares_go_to_the_pool_and_its_answers_are_taken_in():
    link = Link()
    link.open()
    link.feed(job(1), PREV)
    link.protocol.forward_share(share(1, PREFIX + bytes(8)))
    link.protocol.forward_share(share(1, PREFIX + bytes(8), is_block=True))
    assert link.sent() == [
        SubmitSharesExtended(5, 0, 1, 42, 1_700_000_000, 0x20000000, bytes(8)),
        SubmitSharesExtended(5, 1, 1, 42, 1_700_000_000, 0x20000000, bytes(8)),
    ]
    link.feed(SubmitSharesError(5, 0, "stale-share"), SubmitSharesSuccess(5, 1, 1, 1))
    session = link.protocol.session
    assert (session.accepted, dict(session.rejected), session.in_flight) == (1, {"stale-share": 1}, 0)
    link.protocol.update_channel(2.0**40)
    assert link.sent() == [UpdateChannel(5, 2.0**40, ANY_TARGET)]


def test_work_the_mining_service_refuses_is_logged_not_fatal():
    link = Link()
    link.open()
    link.mining.refuse_work = True
    link.feed(job(1))
    assert not link.transport.disconnecting


def test_a_fatal_answer_drops_the_link_with_its_reason():
    link = Link()
    link.feed(SetupConnectionError(0, "unsupported-protocol"))
    assert link.transport.disconnecting
    link.lose()
    assert link.listener.heard[-1] == ("lost", "the pool refused SetupConnection: 'unsupported-protocol' (flags 0x0)")
    assert link.clock.getDelayedCalls() == []


def test_an_extranonce_space_the_miners_cannot_use_drops_the_link_before_any_work():
    link = Link()
    link.mining.refuse_space = "the per-channel bytes do not fit"
    link.feed(SetupConnectionSuccess(2, 0), OpenExtendedMiningChannelSuccess(1, 5, TARGET, 8, PREFIX, 7), job(1))
    assert link.transport.disconnecting and link.mining.calls == []
    assert ("opened", 5) not in link.listener.heard
    link.lose()
    assert "does not fit our miners" in link.listener.heard[-1][1]


def test_a_reconnect_tells_the_listener_and_closes_gracefully():
    link = Link()
    link.open()
    link.feed(Reconnect("10.9.9.9", 4444), job(1))
    assert link.listener.heard[-1] == ("reconnect", "10.9.9.9", 4444)
    assert link.transport.disconnecting and link.mining.names() == ["set_extranonce_space"]  # nothing after it
    link.protocol.forward_share(share(1, PREFIX + bytes(8)))
    assert link.sent() == []
    link.lose()
    assert link.listener.heard[-1] == ("lost", "the pool asked us to reconnect to 10.9.9.9:4444")


def test_a_graceful_close_is_aborted_when_the_pool_does_not_read():
    link = Link()
    aborted: list[bool] = []
    link.transport.abortConnection = lambda: aborted.append(True)  # type: ignore[method-assign]
    link.open()
    link.feed(Reconnect("10.9.9.9", 4444))
    assert link.transport.disconnecting and aborted == []
    link.clock.advance(CLOSE_TIMEOUT - 0.1)
    assert aborted == []
    link.clock.advance(0.1)
    assert aborted == [True]
    link.lose()
    assert link.clock.getDelayedCalls() == []
    # A pool that reads: the deadline goes with the link.
    link = Link()
    link.open()
    link.protocol.close("the daemon is stopping", abort=False)
    assert len(link.clock.getDelayedCalls()) == 1
    link.lose()
    assert link.clock.getDelayedCalls() == []


def test_a_pool_that_answers_no_share_is_dropped_though_it_sends_jobs():
    link = Link(stall_timeout=120.0)
    link.open()
    link.feed(job(1), PREV)
    link.protocol.forward_share(share(1, PREFIX + bytes(8)))  # sequence 0, at 0 s
    link.clock.advance(20)
    link.protocol.forward_share(share(1, PREFIX + bytes(8)))  # sequence 1, at 20 s
    link.feed(SubmitSharesSuccess(5, 0, 1, 1))  # the first is answered: the second is the oldest
    link.clock.advance(ANSWER_TIMEOUT - 20)
    assert not link.transport.disconnecting
    link.feed(job(2))  # jobs keep coming: the stall deadline alone would wait
    link.clock.advance(19.9)
    assert not link.transport.disconnecting
    link.clock.advance(0.1)
    assert link.transport.disconnecting
    link.lose()
    assert link.listener.heard[-1] == ("lost", f"no answer to a share for {ANSWER_TIMEOUT:.0f} s")
    assert link.clock.getDelayedCalls() == []


def test_answered_shares_leave_no_answer_deadline_behind():
    link = Link()
    link.open()
    link.feed(job(1), PREV)
    link.protocol.forward_share(share(1, PREFIX + bytes(8)))
    link.feed(SubmitSharesSuccess(5, 0, 1, 1))
    link.clock.advance(ANSWER_TIMEOUT)
    assert not link.transport.disconnecting
    assert len(link.clock.getDelayedCalls()) == 1  # the stall check only


def test_a_silent_pool_is_dropped_after_the_stall_timeout():
    link = Link(stall_timeout=120.0, open_timeout=1000.0)
    link.open()
    link.clock.advance(100)
    link.feed(job(1))  # heard at 100 s: the deadline moves to 220 s
    link.clock.advance(119)
    assert not link.transport.disconnecting
    link.clock.advance(1)
    assert link.transport.disconnecting
    link.lose()
    assert link.listener.heard[-1] == ("lost", "no message for 120 s")
    assert link.clock.getDelayedCalls() == []


def test_a_pool_that_does_not_open_our_channel_in_time_is_dropped():
    link = Link(open_timeout=30.0)
    link.feed(SetupConnectionSuccess(2, 0))
    link.clock.advance(29.9)
    assert not link.transport.disconnecting
    link.clock.advance(0.1)
    assert link.transport.disconnecting
    link.lose()
    assert link.listener.heard[-1] == (
        "lost",
        "no channel open within 30 s (awaiting OpenExtendedMiningChannel.Success)",
    )


def test_an_open_channel_cancels_the_open_deadline_and_a_loss_every_timer():
    link = Link()
    link.open()
    assert len(link.clock.getDelayedCalls()) == 1  # the stall check only
    link.lose()
    assert link.clock.getDelayedCalls() == []
    assert link.listener.heard[-1] == ("lost", "Connection was closed cleanly: closed by the test.")


def test_timeouts_must_be_positive():
    with pytest.raises(ValueError):
        UpstreamProtocol(UpstreamSession("x", 1, 1), FakeMining(), Clock(), Listener(), "w", stall_timeout=0)
