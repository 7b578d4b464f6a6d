"""A new tip's fan-out: each connection's messages leave together, and no garbage collection
runs in the middle of it (a full one takes tens of milliseconds with a thousand connections)."""

from __future__ import annotations

import gc
import hashlib

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from sv2proxy.bitcoin.target import MAX_TARGET, target_to_u256
from sv2proxy.codec import (
    MessageDecoder,
    NewExtendedMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    SetNewPrevHash,
    SetupConnection,
)
from sv2proxy.events import EventBus
from sv2proxy.pool.extranonce import ExtranonceLayout
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.pool.manager import PoolSettings
from sv2proxy.pool.vardiff import VardiffConfig
from sv2proxy.server.miner import MinerFactory
from sv2proxy.server.mining import DELIVERY_CHUNK, MiningService

NOW = 1_800_000_000
ANY = target_to_u256(MAX_TARGET)
WORK = Work(1, 0x20000000, True, b"head", b"tail", (hashlib.sha256(b"t").digest(),), True)
PREV = PrevHash(hashlib.sha256(b"tip").digest(), NOW - 5, 0x1D00FFFF)


class CountingTransport(StringTransport):
    writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)

    def writeSequence(self, data: list[bytes]) -> None:  # noqa: N802
        self.writes += 1
        super().write(b"".join(data))


class Sink:
    """A connection that only collects what it is sent, one message at a time."""

    def __init__(self) -> None:
        self.got: list[object] = []

    def sendMessage(self, message: object) -> None:  # noqa: N802
        self.got.append(message)


@pytest.fixture
def mining():
    clock = Clock()
    clock.advance(NOW)
    settings = PoolSettings(layout=ExtranonceLayout(8, 2), vardiff=VardiffConfig(min_difficulty=1e-9))
    service = MiningService(clock, EventBus(), settings)
    service.startService()
    was_enabled = gc.isenabled()
    yield service
    service.stopService()
    assert clock.getDelayedCalls() == []
    assert gc.isenabled() == was_enabled


@pytest.fixture
def collector_on():
    enabled = gc.isenabled()
    gc.enable()
    yield
    if not enabled:
        gc.disable()


def test_a_tip_reaches_a_miner_as_its_job_and_prev_hash_in_one_write(mining):
    factory = MinerFactory(mining)
    connections = []
    for _ in range(3):
        protocol, transport = factory.buildProtocol(None), CountingTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(SetupConnection(0, 2, 2, 0, "h", 1, "v", "hw", "fw", "id").to_frame())
        transport.clear()
        protocol.dataReceived(OpenExtendedMiningChannel(1, "w", 1.0, ANY, 4).to_frame())
        (success,) = MessageDecoder().feed(transport.value())
        transport.clear()
        transport.writes = 0
        connections.append((protocol, transport, success.group_channel_id))
    job_id = mining.new_tip(WORK, PREV)
    for protocol, transport, group in connections:
        assert transport.writes == 1
        job, prev_hash = MessageDecoder().feed(transport.value())
        assert job == NewExtendedMiningJob(group, job_id, None, 0x20000000, True, WORK.merkle_path, b"head", b"tail")
        assert prev_hash == SetNewPrevHash(group, job_id, PREV.prev_hash, PREV.min_ntime, PREV.nbits)
        protocol.connectionLost()


def test_no_collection_runs_until_a_chunked_fan_out_is_sent(mining, collector_on):
    sinks = [Sink() for _ in range(DELIVERY_CHUNK)]
    for i, sink in enumerate(sinks):
        mining.open_channel(sink, OpenExtendedMiningChannel(i, "w", 1.0, ANY, 4))
    mining.new_tip(WORK, PREV)
    assert not gc.isenabled()  # the first chunk is out, the others wait for the reactor
    # The last chunk is handed to the transports, and the collector given back in a call of
    # its own: a reactor runs it on its next turn, once the transports have sent that chunk
    # (a Clock runs it within the same advance).
    mining.clock.advance(0)
    assert all(len(sink.got) == 3 for sink in sinks)
    assert gc.isenabled()
    for sink in sinks:
        assert [type(m) for m in sink.got] == [OpenExtendedMiningChannelSuccess, NewExtendedMiningJob, SetNewPrevHash]


def test_a_fan_out_sent_at_once_gives_the_collector_back_at_once(mining, collector_on):
    sink = Sink()
    mining.open_channel(sink, OpenExtendedMiningChannel(1, "w", 1.0, ANY, 4))
    mining.new_tip(WORK, PREV)
    assert gc.isenabled() and len(sink.got) == 3


def test_the_collector_is_back_at_the_next_tick_or_at_stop_whatever_happens(mining, collector_on):
    for i in range(DELIVERY_CHUNK):
        mining.open_channel(Sink(), OpenExtendedMiningChannel(i, "w", 1.0, ANY, 4))
    mining.new_tip(WORK, PREV)
    assert not gc.isenabled()
    mining.stopService()
    assert gc.isenabled() and mining.clock.getDelayedCalls() == []
    mining.startService()


def test_a_collector_turned_off_elsewhere_stays_off(mining):
    enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(DELIVERY_CHUNK):
            mining.open_channel(Sink(), OpenExtendedMiningChannel(i, "w", 1.0, ANY, 4))
        mining.new_tip(WORK, PREV)
        mining.clock.advance(0)
        mining.clock.advance(0)
        assert not gc.isenabled()
    finally:
        if enabled:
            gc.enable()


def test_when_delivered_fires_once_the_last_chunk_is_handed_over(mining):
    assert mining.when_delivered().called  # nothing queued
    sinks = [Sink() for _ in range(DELIVERY_CHUNK)]
    for i, sink in enumerate(sinks):
        mining.open_channel(sink, OpenExtendedMiningChannel(i, "w", 1.0, ANY, 4))
    mining.new_tip(WORK, PREV)
    delivered = mining.when_delivered()
    given_up = mining.when_delivered()
    given_up.addErrback(lambda failure: None)
    given_up.cancel()
    assert not delivered.called
    mining.clock.advance(0)
    assert delivered.called
    assert all(len(sink.got) == 3 for sink in sinks)


def test_when_delivered_fires_at_stop_with_the_messages_still_queued(mining):
    for i in range(DELIVERY_CHUNK):
        mining.open_channel(Sink(), OpenExtendedMiningChannel(i, "w", 1.0, ANY, 4))
    mining.new_tip(WORK, PREV)
    delivered = mining.when_delivered()
    mining.stopService()
    assert delivered.called
    mining.startService()


def test_when_delivered_waits_for_what_was_queued_not_for_what_came_after(mining):
    sinks = [Sink() for _ in range(DELIVERY_CHUNK)]
    for i, sink in enumerate(sinks):
        mining.open_channel(sink, OpenExtendedMiningChannel(i, "w", 1.0, ANY, 4))
    mining.new_tip(WORK, PREV)
    seen_then: list[int] = []
    mining.when_delivered().addCallback(lambda _: seen_then.extend(len(sink.got) for sink in sinks))
    mining.new_tip(WORK, PrevHash(hashlib.sha256(b"next").digest(), NOW, 0x1D00FFFF))
    mining.clock.advance(0)  # a Clock runs every later chunk too
    assert seen_then == [3] * len(sinks)  # fired with the first tip out, the second still queued
    assert all(len(sink.got) == 5 for sink in sinks)
