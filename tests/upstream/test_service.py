"""UpstreamService on a MemoryReactorClock: failover order, wrap-around, backoff timing, stalls,
Reconnect, one channel per connection, share forwarding, UpdateChannel, events and shutdown;
and lists that mix Stratum V1 and V2 pools."""

from __future__ import annotations

import json

import pytest
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure

from sv2proxy.codec.common import Reconnect, SetupConnection, SetupConnectionError, SetupConnectionSuccess
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import (
    CloseChannel,
    NewExtendedMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    SetNewPrevHash,
    SubmitSharesExtended,
    UpdateChannel,
)
from sv2proxy.config import PoolProtocol, PoolUrl, load_config
from sv2proxy.events import Event, EventBus, MiningPoolConnected, MiningPoolDisconnected
from sv2proxy.noise.handshake import ACT1_SIZE
from sv2proxy.noise.keys import AuthorityKey
from sv2proxy.server.mining import MiningService
from sv2proxy.sv1 import notify, reconnect, result, subscribe_result
from sv2proxy.tap import upstream_service
from sv2proxy.upstream.client import UpstreamProtocol
from sv2proxy.upstream.service import (
    INITIAL_RETRY_DELAY,
    MAX_REDIRECTS,
    MAX_RETRY_DELAY,
    STABLE_AFTER,
    UpstreamService,
    default_retry_policy,
    redirected,
)
from sv2proxy.upstream.sv1_client import Sv1UpstreamProtocol
from sv2proxy.upstream.sv1_session import Sv1UpstreamSession

from .fakes import FakeMining, share, written

PREFIX = b"\xaa\xbb"
TARGET = (1 << 240).to_bytes(32, "little")
DELAYS = (1.0, 2.0, 4.0, 8.0)


def url(n: int, key: bytes | None = None) -> PoolUrl:
    return PoolUrl(f"stratum2+tcp://10.0.0.{n}:{3330 + n}", PoolProtocol.V2, f"10.0.0.{n}", 3330 + n, key)


def v1_url(n: int) -> PoolUrl:
    return PoolUrl(f"stratum+tcp://10.0.1.{n}:{3340 + n}", PoolProtocol.V1, f"10.0.1.{n}", 3340 + n, None)


URLS = (url(1), url(2), url(3))
V1_EXTRANONCE1 = b"\xf0\x0d"


class Link:
    """One accepted connection: bytes in, messages out."""

    def __init__(self, protocol, transport: StringTransport) -> None:
        self.protocol = protocol
        self.transport = transport

    def feed(self, *messages: Message) -> None:
        self.protocol.dataReceived(b"".join(m.to_frame() for m in messages))

    def sent(self) -> list[Message]:
        messages = written(self.transport.value())
        self.transport.clear()
        return messages

    def open(self, channel_id: int = 5) -> None:
        self.feed(SetupConnectionSuccess(2, 0), OpenExtendedMiningChannelSuccess(1, channel_id, TARGET, 8, PREFIX, 0))

    def lose(self, why: str = "gone") -> None:
        self.protocol.connectionLost(Failure(ConnectionDone(why)))


class V1Link(Link):
    """One accepted connection to a "Stratum V1 pool": lines in, requests out."""

    def feed(self, *lines: bytes) -> None:  # type: ignore[override]
        self.protocol.dataReceived(b"".join(lines))

    def sent(self) -> list[dict]:  # type: ignore[override]
        lines = self.transport.value().splitlines()
        self.transport.clear()
        return [json.loads(raw) for raw in lines]

    def open(self) -> None:  # type: ignore[override]
        self.feed(subscribe_result(2, "s", V1_EXTRANONCE1, 8), result(4, True))


def inner(link: Link) -> object:
    """The link's own protocol, inside the endpoint's wrapper."""
    return link.protocol._wrappedProtocol


class Harness:
    def __init__(self, urls=URLS, **kwargs) -> None:
        self.reactor = MemoryReactorClock()
        self.mining = FakeMining()
        self.events = EventBus()
        self.published: list[Event] = []
        self.events.subscribe(Event, self.published.append)
        self.asked: list[PoolUrl] = []  # every URL the service connected to, in order

        def endpoint_for(target: PoolUrl) -> TCP4ClientEndpoint:
            self.asked.append(target)
            return TCP4ClientEndpoint(self.reactor, target.host, target.port)

        options = {"allow_plaintext": True, "retry_policy": lambda n: DELAYS[min(n, len(DELAYS) - 1)]}
        options.update(kwargs)
        self.service = UpstreamService(
            urls,
            self.mining,
            self.events,
            self.reactor,
            "proxy.user",
            1e9,
            6,
            60.0,
            endpoint_for=endpoint_for,
            **options,
        )

    def ports(self) -> list[int]:
        return [port for _, port, *_ in self.reactor.tcpClients]

    def refuse(self) -> None:
        factory = self.reactor.tcpClients[-1][2]
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError("no pool here")))

    def accept(self) -> Link:
        factory = self.reactor.tcpClients[-1][2]
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return Link(protocol, transport)

    def accept_v1(self) -> V1Link:
        link = self.accept()
        assert isinstance(inner(link), Sv1UpstreamProtocol)
        return V1Link(link.protocol, link.transport)

    def pool_events(self) -> list[Event]:
        return [e for e in self.published if isinstance(e, MiningPoolConnected | MiningPoolDisconnected)]


def test_the_first_url_is_tried_first_and_its_open_channel_announced():
    h = Harness()
    h.service.startService()
    assert h.mining.share_sink is h.service
    assert h.ports() == [3331]
    link = h.accept()
    [setup] = link.sent()
    assert isinstance(setup, SetupConnection) and (setup.endpoint_host, setup.endpoint_port) == ("10.0.0.1", 3331)
    link.open()
    assert h.pool_events() == [MiningPoolConnected(URLS[0].text)]
    assert h.mining.calls == [("set_extranonce_space", (PREFIX, 10))]
    assert h.service.url == URLS[0] and h.service.session.is_open


def test_failover_goes_down_the_list_with_growing_backoff_and_wraps_around():
    h = Harness()
    h.service.startService()
    expected = [3331]
    for delay, port in zip(DELAYS, (3332, 3333, 3331, 3332), strict=True):
        h.refuse()
        h.reactor.advance(delay - 0.001)
        assert h.ports() == expected  # not before its delay ...
        h.reactor.advance(0.001)
        expected.append(port)
        assert h.ports() == expected  # ... and then to the next URL
    assert h.pool_events() == [] and h.mining.calls == []


def test_a_lost_channel_fails_over_to_the_next_pool_and_drops_the_work():
    h = Harness()
    h.service.startService()
    h.refuse()
    h.reactor.advance(1.0)
    h.refuse()
    h.reactor.advance(2.0)  # two failures in a row: the third attempt came after 2 s
    link = h.accept()  # the third URL
    link.open()
    link.feed(NewExtendedMiningJob(5, 1, None, 0x20000000, True, (), b"\x01", b"\x02"))
    h.reactor.advance(STABLE_AFTER)
    link.lose("pool restarted")
    assert h.service.url is None and h.service.session is None
    assert h.mining.names() == ["set_extranonce_space", "new_work", "drop_work"]
    assert h.pool_events() == [
        MiningPoolConnected(URLS[2].text),
        MiningPoolDisconnected(URLS[2].text, "Connection was closed cleanly: pool restarted."),
    ]
    # A channel that stayed open reset the count: the first delay again, to the same URL once ...
    h.reactor.advance(DELAYS[0])
    assert h.ports() == [3331, 3332, 3333, 3333]
    h.refuse()
    # ... and then the list wraps to the first URL.
    h.reactor.advance(DELAYS[1])
    assert h.ports() == [3331, 3332, 3333, 3333, 3331]


def test_a_link_that_ends_before_its_channel_opens_is_a_failed_attempt():
    h = Harness()
    h.service.startService()
    link = h.accept()
    link.feed(SetupConnectionError(0, "unsupported-protocol"))
    assert link.transport.disconnecting
    link.lose()
    h.reactor.advance(DELAYS[0])
    link = h.accept()
    link.feed(SetupConnectionSuccess(2, 0))
    link.lose()  # gone while opening
    h.reactor.advance(DELAYS[1] - 0.001)
    assert h.ports() == [3331, 3332]
    h.reactor.advance(0.001)
    assert h.ports() == [3331, 3332, 3333]
    assert h.pool_events() == [] and h.mining.calls == []


def test_a_stalled_pool_is_dropped_and_the_next_one_tried():
    h = Harness(stall_timeout=120.0)
    h.service.startService()
    link = h.accept()
    link.open()
    h.reactor.advance(120.0)
    assert link.transport.disconnecting
    link.lose()
    assert h.pool_events()[-1] == MiningPoolDisconnected(URLS[0].text, "no message for 120 s")
    h.reactor.advance(DELAYS[0])
    assert h.ports() == [3331, 3331]  # once more, then the next one
    h.refuse()
    h.reactor.advance(DELAYS[1])
    assert h.ports() == [3331, 3331, 3332]


def test_reconnect_goes_where_the_pool_says_at_once_with_the_same_authority_key():
    key = AuthorityKey.generate().public
    h = Harness(urls=(url(1, key), url(2, key)))
    h.service.startService()
    link = h.accept()
    link.protocol.dataReceived(b"")  # nothing to say before the handshake
    # The Noise initiator speaks first: act 1, not a SetupConnection frame.
    assert len(link.transport.value()) == ACT1_SIZE
    link.lose()  # before the handshake completed: a failed attempt like any other
    assert h.asked[0].authority_key == key
    h.reactor.advance(DELAYS[0])
    assert h.ports() == [3331, 3332] and h.pool_events() == []

    h = Harness()
    h.service.startService()
    link = h.accept()
    link.open()
    link.feed(Reconnect("10.7.7.7", 4444))
    assert link.transport.disconnecting
    link.lose()
    assert h.pool_events()[-1] == MiningPoolDisconnected(
        URLS[0].text, "the pool asked us to reconnect to 10.7.7.7:4444"
    )
    h.reactor.advance(0)
    assert h.ports() == [3331, 4444]
    assert h.asked[-1] == redirected(URLS[0], "10.7.7.7", 4444)
    assert h.asked[-1].text == "stratum2+tcp://10.7.7.7:4444" and h.asked[-1].authority_key is None
    link = h.accept()
    link.open()
    assert h.pool_events()[-1] == MiningPoolConnected("stratum2+tcp://10.7.7.7:4444")
    # When the place it moved us to goes (after one more try), the list resumes after the URL
    # that moved us.
    link.lose()
    h.reactor.advance(DELAYS[0])
    assert h.ports() == [3331, 4444, 4444]
    h.refuse()
    h.reactor.advance(DELAYS[1])
    assert h.ports() == [3331, 4444, 4444, 3332]


def test_a_reconnect_before_the_channel_opens_is_a_failed_attempt():
    h = Harness()
    h.service.startService()
    for n, (port, back) in enumerate(((3331, 4444), (4444, 3331), (3331, 4444))):
        link = h.accept()
        link.feed(SetupConnectionSuccess(2, 0), Reconnect("10.0.0.1", back))  # no channel yet
        link.lose()
        h.reactor.advance(DELAYS[n] - 0.001)
        assert h.ports()[-1] == port  # not at once: the backoff grows ...
        h.reactor.advance(0.001)
        assert h.ports()[-1] == back  # ... and the redirect is still followed
    assert h.pool_events() == []


def test_pools_that_send_us_to_each_other_get_the_backoff_after_a_few_redirects():
    h = Harness()
    h.service.startService()
    delays = [0.0] * MAX_REDIRECTS + list(DELAYS[:2])
    for n, delay in enumerate(delays):
        link = h.accept()
        link.open()
        link.feed(Reconnect("10.0.0.1", 4444 if n % 2 == 0 else 3331))
        link.lose()
        if delay:
            h.reactor.advance(delay - 0.001)
            assert len(h.ports()) == n + 1
        h.reactor.advance(0.001 if delay else 0)
        assert len(h.ports()) == n + 2
    assert h.ports() == [3331, 4444, 3331, 4444, 3331, 4444]
    # A channel that stayed open ends the streak: the next redirect is followed at once again.
    link = h.accept()
    link.open()
    h.reactor.advance(STABLE_AFTER)
    link.feed(Reconnect("10.0.0.1", 3331))
    link.lose()
    h.reactor.advance(0)
    assert h.ports()[-1] == 3331 and len(h.ports()) == 7


def test_a_pool_that_drops_its_channel_at_once_backs_off_until_one_stays_open():
    h = Harness()
    h.service.startService()
    # Each short-lived channel is a failure: the same URL once, then the next, slower each time.
    for n, (port, then) in enumerate(((3331, 3331), (3331, 3332), (3332, 3332), (3332, 3333))):
        link = h.accept()
        link.open()
        link.feed(CloseChannel(5, "going away"))
        assert link.transport.disconnecting
        link.lose()
        h.reactor.advance(DELAYS[n] - 0.001)
        assert h.ports()[-1] == port
        h.reactor.advance(0.001)
        assert h.ports()[-1] == then
    assert h.mining.names().count("drop_work") == 4
    link = h.accept()
    link.open()
    h.reactor.advance(STABLE_AFTER)
    link.lose()
    h.reactor.advance(DELAYS[0])  # stayed open: the backoff starts again
    assert h.ports() == [3331, 3331, 3332, 3332, 3333, 3333]


def test_a_blip_of_a_working_pool_retries_it_before_failing_over():
    h = Harness()
    h.service.startService()
    link = h.accept()
    link.open()
    h.reactor.advance(STABLE_AFTER)
    link.lose("blip")
    h.reactor.advance(DELAYS[0])
    assert h.ports() == [3331, 3331]
    h.accept().open()
    assert h.service.url == URLS[0]
    assert h.pool_events()[-1] == MiningPoolConnected(URLS[0].text)


def test_a_redirect_that_cannot_be_reached_falls_back_to_the_list():
    h = Harness()
    h.service.startService()
    link = h.accept()
    link.open()
    link.feed(Reconnect("", 4444))  # the same host, another port
    link.lose()
    h.reactor.advance(0)
    assert h.asked[-1].host == "10.0.0.1" and h.ports() == [3331, 4444]
    h.refuse()
    h.reactor.advance(DELAYS[0])
    assert h.ports() == [3331, 4444, 3332]


def test_one_channel_per_connection_and_only_shares_for_the_pool_are_forwarded():
    h = Harness()
    h.service.startService()
    h.service.share_accepted(share(1, PREFIX + bytes(8)))  # no upstream yet
    assert h.service.shares_without_upstream == 1
    link = h.accept()
    link.open()
    link.feed(
        NewExtendedMiningJob(5, 1, None, 0x20000000, True, (), b"\x01", b"\x02"),
        SetNewPrevHash(5, 1, bytes(32), 1_700_000_000, 0x1D00FFFF),
    )
    for worker in range(50):  # many local miners, one upstream channel
        h.service.share_accepted(share(1, PREFIX + bytes(8), worker=f"w{worker}", channel_id=worker))
    h.service.share_accepted(share(1, PREFIX + bytes(8), b"\xff" * 32))  # below the pool's target
    sent = link.sent()
    assert sum(isinstance(m, OpenExtendedMiningChannel) for m in sent) == 1
    submitted = [m for m in sent if isinstance(m, SubmitSharesExtended)]
    assert [m.sequence_number for m in submitted] == list(range(50))
    assert h.service.session.below_target == 1


def test_shares_after_the_link_started_closing_are_counted_and_a_lost_block_is_an_error():
    h = Harness()
    h.service.startService()
    link = h.accept()
    link.open()
    link.feed(
        NewExtendedMiningJob(5, 1, None, 0x20000000, True, (), b"\x01", b"\x02"),
        SetNewPrevHash(5, 1, bytes(32), 1_700_000_000, 0x1D00FFFF),
        Reconnect("10.7.7.7", 4444),  # closing gracefully, not gone yet
    )
    assert link.transport.disconnecting and h.service.protocol is not None
    link.sent()
    with capturedLogs() as events:
        h.service.share_accepted(share(1, PREFIX + bytes(8)))
        h.service.share_accepted(share(1, PREFIX + bytes(8), is_block=True))
    assert link.sent() == [] and h.service.shares_without_upstream == 2
    assert [e["log_level"] for e in events if e["log_namespace"] == "sv2proxy.upstream.service"] == [LogLevel.error]


def test_the_channel_opens_with_the_local_hash_rate_and_is_updated_every_interval():
    h = Harness()
    h.mining.hash_rate = 2.0**41
    h.service.startService()
    link = h.accept()
    link.feed(SetupConnectionSuccess(2, 0))
    [request] = [m for m in link.sent() if isinstance(m, OpenExtendedMiningChannel)]
    assert request.nominal_hash_rate == 2.0**41 and request.min_extranonce_size == 6
    link.feed(OpenExtendedMiningChannelSuccess(1, 5, TARGET, 8, PREFIX, 0))
    h.mining.hash_rate = 2.0**42
    h.reactor.advance(59.0)
    assert link.sent() == []
    h.reactor.advance(1.0)
    assert link.sent() == [UpdateChannel(5, 2.0**42, b"\xff" * 32)]
    h.mining.hash_rate = 0.0  # no local miners: nothing to tell
    h.reactor.advance(60.0)
    assert link.sent() == []
    link.lose()
    h.mining.hash_rate = 1.0
    h.reactor.advance(0.5)
    assert [call.func.__name__ for call in h.reactor.getDelayedCalls()] == ["_connect"]  # no updater left


def test_stopping_closes_the_link_and_leaves_no_timer():
    h = Harness()
    h.service.startService()
    link = h.accept()
    link.open()
    stopped = h.service.stopService()
    assert link.transport.disconnecting and not stopped.called
    assert h.mining.share_sink is None
    link.lose()
    assert stopped.called
    assert h.pool_events()[-1] == MiningPoolDisconnected(URLS[0].text, "the daemon is stopping")
    assert h.reactor.getDelayedCalls() == [] and h.ports() == [3331]


def test_stopping_while_connecting_or_waiting_to_retry_leaves_no_timer():
    h = Harness()
    h.service.startService()
    stopped = h.service.stopService()  # the connection attempt is still pending
    assert stopped.called and h.reactor.getDelayedCalls() == []
    h = Harness()
    h.service.startService()
    h.refuse()
    assert len(h.reactor.getDelayedCalls()) == 1
    assert h.service.stopService().called
    assert h.reactor.getDelayedCalls() == [] and h.pool_events() == []


def test_the_constructor_refuses_what_it_cannot_connect_to():
    mining, events, reactor = FakeMining(), EventBus(), MemoryReactorClock()
    cases = [
        ((), {}, "at least one"),
        ((url(1),), {}, "no authority key"),
        ((v1_url(1), url(1)), {}, "no authority key"),
        ((url(1),), {"allow_plaintext": True, "update_interval": 0}, "update_interval"),
        ((url(1),), {"allow_plaintext": True, "min_extranonce_size": 40}, "min_extranonce_size"),
        ((v1_url(1),), {"min_v1_extranonce2_size": 0}, "min_extranonce2_size"),
    ]
    for urls, kwargs, words in cases:
        with pytest.raises(ValueError, match=words):
            UpstreamService(urls, mining, events, reactor, "proxy", **kwargs)
    # A Stratum V1 pool has no key to pin: plain TCP is what it speaks.
    assert UpstreamService((v1_url(1),), mining, events, reactor, "proxy").urls == (v1_url(1),)


def test_the_default_backoff_grows_with_jitter_up_to_its_cap():
    policy = default_retry_policy()
    assert INITIAL_RETRY_DELAY <= policy(0) <= INITIAL_RETRY_DELAY + 1
    assert 1.5 <= policy(1) <= 2.5
    assert MAX_RETRY_DELAY <= policy(100) <= MAX_RETRY_DELAY + 1


def test_redirected_urls_keep_scheme_and_key_and_bracket_ipv6():
    key = bytes(range(32))
    moved = redirected(url(1, key), "2001:db8::1", 4000)
    assert (moved.text, moved.host, moved.port, moved.authority_key) == (
        "stratum2+tcp://[2001:db8::1]:4000",
        "2001:db8::1",
        4000,
        key,
    )


# -- Stratum V1 pools in the list -------------------------------------------------------------


def v1_job(job_id: str) -> bytes:
    return notify(job_id, bytes(32), b"\x01" * 40, b"\x02" * 60, (), 0x20000000, 0x1D00FFFF, 1_700_000_000, True)


def test_a_v1_url_gets_a_plain_v1_link_that_subscribes_and_authorizes():
    h = Harness(urls=(v1_url(1),), allow_plaintext=False)
    h.service.startService()
    assert h.ports() == [3341]
    link = h.accept_v1()
    # No Noise: the first bytes are Stratum V1 lines.
    assert [m["method"] for m in link.sent()] == ["mining.configure", "mining.subscribe"]
    link.feed(subscribe_result(2, "s", V1_EXTRANONCE1, 8))
    authorize = link.sent()[-1]
    assert authorize["params"] == ["proxy.user", "x"]
    assert h.pool_events() == []
    link.feed(result(4, True))
    assert h.pool_events() == [MiningPoolConnected(v1_url(1).text)]
    assert h.mining.calls == [("set_extranonce_space", (V1_EXTRANONCE1, 10))]
    assert h.service.url == v1_url(1) and isinstance(h.service.session, Sv1UpstreamSession)
    # Shares from every local miner go up the one subscription.
    link.feed(v1_job("j1"))
    for worker in range(20):
        h.service.share_accepted(share(1, V1_EXTRANONCE1 + bytes(8), worker=f"w{worker}", channel_id=worker))
    submits = [m for m in link.sent() if m["method"] == "mining.submit"]
    assert [m["id"] for m in submits] == list(range(5, 25))
    assert {tuple(m["params"][:2]) for m in submits} == {("proxy.user", "j1")}
    assert len(h.reactor.tcpClients) == 1  # one connection, whatever the miners
    h.reactor.advance(60.0)
    assert link.sent() == []  # no UpdateChannel in V1


def test_failover_goes_between_v1_and_v2_pools_and_back():
    h = Harness(urls=(v1_url(1), url(2)))
    h.service.startService()
    v1 = h.accept_v1()
    v1.open()
    v1.feed(v1_job("j1"))
    h.reactor.advance(STABLE_AFTER)
    v1.lose("pool restarted")
    assert h.mining.names() == ["set_extranonce_space", "new_tip", "drop_work"]
    assert h.pool_events() == [
        MiningPoolConnected(v1_url(1).text),
        MiningPoolDisconnected(v1_url(1).text, "Connection was closed cleanly: pool restarted."),
    ]
    h.reactor.advance(DELAYS[0])
    h.refuse()  # tried once more
    h.reactor.advance(DELAYS[1])
    assert h.ports() == [3341, 3341, 3332]
    v2 = h.accept()
    assert isinstance(inner(v2), UpstreamProtocol)
    v2.open()
    assert h.pool_events()[-1] == MiningPoolConnected(URLS[1].text)
    assert h.mining.calls[-1] == ("set_extranonce_space", (PREFIX, 10))
    h.reactor.advance(STABLE_AFTER)
    v2.lose()
    h.reactor.advance(DELAYS[0])
    h.refuse()
    h.reactor.advance(DELAYS[1])
    assert h.ports() == [3341, 3341, 3332, 3332, 3341]  # wrapped around to the V1 pool
    h.accept_v1().open()
    assert h.pool_events()[-1] == MiningPoolConnected(v1_url(1).text)


def test_a_v1_pool_that_refuses_us_is_a_failed_attempt_and_the_next_pool_is_tried():
    h = Harness(urls=(v1_url(1), url(2), v1_url(3)))
    h.service.startService()
    link = h.accept_v1()
    link.feed(subscribe_result(2, "s", V1_EXTRANONCE1, 8), b'{"id":4,"result":false,"error":null}\n')
    assert link.transport.disconnecting
    link.lose()
    h.reactor.advance(DELAYS[0])
    h.refuse()  # the V2 pool is down too
    h.reactor.advance(DELAYS[1])
    link = h.accept_v1()
    link.feed(subscribe_result(2, "s", V1_EXTRANONCE1, 2))  # no room for our miners
    assert link.transport.disconnecting
    link.lose()
    h.reactor.advance(DELAYS[2])
    assert h.ports() == [3341, 3332, 3343, 3341]
    assert h.pool_events() == [] and h.mining.calls == []


def test_client_reconnect_is_followed_after_the_wait_it_names():
    h = Harness(urls=(v1_url(1), url(2)))
    h.service.startService()
    link = h.accept_v1()
    link.open()
    link.feed(reconnect("10.7.7.7", 4444, 5))
    assert link.transport.disconnecting
    link.lose()
    assert h.pool_events()[-1] == MiningPoolDisconnected(
        v1_url(1).text, "the pool asked us to reconnect to 10.7.7.7:4444"
    )
    h.reactor.advance(4.9)
    assert h.ports() == [3341]
    h.reactor.advance(0.1)
    assert h.ports() == [3341, 4444]
    assert h.asked[-1] == PoolUrl("stratum+tcp://10.7.7.7:4444", PoolProtocol.V1, "10.7.7.7", 4444, None)
    h.accept_v1().open()
    assert h.pool_events()[-1] == MiningPoolConnected("stratum+tcp://10.7.7.7:4444")


def test_a_stalled_v1_pool_is_dropped_and_stopping_leaves_no_timer():
    h = Harness(urls=(v1_url(1), url(2)), stall_timeout=120.0)
    h.service.startService()
    link = h.accept_v1()
    link.open()
    h.reactor.advance(120.0)
    assert link.transport.disconnecting
    link.lose()
    assert h.pool_events()[-1] == MiningPoolDisconnected(v1_url(1).text, "no message for 120 s")
    h.reactor.advance(DELAYS[0])
    h.refuse()
    h.reactor.advance(DELAYS[1])
    h.accept().open()
    stopped = h.service.stopService()
    assert not stopped.called
    h.service.protocol.connectionLost(Failure(ConnectionDone("bye")))
    assert stopped.called and h.reactor.getDelayedCalls() == []


def test_the_daemon_builds_a_service_for_v1_urls_with_room_for_its_v1_miners():
    config = load_config(
        None,
        {
            "mode": "proxy",
            "pool_url": "stratum+tcp://pool.example.com:3333",
            "mining.channel_prefix_size": 2,
            "mining.sv1_extranonce2_size": 4,
        },
    )
    reactor = MemoryReactorClock()
    service = upstream_service(config, MiningService(reactor, EventBus()), reactor, EventBus())
    assert service is not None and [u.text for u in service.urls] == ["stratum+tcp://pool.example.com:3333"]
    assert service.min_v1_extranonce2_size == 6 and service.password == "x"
