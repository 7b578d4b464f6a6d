"""Proxy mode against a Stratum V1 pool, end to end on loopback.

The "remote V1 pool" is the daemon's own V1 listener (a mining service fed work by hand, served by
:class:`~sv2proxy.server.sv1_miner.Sv1MinerFactory`); the proxy is an UpstreamService and a second
mining service with its own V2 (Noise) and V1 listeners; CPU miners of both kinds mine behind it.

The proxy makes exactly one V1 connection, whatever its miners; their shares that meet the pool's
difficulty reach the pool through it and are accepted there (the V1 miner's with rolled version
bits); and when the V1 pool goes away the proxy fails over to a V2 pool with its miner.
"""

from __future__ import annotations

import hashlib

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.interfaces import IListeningPort

from sv2proxy.bitcoin.target import difficulty_to_target
from sv2proxy.config import PoolProtocol, PoolUrl
from sv2proxy.events import EventBus, MiningPoolConnected, MiningPoolDisconnected, ShareSubmitted
from sv2proxy.link.noise import NoiseClientFactory
from sv2proxy.pool.extranonce import ExtranonceLayout
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.pool.manager import PoolSettings
from sv2proxy.server.mining import AcceptedShare, MiningService
from sv2proxy.server.sv1_miner import Sv1MinerFactory, Sv1MinerProtocol
from sv2proxy.testing import MiningDeviceFactory, Sv1MiningDeviceFactory
from sv2proxy.upstream import Sv1UpstreamSession, UpstreamService

from .test_loopback import LOCAL_DIFFICULTY, NBITS, PATH, POOL_DIFFICULTY, Listening, fixed, until


class CountingSv1Factory(Sv1MinerFactory):
    """The V1 listener, remembering every connection it was asked for."""

    def __init__(self, mining: MiningService, extranonce2_size: int) -> None:
        super().__init__(mining, extranonce2_size)
        self.built: list[Sv1MinerProtocol] = []

    def buildProtocol(self, addr: object) -> Sv1MinerProtocol:  # noqa: N802
        protocol = super().buildProtocol(addr)
        self.built.append(protocol)
        return protocol


class V1Pool:
    """A mining service behind the daemon's Stratum V1 listener."""

    def __init__(self, settings: PoolSettings, extranonce2_size: int = 8) -> None:
        self.events = EventBus()
        self.mining = MiningService(reactor, self.events, settings)
        self.mining.startService()
        self.factory = CountingSv1Factory(self.mining, extranonce2_size)
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        number = self.port.getHost().port
        self.url = PoolUrl(f"stratum+tcp://127.0.0.1:{number}", PoolProtocol.V1, "127.0.0.1", number, None)
        self.accepted: list[ShareSubmitted] = []
        self.events.subscribe(ShareSubmitted, lambda e: self.accepted.append(e) if e.accepted else None)

    def feed_work(self, tag: bytes) -> None:
        """What a job source does: future work for the next block, then its prev hash."""
        self.mining.new_work(Work(1, 0x20000000, True, b"\x01" * 42 + tag, b"\x02" * 80, PATH, future=True))
        prev = PrevHash(hashlib.sha256(tag).digest(), int(reactor.seconds()) - 10, NBITS)
        self.mining.new_prev_hash(1, prev)

    async def stop(self) -> None:
        await self.port.stopListening()
        for protocol in self.factory.built:
            if protocol.transport is not None and protocol.transport.connected:
                protocol.transport.loseConnection()
        self.mining.stopService()


class Recorder:
    """Between the proxy's mining service and its upstream: every accepted local share, in order."""

    def __init__(self, upstream: UpstreamService) -> None:
        self.upstream = upstream
        self.shares: list[AcceptedShare] = []

    def share_accepted(self, share: AcceptedShare) -> None:
        self.shares.append(share)
        self.upstream.share_accepted(share)


def proxy_listening() -> tuple[Listening, IListeningPort]:
    """The proxy's mining service with its V2 listener, and a V1 listener on it (4-byte extranonce2)."""
    proxy = Listening(PoolSettings(layout=ExtranonceLayout(12, 2), vardiff=fixed(LOCAL_DIFFICULTY), share_batch_size=1))
    return proxy, reactor.listenTCP(0, Sv1MinerFactory(proxy.mining, 4), interface="127.0.0.1")


@pytest_twisted.ensureDeferred
async def test_miners_of_both_kinds_mine_through_one_v1_connection_to_a_v1_pool():
    pool = V1Pool(PoolSettings(layout=ExtranonceLayout(12, 2, b"\xaa"), vardiff=fixed(POOL_DIFFICULTY)))
    pool.feed_work(b"v1")
    proxy, sv1_listener = proxy_listening()
    connected: list[object] = []
    proxy.events.subscribe(MiningPoolConnected, connected.append)
    upstream = UpstreamService(
        [pool.url],
        proxy.mining,
        proxy.events,
        reactor,
        "proxy.user",
        retry_policy=lambda failures: 0.05,
        min_v1_extranonce2_size=2 + 4,  # our channel bytes and a V1 miner's extranonce2
    )
    upstream.startService()
    recorder = proxy.mining.share_sink = Recorder(upstream)
    v2_devices = MiningDeviceFactory(reactor, "alice.rig1", pause=0.01, nonces_per_slice=500)
    v1_devices = Sv1MiningDeviceFactory(reactor, "bob.rig2", pause=0.01, nonces_per_slice=500)
    try:
        await until(lambda: upstream.session is not None and upstream.session.is_open)
        session = upstream.session
        assert isinstance(session, Sv1UpstreamSession)
        assert connected == [MiningPoolConnected(pool.url.text)]
        [channel] = pool.mining.manager.channels.values()
        assert channel.user_identity == "proxy.user"
        # Subscribed: the pool's extranonce1 (its channel prefix), 8 bytes of ours after it, and
        # BIP320's version bits to roll.
        assert session.extranonce1 == channel.extranonce_prefix and session.extranonce2_size == 8
        assert session.version_mask == 0x1FFFE000

        # A V2 miner behind the proxy: the pool's extranonce1 ends the coinbase prefix of its jobs.
        reactor.connectTCP("127.0.0.1", proxy.url.port, NoiseClientFactory(v2_devices, proxy.authority.public, reactor))
        await until(lambda: v2_devices.device is not None and v2_devices.device.stats.jobs > 0)
        v2 = v2_devices.device
        assert v2._job.coinbase_tx_prefix.endswith(session.extranonce1)
        assert len(v2.extranonce_prefix) + v2.extranonce_size == 8
        # Three local shares in four fall short of the pool's difficulty and stay local.
        await until(lambda: session.accepted >= 2 and session.below_target > 0)
        v2.transport.loseConnection()
        await until(lambda: session.in_flight == 0)
        assert len(pool.accepted) == session.accepted and dict(session.rejected) == {}

        # A V1 miner behind the proxy, rolling version bits: its shares get there too.
        before = session.accepted
        reactor.connectTCP("127.0.0.1", sv1_listener.getHost().port, v1_devices)
        await until(lambda: v1_devices.device is not None and v1_devices.device.authorized)
        assert v1_devices.device.version_mask == 0x1FFFE000
        pool_target = difficulty_to_target(POOL_DIFFICULTY)

        def rolled_for_the_pool() -> list[AcceptedShare]:
            ours = [s for s in recorder.shares if s.worker == "bob.rig2" and s.version != 0x20000000]
            return [s for s in ours if int.from_bytes(s.share_hash, "little") <= pool_target]

        await until(lambda: session.accepted >= before + 2 and len(rolled_for_the_pool()) > 0)
        v1_devices.device.transport.loseConnection()
        await until(lambda: session.in_flight == 0)
        assert len(pool.accepted) == session.accepted
        assert dict(session.rejected) == {} and dict(session.not_forwarded) == {}
        # Every share sent was accepted, the rolled ones among them.
        assert {e.worker for e in pool.accepted} == {"proxy.user"}

        # One connection and one channel upstream, whatever the miners behind.
        assert len(pool.factory.built) == 1 and len(pool.mining.manager.channels) == 1
        assert upstream.url == pool.url
    finally:
        for devices in (v2_devices, v1_devices):
            if devices.device is not None and devices.device.transport is not None:
                devices.device.transport.loseConnection()
        await upstream.stopService()
        await sv1_listener.stopListening()
        await proxy.stop()
        await pool.stop()


@pytest_twisted.ensureDeferred
async def test_a_proxy_fails_over_from_a_v1_pool_to_a_v2_pool():
    v1_pool = V1Pool(PoolSettings(layout=ExtranonceLayout(12, 2, b"\xaa"), vardiff=fixed(POOL_DIFFICULTY)))
    v1_pool.feed_work(b"a")
    v2_pool = Listening(
        PoolSettings(layout=ExtranonceLayout(16, 3, b"\xbb"), vardiff=fixed(POOL_DIFFICULTY), share_batch_size=1)
    )
    v2_pool.feed_work(b"b")
    proxy, sv1_listener = proxy_listening()
    events: list[object] = []
    proxy.events.subscribe(MiningPoolConnected, events.append)
    proxy.events.subscribe(MiningPoolDisconnected, events.append)
    upstream = UpstreamService(
        [v1_pool.url, v2_pool.url],
        proxy.mining,
        proxy.events,
        reactor,
        "proxy.user",
        min_extranonce_size=6,
        retry_policy=lambda failures: 0.05,
        min_v1_extranonce2_size=6,
    )
    upstream.startService()
    devices = MiningDeviceFactory(reactor, "alice.rig1", pause=0.01, nonces_per_slice=500)
    try:
        await until(lambda: upstream.session is not None and upstream.session.is_open)
        reactor.connectTCP("127.0.0.1", proxy.url.port, NoiseClientFactory(devices, proxy.authority.public, reactor))
        await until(lambda: upstream.session.accepted >= 1)
        assert len(v1_pool.accepted) >= 1

        await v1_pool.stop()
        await until(lambda: len(events) >= 3)
        assert events[0] == MiningPoolConnected(v1_pool.url.text)
        assert events[1] == MiningPoolDisconnected(v1_pool.url.text, events[1].reason)
        assert events[2] == MiningPoolConnected(v2_pool.url.text)
        [channel] = v2_pool.mining.manager.channels.values()
        device = devices.device
        await until(
            lambda: device._job is not None and device._job.coinbase_tx_prefix.endswith(channel.extranonce_prefix)
        )
        await until(lambda: upstream.session is not None and upstream.session.accepted >= 1)
        assert {e.worker for e in v2_pool.accepted} == {"alice.rig1"}  # named through extension 0x0002
        assert len(v1_pool.factory.built) == 1 and len(v2_pool.mining.manager.channels) == 1
    finally:
        if devices.device is not None and devices.device.transport is not None:
            devices.device.transport.loseConnection()
        await upstream.stopService()
        await sv1_listener.stopListening()
        await proxy.stop()
        await v2_pool.stop()
        if v1_pool.port.connected:
            await v1_pool.stop()
