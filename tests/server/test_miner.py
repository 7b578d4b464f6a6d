"""The miner protocol over a plain StringTransport with a Clock: ordered messages out for messages in."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from sv2proxy.bitcoin.target import MAX_TARGET, target_to_u256
from sv2proxy.codec import (
    CloseChannel,
    MessageDecoder,
    NewExtendedMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    SetCustomMiningJob,
    SetCustomMiningJobError,
    SetNewPrevHash,
    SetTarget,
    SetupConnection,
    SetupConnectionError,
    SetupConnectionSuccess,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSharesStandard,
    SubmitSharesSuccess,
)
from sv2proxy.events import Event, EventBus, MiningDifficultyChanged, ShareSubmitted
from sv2proxy.pool.extranonce import ExtranonceLayout
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.pool.manager import PoolSettings
from sv2proxy.pool.validation import validate_share
from sv2proxy.pool.vardiff import VardiffConfig
from sv2proxy.server.miner import MINER_MAX_PAYLOAD, MinerFactory, Phase
from sv2proxy.server.mining import MiningService

NOW = 1_800_000_000
SETUP = SetupConnection(0, 2, 2, 0, "h", 1, "v", "hw", "fw", "id")
ANY = target_to_u256(MAX_TARGET)
WORK = Work(1, 0x20000000, True, b"head", b"tail", (hashlib.sha256(b"t").digest(),), True)
PREV = PrevHash(hashlib.sha256(b"tip").digest(), NOW - 5, 0x1D00FFFF)


@pytest.fixture
def mining():
    clock = Clock()
    clock.advance(NOW)
    settings = PoolSettings(
        layout=ExtranonceLayout(8, 2), vardiff=VardiffConfig(min_difficulty=1e-9), share_batch_size=2
    )
    service = MiningService(clock, EventBus(), settings)
    service.test_connections = []
    service.startService()
    yield service
    for protocol in service.test_connections:  # what a transport does when it closes
        protocol.connectionLost()
    service.stopService()
    assert clock.getDelayedCalls() == []


def connect(mining):
    protocol = MinerFactory(mining).buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    mining.test_connections.append(protocol)
    return protocol, transport


def sent(transport):
    messages = MessageDecoder().feed(transport.value())
    transport.clear()
    return messages


def set_up(mining, flags=0):
    protocol, transport = connect(mining)
    protocol.dataReceived(SetupConnection(0, 2, 2, flags, "h", 1, "v", "hw", "fw", "id").to_frame())
    assert sent(transport) == [SetupConnectionSuccess(2, 0)]
    return protocol, transport


def test_a_miner_opens_a_channel_gets_work_and_its_shares_answered(mining):
    events: list[Event] = []
    mining.events.subscribe(ShareSubmitted, events.append)
    protocol, transport = set_up(mining)
    protocol.dataReceived(OpenExtendedMiningChannel(3, "alice.rig1", 1.0, ANY, 4).to_frame())
    (success,) = sent(transport)
    assert isinstance(success, OpenExtendedMiningChannelSuccess)
    channel_id = success.channel_id

    job_id = mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    job, prev_hash = sent(transport)
    assert isinstance(job, NewExtendedMiningJob) and isinstance(prev_hash, SetNewPrevHash)

    channel = mining.manager.channels[channel_id]
    shares = []
    for nonce in range(10_000):
        result = validate_share(channel, job_id, nonce, NOW, 0x20000000, b"\x00" * 6, NOW)
        if result.accepted:
            del channel.seen[result.hash]
            shares.append(nonce)
            if len(shares) == 2:
                break
    for seq, nonce in enumerate(shares):
        protocol.dataReceived(
            SubmitSharesExtended(channel_id, seq, job_id, nonce, NOW, 0x20000000, b"\x00" * 6).to_frame()
        )
    (ack,) = sent(transport)
    assert isinstance(ack, SubmitSharesSuccess) and ack.new_submits_accepted_count == 2

    protocol.dataReceived(SubmitSharesExtended(channel_id, 9, job_id + 7, 0, NOW, 0x20000000, b"\x00" * 6).to_frame())
    assert sent(transport) == [SubmitSharesError(channel_id, 9, "invalid-job-id")]
    assert [e.accepted for e in events] == [True, True, False]
    assert events[0].worker == "alice.rig1"


def test_a_pending_success_is_sent_when_its_window_closes(mining):
    protocol, transport = set_up(mining)
    protocol.dataReceived(OpenExtendedMiningChannel(3, "w", 1.0, ANY, 4).to_frame())
    channel_id = sent(transport)[0].channel_id
    job_id = mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    sent(transport)
    channel = mining.manager.channels[channel_id]
    nonce = next(
        n for n in range(10_000) if validate_share(channel, job_id, n, NOW, 0x20000000, b"\x00" * 6, NOW).accepted
    )
    channel.seen.clear()
    protocol.dataReceived(SubmitSharesExtended(channel_id, 0, job_id, nonce, NOW, 0x20000000, b"\x00" * 6).to_frame())
    assert sent(transport) == []
    mining.clock.advance(1.5)
    assert [type(m) for m in sent(transport)] == [SubmitSharesSuccess]


def test_standard_jobs_only_devices_cannot_open_extended_channels(mining):
    protocol, transport = set_up(mining, flags=0b001)
    protocol.dataReceived(OpenExtendedMiningChannel(3, "w", 1.0, ANY, 4).to_frame())
    assert sent(transport) == [OpenMiningChannelError(3, "extended-channels-not-supported-for-standard-jobs")]


def test_custom_jobs_are_refused(mining):
    protocol, transport = set_up(mining)
    custom = SetCustomMiningJob(1, 2, b"", 0, bytes(32), 0, 0, 2, b"", 0, b"", 0, ())
    protocol.dataReceived(custom.to_frame())
    assert sent(transport) == [SetCustomMiningJobError(1, 2, "jd-not-supported")]


def test_closing_a_channel_and_the_connection_frees_channels(mining):
    protocol, transport = set_up(mining)
    for request_id in (1, 2):
        protocol.dataReceived(OpenExtendedMiningChannel(request_id, "w", 1.0, ANY, 4).to_frame())
    first, second = (m.channel_id for m in sent(transport))
    protocol.dataReceived(CloseChannel(first, "bye").to_frame())
    assert list(mining.manager.channels) == [second]
    protocol.connectionLost()
    assert mining.manager.channels == {}


def test_refused_setup_is_answered_then_closed(mining):
    protocol, transport = connect(mining)
    protocol.dataReceived(SetupConnection(1, 2, 2, 0, "h", 1, "v", "hw", "fw", "id").to_frame())
    assert sent(transport) == [SetupConnectionError(0, "unsupported-protocol")]
    assert transport.disconnecting
    assert protocol.phase is Phase.CLOSING


def test_anything_before_setup_closes_the_connection(mining):
    protocol, transport = connect(mining)
    protocol.dataReceived(SubmitSharesStandard(1, 1, 1, 1, 1, 1).to_frame())
    assert transport.value() == b""
    assert transport.disconnecting


def test_garbage_and_oversized_frames_close_the_connection(mining):
    protocol, transport = connect(mining)
    protocol.dataReceived(b"\x00\x00\x99\x00\x00\x00")  # unknown msg_type, empty payload
    assert transport.disconnecting

    protocol, transport = connect(mining)
    protocol.dataReceived(b"\x00\x00\x00" + (MINER_MAX_PAYLOAD + 1).to_bytes(3, "little"))
    assert transport.disconnecting


def test_messages_a_miner_never_sends_close_the_connection(mining):
    protocol, transport = set_up(mining)
    protocol.dataReceived(SetupConnectionSuccess(2, 0).to_frame())
    assert transport.disconnecting


def test_a_connection_flooding_messages_is_closed_and_others_are_not(mining):
    calm, calm_transport = set_up(mining)
    flood, flood_transport = set_up(mining)
    for request_id in range(2 * 200 + 5):
        if flood_transport.disconnecting:
            break
        flood.dataReceived(OpenExtendedMiningChannel(request_id, "w", 1.0, ANY, 4).to_frame())
    assert flood_transport.disconnecting
    calm.dataReceived(OpenExtendedMiningChannel(1, "w", 1.0, ANY, 4).to_frame())
    assert isinstance(sent(calm_transport)[0], OpenExtendedMiningChannelSuccess)
    assert not calm_transport.disconnecting


def test_idle_channels_get_a_keepalive_job_with_a_fresh_ntime(mining):
    protocol, transport = set_up(mining)
    protocol.dataReceived(OpenExtendedMiningChannel(3, "w", 1.0, ANY, 4).to_frame())
    sent(transport)
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    first_job, _ = sent(transport)
    mining.clock.advance(mining.keepalive_interval - 1)
    assert [m for m in sent(transport) if isinstance(m, NewExtendedMiningJob)] == []
    mining.clock.advance(1)
    (keepalive,) = [m for m in sent(transport) if isinstance(m, NewExtendedMiningJob)]
    assert keepalive.job_id != first_job.job_id
    assert keepalive.min_ntime == int(mining.clock.seconds())
    assert keepalive.coinbase_tx_prefix == first_job.coinbase_tx_prefix


def test_a_block_goes_to_the_block_sink_with_all_it_needs_and_is_acknowledged_at_once(mining):
    found = []

    class Sink:
        def block_found(self, block):
            found.append(block)

    mining.block_sink = Sink()
    protocol, transport = set_up(mining)
    protocol.dataReceived(OpenExtendedMiningChannel(3, "bob", 1.0, ANY, 4).to_frame())
    success = sent(transport)[0]
    job_id = mining.new_work(WORK)
    mining.new_prev_hash(1, PrevHash(PREV.prev_hash, PREV.min_ntime, 0x207FFFFF))  # regtest: easy blocks
    sent(transport)
    channel = mining.manager.channels[success.channel_id]
    for nonce in range(10_000):
        result = validate_share(channel, job_id, nonce, NOW, 0x20000000, b"\x07" * 6, NOW)
        channel.seen.clear()
        if result.is_block:
            break
    protocol.dataReceived(
        SubmitSharesExtended(success.channel_id, 0, job_id, nonce, NOW, 0x20000000, b"\x07" * 6).to_frame()
    )
    assert [type(m) for m in sent(transport)] == [SubmitSharesSuccess]  # batch size 2, but a block is acked now
    (block,) = found
    assert (block.source_id, block.extranonce, block.nonce, block.worker) == (
        1,
        success.extranonce_prefix + b"\x07" * 6,
        nonce,
        "bob",
    )
    assert block.block_hash == result.hash


def test_a_miner_that_never_sets_up_is_dropped_after_the_deadline(mining):
    from sv2proxy.server.miner import SETUP_TIMEOUT

    silent, silent_transport = connect(mining)
    ready, ready_transport = set_up(mining)
    mining.clock.advance(SETUP_TIMEOUT + 0.1)
    assert silent_transport.disconnecting
    assert not ready_transport.disconnecting


def test_a_miner_that_stops_reading_is_dropped_and_one_that_resumes_is_kept(mining):
    from sv2proxy.server.miner import STALLED_READER_TIMEOUT

    stuck, stuck_transport = set_up(mining)
    slow, slow_transport = set_up(mining)
    assert stuck_transport.producer is stuck
    stuck.pauseProducing()
    slow.pauseProducing()
    mining.clock.advance(STALLED_READER_TIMEOUT / 2)
    slow.resumeProducing()
    mining.clock.advance(STALLED_READER_TIMEOUT)
    assert stuck_transport.disconnecting
    assert not slow_transport.disconnecting


def test_a_large_fan_out_leaves_in_chunks_and_in_order(mining):
    from sv2proxy.server.mining import DELIVERY_CHUNK

    class Sink:
        def __init__(self):
            self.got = []

        def sendMessage(self, message):  # noqa: N802
            self.got.append(message)

    sinks = [Sink() for _ in range(DELIVERY_CHUNK + 10)]
    for i, sink in enumerate(sinks):
        mining.open_channel(sink, OpenExtendedMiningChannel(i, "w", 1.0, ANY, 4))
    mining.clock.advance(0)
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    # The first chunk left at once, the rest after the reactor turned once more.
    assert sum(len(s.got) for s in sinks) == len(sinks) + DELIVERY_CHUNK
    mining.clock.advance(0)
    mining.clock.advance(0)
    mining.clock.advance(0)
    for sink in sinks:
        assert [type(m) for m in sink.got] == [OpenExtendedMiningChannelSuccess, NewExtendedMiningJob, SetNewPrevHash]


def test_a_difficulty_changed_event_retargets_channels(mining):
    from sv2proxy.bitcoin.target import difficulty_to_target
    from sv2proxy.codec import SetTarget
    from sv2proxy.events import MiningDifficultyChanged

    protocol, transport = set_up(mining)
    for request_id in (1, 2):
        protocol.dataReceived(OpenExtendedMiningChannel(request_id, "w", 1.0, ANY, 4).to_frame())
    first, second = (m.channel_id for m in sent(transport))
    mining.events.publish(MiningDifficultyChanged(difficulty=0.5, channel_id=second))
    assert sent(transport) == [SetTarget(second, target_to_u256(difficulty_to_target(0.5)))]
    mining.events.publish(MiningDifficultyChanged(difficulty=2.0))
    assert [m.channel_id for m in sent(transport)] == [first, second]


def test_close_channel_on_the_group_id_closes_every_member(mining):
    protocol, transport = set_up(mining)
    for request_id in (1, 2):
        protocol.dataReceived(OpenExtendedMiningChannel(request_id, "w", 1.0, ANY, 4).to_frame())
    opened = sent(transport)
    group = opened[0].group_channel_id
    assert group and {m.group_channel_id for m in opened} == {group}
    protocol.dataReceived(CloseChannel(group, "bye").to_frame())
    assert mining.manager.channels == {}
    assert not transport.disconnecting


def test_accepted_shares_reach_the_share_sink_with_their_full_extranonce(mining):
    shares = []

    class Sink:
        def share_accepted(self, share):
            shares.append(share)

    mining.share_sink = Sink()
    protocol, transport = set_up(mining)
    protocol.dataReceived(OpenExtendedMiningChannel(3, "carol", 1.0, ANY, 4).to_frame())
    success = sent(transport)[0]
    job_id = mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    sent(transport)
    channel = mining.manager.channels[success.channel_id]
    for nonce in range(10_000):
        result = validate_share(channel, job_id, nonce, NOW, 0x20000000, b"\x05" * 6, NOW)
        channel.seen.clear()
        if result.accepted:
            break
    share = SubmitSharesExtended(success.channel_id, 0, job_id, nonce, NOW, 0x20000000, b"\x05" * 6)
    assert mining.submit(protocol, share).accepted
    assert mining.submit(protocol, share).error_code == "duplicate-share"  # only accepted ones go on
    (accepted,) = shares
    assert (accepted.source_id, accepted.extranonce, accepted.nonce, accepted.worker, accepted.is_block) == (
        1,
        success.extranonce_prefix + b"\x05" * 6,
        nonce,
        "carol",
        False,
    )
    assert accepted.share_hash == result.hash and accepted.difficulty > 0


def test_an_owner_calling_back_while_being_delivered_to_keeps_the_order(mining):
    order = []

    class Owner:
        def sendMessage(self, message):  # noqa: N802
            order.append(type(message).__name__)
            if isinstance(message, SetTarget):
                # What a Stratum V1 miner does on a new target: ask for a fresh job at once.
                mining.refresh_channel(self, message.channel_id)

    owner = Owner()
    mining.open_channel(owner, OpenExtendedMiningChannel(1, "dave", 1.0, ANY, 2), grouped=False)
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    channel_id = next(iter(mining.manager.channels))
    mining.events.publish(MiningDifficultyChanged(8.0, channel_id))
    assert order == [
        "OpenExtendedMiningChannelSuccess",
        "NewExtendedMiningJob",
        "SetNewPrevHash",
        "SetTarget",
        "NewExtendedMiningJob",
    ]
    mining.connection_lost(owner)


def test_a_proxy_negotiates_worker_names_and_its_shares_are_credited_to_them(mining):
    from sv2proxy.codec import RequestExtensions, RequestExtensionsError, RequestExtensionsSuccess
    from sv2proxy.codec.tlv import worker_name_tlv

    events: list[Event] = []
    mining.events.subscribe(ShareSubmitted, events.append)
    protocol, transport = set_up(mining)
    protocol.dataReceived(RequestExtensions(7, (0x0002, 0x0999)).to_frame())
    assert sent(transport) == [RequestExtensionsSuccess(7, (0x0002,))]
    protocol.dataReceived(OpenExtendedMiningChannel(3, "farm", 1.0, ANY, 4).to_frame())
    success = sent(transport)[0]
    job_id = mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    sent(transport)
    share = SubmitSharesExtended(success.channel_id, 0, job_id, 0, NOW, 0x20000000, b"\x00" * 6)
    protocol.dataReceived(dataclasses.replace(share, tlvs=(worker_name_tlv("farm.rig42"),)).to_frame())
    protocol.dataReceived(dataclasses.replace(share, sequence_number=1, nonce=1).to_frame())
    assert [event.worker for event in events] == ["farm.rig42", "farm"]  # unnamed: the channel's user
    # Asking only for what we do not know is an error, and the connection stays.
    other, other_transport = set_up(mining)
    other.dataReceived(RequestExtensions(1, (0x0999,)).to_frame())
    assert sent(other_transport) == [RequestExtensionsError(1, (0x0999,), ())]
    assert not other_transport.disconnecting


def test_a_smaller_upstream_space_drops_work_cut_for_the_old_one(mining):
    protocol, transport = set_up(mining)
    protocol.dataReceived(OpenExtendedMiningChannel(3, "erin", 1.0, ANY, 2).to_frame())
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    mining.set_extranonce_space(b"\xaa\xbb", 10)  # our 8 bytes fit: the current work stays
    assert mining.manager.refresh_work(NOW) is not None
    mining.set_extranonce_space(b"\xaa\xbb", 8)  # 6 left: the coinbase of the current work no longer fits
    assert mining.manager.refresh_work(NOW) is None  # no keepalive, no catch-up job, from it
    other, other_transport = set_up(mining)
    other.dataReceived(OpenExtendedMiningChannel(4, "frank", 1.0, ANY, 2).to_frame())
    assert [type(m) for m in sent(other_transport)] == [OpenExtendedMiningChannelSuccess]
