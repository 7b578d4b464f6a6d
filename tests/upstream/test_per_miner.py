"""Per-miner mode through the UpstreamService and the real MiningService, on a MemoryReactorClock.

Local channels (each with its own username) open their own upstream channels once the pool is
set up (and at once after that); each miner's jobs come from its own upstream channel with that
channel's prefix fixed in the coinbase, its shares go back on it, its channel closing closes
the upstream one; failover opens them all again on the next pool; a refused channel closes the
local one; each channel is told its own hash rate; V1 pools are refused."""

from __future__ import annotations

import pytest
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from sv2proxy.codec.common import SetupConnectionSuccess
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import (
    CloseChannel,
    NewExtendedMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    SetNewPrevHash,
    SubmitSharesExtended,
    SubmitSharesSuccess,
    UpdateChannel,
)
from sv2proxy.config import PoolUrl, load_config
from sv2proxy.events import Event, EventBus, MiningPoolConnected, ShareSubmitted
from sv2proxy.pool.extranonce import ExtranonceLayout
from sv2proxy.pool.manager import PoolSettings
from sv2proxy.pool.vardiff import VardiffConfig
from sv2proxy.server.mining import MiningService
from sv2proxy.tap import upstream_service
from sv2proxy.upstream.miner_channels import MinerChannels
from sv2proxy.upstream.per_miner import PerMinerProtocol
from sv2proxy.upstream.service import UpstreamService

from .test_service import Link, inner, url, v1_url

LOCAL = 6  # the local space: a 2-byte channel prefix and 4 bytes each miner rolls
ANY = b"\xff" * 32
PREV_HASH = bytes(range(32))
NBITS = 0x207FFFFF


class Miner:
    """A local miner connection: what the mining service sends it."""

    def __init__(self) -> None:
        self.received: list[Message] = []

    def sendMessage(self, message: Message) -> None:  # noqa: N802
        self.received.append(message)

    def take(self) -> list[Message]:
        received, self.received = self.received, []
        return received


URLS = (url(1), url(2))


class Harness:
    def __init__(self, urls=URLS, **kwargs) -> None:
        self.reactor = MemoryReactorClock()
        self.reactor.advance(1_700_000_000)  # shares carry this ntime: not from the future
        self.events = EventBus()
        self.published: list[Event] = []
        self.events.subscribe(Event, self.published.append)
        settings = PoolSettings(
            layout=ExtranonceLayout(LOCAL, 2), vardiff=VardiffConfig(min_difficulty=1e-9), share_batch_size=1
        )
        self.mining = MiningService(self.reactor, self.events, settings, keepalive_interval=0)

        def endpoint_for(target: PoolUrl) -> TCP4ClientEndpoint:
            return TCP4ClientEndpoint(self.reactor, target.host, target.port)

        options = {"allow_plaintext": True, "retry_policy": lambda n: 1.0, "per_miner": True}
        options.update(kwargs)
        self.service = UpstreamService(
            urls, self.mining, self.events, self.reactor, "farm", 1e9, LOCAL, 60.0, endpoint_for=endpoint_for, **options
        )
        self.mining.startService()
        self.service.startService()

    def accept(self) -> Link:
        factory = self.reactor.tcpClients[-1][2]
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return Link(protocol, transport)

    def miner(self, name: str, request_id: int = 1) -> tuple[Miner, int]:
        """A local miner with one extended channel opened as ``name``; its channel id."""
        miner = Miner()
        self.mining.open_channel(miner, OpenExtendedMiningChannel(request_id, name, 0.0, ANY, 4))
        [opened] = miner.take()
        return miner, opened.channel_id

    def mine(self, miner: Miner, channel_id: int, job_id: int) -> SubmitSharesExtended:
        """A share of ``miner`` the local pool accepts."""
        for nonce in range(1000):
            share = SubmitSharesExtended(channel_id, nonce, job_id, nonce, 1_700_000_000, 0x20000000, b"\x07" * 4)
            result = self.mining.submit(miner, share)
            if result is not None and result.accepted:
                return share
        raise AssertionError("no share found")


def opens(sent: list[Message]) -> list[tuple[int, str]]:
    return [(m.request_id, m.user_identity) for m in sent if isinstance(m, OpenExtendedMiningChannel)]


def open_success(request_id: int, channel_id: int, prefix: bytes) -> OpenExtendedMiningChannelSuccess:
    return OpenExtendedMiningChannelSuccess(request_id, channel_id, ANY, LOCAL + 2, prefix, 0)


def test_each_miner_gets_its_own_upstream_channel_work_and_shares():
    h = Harness()
    alice, alice_id = h.miner("alice.1")  # before the pool is even reached
    link = h.accept()
    assert isinstance(inner(link), PerMinerProtocol)
    link.sent()
    link.feed(SetupConnectionSuccess(2, 0))
    assert opens(link.sent()) == [(1, "alice.1")]  # the pool set up: the waiting miner's channel
    assert h.published == [MiningPoolConnected(url(1).text)]
    assert isinstance(h.service.session, MinerChannels) and h.service.session.is_open
    bob, bob_id = h.miner("bob.2")
    assert opens(link.sent()) == [(2, "bob.2")]  # at once, now
    link.feed(open_success(1, 21, b"\xa1"), open_success(2, 22, b"\xb2"))
    # Alice's job and tip, from her channel only: Bob gets nothing from them.
    link.feed(
        NewExtendedMiningJob(21, 7, None, 0x20000000, True, (), b"head", b"tail"),
        SetNewPrevHash(21, 7, PREV_HASH, 1_700_000_000, NBITS),
    )
    job, tip = alice.take()
    assert isinstance(job, NewExtendedMiningJob) and isinstance(tip, SetNewPrevHash)
    assert job.channel_id == alice_id and job.coinbase_tx_prefix == b"head" + b"\xa1\x00\x00"
    assert tip.job_id == job.job_id and bob.take() == []
    share = h.mine(alice, alice_id, job.job_id)
    [submitted] = [m for m in link.sent() if isinstance(m, SubmitSharesExtended)]
    local_prefix = h.mining.manager.channels[alice_id].extranonce_prefix
    assert (submitted.channel_id, submitted.job_id) == (21, 7)
    assert submitted.extranonce == b"\x00\x00" + local_prefix + share.extranonce
    link.feed(SubmitSharesSuccess(21, submitted.sequence_number, 1, 1))
    assert h.service.session.accepted == 1
    # Bob's own work, with his own prefix.
    link.feed(
        NewExtendedMiningJob(22, 7, None, 0x20000000, True, (), b"head", b"tail"),
        SetNewPrevHash(22, 7, PREV_HASH, 1_700_000_000, NBITS),
    )
    bob_job, _ = bob.take()
    assert bob_job.channel_id == bob_id and bob_job.coinbase_tx_prefix.endswith(b"\xb2\x00\x00")
    # A miner leaving closes its channel at the pool.
    h.mining.connection_lost(alice)
    assert [m for m in link.sent() if isinstance(m, CloseChannel)] == [CloseChannel(21, "miner-disconnected")]


def test_failover_opens_every_miners_channel_on_the_next_pool_and_old_shares_are_stale():
    h = Harness()
    alice, alice_id = h.miner("alice.1")
    bob, bob_id = h.miner("bob.2")
    link = h.accept()
    link.feed(SetupConnectionSuccess(2, 0), open_success(1, 21, b"\xa1"), open_success(2, 22, b"\xb2"))
    link.feed(
        NewExtendedMiningJob(21, 7, None, 0x20000000, True, (), b"head", b"tail"),
        SetNewPrevHash(21, 7, PREV_HASH, 1_700_000_000, NBITS),
    )
    job, _ = alice.take()
    link.lose("pool died")
    # A share for the lost pool's job is answered stale, not accepted and lost.
    h.mining.submit(alice, SubmitSharesExtended(alice_id, 5, job.job_id, 1, 1_700_000_000, 0x20000000, bytes(4)))
    assert [m.error_code for m in alice.take() if hasattr(m, "error_code")] == ["stale-share"]
    h.reactor.advance(1.0)  # the lost pool once more ...
    h.reactor.tcpClients[-1][2].clientConnectionFailed(None, Failure(ConnectionRefusedError("still down")))
    h.reactor.advance(1.0)  # ... then the next one
    assert [port for _, port, *_ in h.reactor.tcpClients] == [3331, 3331, 3332]
    backup = h.accept()
    backup.sent()
    backup.feed(SetupConnectionSuccess(2, 0))
    assert sorted(identity for _, identity in opens(backup.sent())) == ["alice.1", "bob.2"]


def test_a_refused_miner_channel_closes_the_local_one_and_rates_go_per_channel():
    h = Harness()
    alice, alice_id = h.miner("alice.1")
    bob, bob_id = h.miner("not allowed")
    link = h.accept()
    link.feed(SetupConnectionSuccess(2, 0), open_success(1, 21, b"\xa1"), OpenMiningChannelError(2, "unknown-user"))
    assert bob.take() == [CloseChannel(bob_id, "upstream-channel-closed")]
    assert bob_id not in h.mining.manager.channels and alice_id in h.mining.manager.channels
    assert link.transport.connected and not link.transport.disconnecting
    link.feed(
        NewExtendedMiningJob(21, 7, None, 0x20000000, True, (), b"head", b"tail"),
        SetNewPrevHash(21, 7, PREV_HASH, 1_700_000_000, NBITS),
    )
    [job, _] = alice.take()
    for _ in range(5):
        h.mine(alice, alice_id, job.job_id)
        h.reactor.advance(1.0)
    sequences = [m.sequence_number for m in link.sent() if isinstance(m, SubmitSharesExtended)]
    assert sequences == [0, 1, 2, 3, 4]
    link.feed(SubmitSharesSuccess(21, 4, 5, 5))  # answered: the link stays
    # UpdateChannel: each open channel its own hash rate, on its own channel.
    link.sent()
    h.reactor.advance(60.0)
    [update] = [m for m in link.sent() if isinstance(m, UpdateChannel)]
    assert update.channel_id == 21
    assert update.nominal_hash_rate == pytest.approx(h.mining.channel_hash_rate(alice_id), rel=1e-6)
    assert any(isinstance(e, ShareSubmitted) for e in h.published)


def test_stopping_stops_watching_the_channels():
    h = Harness()
    link = h.accept()
    link.feed(SetupConnectionSuccess(2, 0))
    h.service.stopService()
    link.lose()
    assert h.mining.manager.watcher is None
    h.miner("late")  # no link, no watcher: nothing breaks


def test_per_miner_needs_v2_pools_and_the_daemon_asks_for_it():
    with pytest.raises(ValueError, match="Stratum V2"):
        Harness(urls=(url(1), v1_url(2)))
    config = load_config(
        None,
        {
            "mode": "proxy",
            "pool_url": url(1).text + "/9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72",
            "upstream.channels": "per-miner",
        },
    )
    reactor = MemoryReactorClock()
    service = upstream_service(config, MiningService(reactor, EventBus()), reactor, EventBus())
    assert service is not None and service.per_miner


def test_failing_back_opens_every_miners_channel_on_the_primary_only_once_it_is_chosen():
    h = Harness(failback_interval=30.0)
    alice, _ = h.miner("alice.1")
    h.reactor.tcpClients[-1][2].clientConnectionFailed(None, Failure(ConnectionRefusedError("primary down")))
    h.reactor.advance(1.0)
    backup = h.accept()
    backup.feed(SetupConnectionSuccess(2, 0), open_success(1, 21, b"\xa1"))
    backup.feed(
        NewExtendedMiningJob(21, 7, None, 0x20000000, True, (), b"head", b"tail"),
        SetNewPrevHash(21, 7, PREV_HASH, 1_700_000_000, NBITS),
    )
    assert len(alice.take()) == 2
    h.reactor.advance(30.0)
    probe = h.accept()
    probe.sent()
    probe.feed(SetupConnectionSuccess(2, 0))
    # Chosen: the backup is left (its jobs stale) and the miners' channels open on the primary.
    assert opens(probe.sent()) == [(1, "alice.1")]
    assert backup.transport.disconnecting and h.service.url == URLS[0]
    assert h.mining.manager.channels[h.mining.miner_channels()[0].channel_id].jobs.active is None
    probe.feed(open_success(1, 31, b"\xc1"))
    probe.feed(
        NewExtendedMiningJob(31, 1, None, 0x20000000, True, (), b"head", b"tail"),
        SetNewPrevHash(31, 1, PREV_HASH, 1_700_000_000, NBITS),
    )
    job, _ = alice.take()
    assert job.coinbase_tx_prefix.endswith(b"\xc1\x00\x00")
