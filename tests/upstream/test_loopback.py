"""Proxy mode end to end on loopback, through real Noise: two "remote pools" (the daemon's own SV2
listener and mining service, fed work by hand), a proxy (UpstreamService + a second mining
service with its own SV2 listener) and a CPU miner behind the proxy.

The proxy opens exactly one channel upstream, its miner mines in the pool's extranonce space,
the miner's shares that meet the pool's target reach the pool and are accepted; when the first
pool goes away the proxy fails over to the second and the miner's shares follow it there.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from sv2proxy.config import PoolProtocol, PoolUrl
from sv2proxy.events import EventBus, MiningPoolConnected, MiningPoolDisconnected, ShareSubmitted
from sv2proxy.link.noise import NoiseClientFactory, NoiseServerFactory, ServerCredentials
from sv2proxy.noise.keys import AuthorityKey
from sv2proxy.pool.extranonce import ExtranonceLayout
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.pool.manager import PoolSettings
from sv2proxy.pool.vardiff import VardiffConfig
from sv2proxy.server.miner import MinerFactory
from sv2proxy.server.mining import MiningService
from sv2proxy.testing import MiningDeviceFactory
from sv2proxy.upstream import UpstreamService

NBITS = 0x1D00FFFF  # difficulty 1: no CPU finds a block here
PATH = tuple(hashlib.sha256(bytes([i])).digest() for i in range(3))
POOL_DIFFICULTY = 4e-6  # about one share in 16,000 hashes
LOCAL_DIFFICULTY = 1e-6  # about one in 4,000: most local shares stay local


async def until(condition, seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await deferLater(reactor, 0.02, lambda: None)
    raise AssertionError("condition not met in time")


def fixed(difficulty: float) -> VardiffConfig:
    return VardiffConfig(min_difficulty=difficulty, max_difficulty=difficulty)


class Listening:
    """A mining service behind the daemon's SV2 listener stack: MinerFactory inside Noise."""

    def __init__(self, settings: PoolSettings) -> None:
        self.events = EventBus()
        self.mining = MiningService(reactor, self.events, settings)
        self.mining.startService()
        self.authority = AuthorityKey.generate()
        self.factory = NoiseServerFactory(
            MinerFactory(self.mining), ServerCredentials(self.authority, reactor), reactor
        )
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        number = self.port.getHost().port
        text = f"stratum2+tcp://127.0.0.1:{number}/{self.authority.public_text}"
        self.url = PoolUrl(text, PoolProtocol.V2, "127.0.0.1", number, self.authority.public)
        self.accepted: list[ShareSubmitted] = []
        self.events.subscribe(ShareSubmitted, lambda e: self.accepted.append(e) if e.accepted else None)

    def feed_work(self, tag: bytes) -> None:
        """What a job source does: future work for the next block, then its prev hash."""
        self.mining.new_work(Work(1, 0x20000000, True, b"\x01" * 42 + tag, b"\x02" * 80, PATH, future=True))
        prev = PrevHash(hashlib.sha256(tag).digest(), int(reactor.seconds()) - 10, NBITS)
        self.mining.new_prev_hash(1, prev)

    async def stop(self) -> None:
        await self.port.stopListening()
        for protocol in list(self.factory.protocols):
            protocol.transport.loseConnection()
        self.mining.stopService()


@pytest_twisted.ensureDeferred
async def test_a_proxy_aggregates_its_miner_into_one_upstream_channel_and_fails_over():
    # Two pools with different extranonce layouts (and a fixed first byte each, so a prefix is
    # recognisable), so failing over really moves the space.
    layout_a, layout_b = ExtranonceLayout(12, 2, b"\xaa"), ExtranonceLayout(16, 3, b"\xbb")
    pool_a = Listening(PoolSettings(layout=layout_a, vardiff=fixed(POOL_DIFFICULTY), share_batch_size=1))
    pool_b = Listening(PoolSettings(layout=layout_b, vardiff=fixed(POOL_DIFFICULTY), share_batch_size=1))
    pool_a.feed_work(b"a")
    pool_b.feed_work(b"b")
    proxy = Listening(PoolSettings(layout=ExtranonceLayout(12, 2), vardiff=fixed(LOCAL_DIFFICULTY), share_batch_size=1))
    pool_events: list[object] = []
    proxy.events.subscribe(MiningPoolConnected, pool_events.append)
    proxy.events.subscribe(MiningPoolDisconnected, pool_events.append)
    upstream = UpstreamService(
        [pool_a.url, pool_b.url],
        proxy.mining,
        proxy.events,
        reactor,
        "proxy.user",
        nominal_hash_rate=1e3,
        min_extranonce_size=6,
        retry_policy=lambda failures: 0.05,
    )
    upstream.startService()
    devices = MiningDeviceFactory(reactor, "alice.rig1", pause=0.01, nonces_per_slice=500)
    try:
        await until(lambda: upstream.session is not None and upstream.session.is_open)
        assert pool_events == [MiningPoolConnected(pool_a.url.text)]
        [channel_a] = pool_a.mining.manager.channels.values()
        assert channel_a.user_identity == "proxy.user"
        assert upstream.session.extranonce_prefix == channel_a.extranonce_prefix == b"\xaa\x00\x00"

        # A miner behind the proxy mines in pool A's space: the pool's prefix ends the coinbase
        # prefix of its jobs, the rest of A's extranonce (12 - 3 bytes) is the proxy's to share out.
        reactor.connectTCP("127.0.0.1", proxy.url.port, NoiseClientFactory(devices, proxy.authority.public, reactor))
        await until(lambda: devices.device is not None and devices.device.stats.jobs > 0)
        device = devices.device
        assert device._job.coinbase_tx_prefix.endswith(channel_a.extranonce_prefix)
        assert len(device.extranonce_prefix) + device.extranonce_size == 9

        # Three local shares in four fall short of the pool's target and stay local.
        await until(lambda: upstream.session.accepted >= 2 and upstream.session.below_target > 0)
        assert len(pool_a.accepted) >= 2
        # Credited, through extension 0x0002, to the local worker that found them.
        assert {(e.worker, e.channel_id) for e in pool_a.accepted} == {("alice.rig1", channel_a.channel_id)}
        session = upstream.session
        assert dict(session.rejected) == {}
        assert len(pool_a.mining.manager.channels) == 1  # one channel, whatever the miners

        # Pool A goes away: the proxy fails over to pool B, the miner follows.
        await pool_a.stop()
        await until(lambda: len(pool_events) >= 3)
        assert pool_events[1] == MiningPoolDisconnected(pool_a.url.text, pool_events[1].reason)
        assert pool_events[2] == MiningPoolConnected(pool_b.url.text)
        [channel_b] = pool_b.mining.manager.channels.values()
        assert upstream.session.extranonce_prefix == channel_b.extranonce_prefix == b"\xbb\x00\x00\x00"
        # B leaves more room than A: the proxy's own 12 bytes again (the miner's prefix is padded
        # for its 7 rolled bytes), and B's prefix and its 16 - 4 - 12 = 0 spare bytes in the coinbase.
        await until(
            lambda: device._job is not None and device._job.coinbase_tx_prefix.endswith(channel_b.extranonce_prefix)
        )
        assert len(device.extranonce_prefix) + device.extranonce_size == 12
        await until(lambda: upstream.session is not None and upstream.session.accepted >= 1)
        assert {e.worker for e in pool_b.accepted} == {"alice.rig1"}
        assert len(pool_b.mining.manager.channels) == 1
    finally:
        if devices.device is not None and devices.device.transport is not None:
            devices.device.transport.loseConnection()
        await upstream.stopService()
        await proxy.stop()
        await pool_b.stop()
        if pool_a.port.connected:
            await pool_a.stop()


@pytest_twisted.ensureDeferred
async def test_a_pool_whose_key_does_not_match_the_pinned_one_is_skipped():
    settings = PoolSettings(vardiff=fixed(POOL_DIFFICULTY), share_batch_size=1)
    impostor, genuine = Listening(settings), Listening(settings)
    impostor.feed_work(b"i")
    genuine.feed_work(b"g")
    proxy = Listening(settings)
    # The first URL names the genuine pool's key but leads to the impostor.
    pinned = dataclasses.replace(impostor.url, authority_key=genuine.authority.public)
    upstream = UpstreamService(
        [pinned, genuine.url], proxy.mining, proxy.events, reactor, "proxy.user", retry_policy=lambda failures: 0.05
    )
    upstream.startService()
    try:
        await until(lambda: upstream.session is not None and upstream.session.is_open)
        assert upstream.url == genuine.url
        assert len(genuine.mining.manager.channels) == 1 and impostor.mining.manager.channels == {}
    finally:
        await upstream.stopService()
        for listening in (proxy, impostor, genuine):
            await listening.stop()
