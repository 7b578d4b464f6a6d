"""MinerChannels: one upstream channel per local channel on one connection, as ordered actions.

Setup, opening with each miner's identity and a request id of its own, routing by request id,
channel id and group, each miner's work with its upstream prefix fixed in the coinbase, shares
on the miner's own channel, and a channel refused, closed or broken ending alone."""

from __future__ import annotations

import pytest

from sv2proxy.codec.common import ChannelEndpointChanged, Reconnect, SetupConnection, SetupConnectionSuccess
from sv2proxy.codec.extensions import RequestExtensions, RequestExtensionsSuccess
from sv2proxy.codec.mining import (
    CloseChannel,
    NewExtendedMiningJob,
    NewMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    OpenStandardMiningChannelSuccess,
    SetCustomMiningJobSuccess,
    SetExtranoncePrefix,
    SetGroupChannel,
    SetNewPrevHash,
    SetTarget,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSharesSuccess,
    UpdateChannel,
    UpdateChannelError,
)
from sv2proxy.pool.jobs import PrevHash
from sv2proxy.upstream.miner_channels import (
    REASON_MINER_GONE,
    REASON_PROTOCOL,
    ConnectionReady,
    ForMiner,
    MinerChannelClosed,
    MinerChannels,
)
from sv2proxy.upstream.session import (
    ANY_TARGET,
    ChannelOpened,
    ExtranoncePrefixChanged,
    Fatal,
    Ignored,
    NewPrevHash,
    NewWork,
    Phase,
    ReconnectTo,
    SendMessage,
    ShareResult,
    TargetChanged,
)

from .fakes import EASY_HASH, HARD_HASH, share

LOCAL = 6  # the local channels' extranonce space: what each upstream channel must grant
TARGET = 1 << 240
GROUP = 50
PREV = PrevHash(bytes(range(32)), 1_700_000_000, 0x1D00FFFF)


def ready(**kwargs) -> MinerChannels:
    m = MinerChannels(LOCAL, "pool.example", 3333, **kwargs)
    m.start()
    m.receive(SetupConnectionSuccess(2, 0))
    return m


def success(request_id: int, channel_id: int, prefix: bytes, size: int = 8, group: int = GROUP):
    return OpenExtendedMiningChannelSuccess(request_id, channel_id, TARGET.to_bytes(32, "little"), size, prefix, group)


def two_open() -> MinerChannels:
    """Local channels 3 (alice) and 4 (bob) open as upstream 11 and 12, both in group GROUP."""
    m = ready()
    m.open(3, "alice", 1e6)
    m.open(4, "bob", 2e6)
    m.receive(success(1, 11, b"\xa1"))
    m.receive(success(2, 12, b"\xb2"))
    return m


def job(channel_id: int, job_id: int, min_ntime: int | None = None) -> NewExtendedMiningJob:
    return NewExtendedMiningJob(channel_id, job_id, min_ntime, 0x20000000, True, (), b"head", b"tail")


def prev_hash(channel_id: int, job_id: int) -> SetNewPrevHash:
    return SetNewPrevHash(channel_id, job_id, PREV.prev_hash, PREV.min_ntime, PREV.nbits)


def test_channels_wait_for_the_setup_then_open_each_with_its_miners_identity():
    m = MinerChannels(LOCAL, "pool.example", 3333, firmware="1.0")
    [setup] = m.start()
    assert isinstance(setup, SetupConnection) and setup.firmware == "1.0"
    assert m.open(3, "alice", 1e6) == []  # not set up yet: waits
    assert m.receive(SetupConnectionSuccess(2, 0)) == [
        SendMessage(RequestExtensions(1, (0x0002,))),
        ConnectionReady(0),
        SendMessage(OpenExtendedMiningChannel(1, "alice", 1e6, ANY_TARGET, LOCAL)),
    ]
    assert m.is_open and m.phase is Phase.READY
    assert m.open(4, "bob", 2e6) == [OpenExtendedMiningChannel(2, "bob", 2e6, ANY_TARGET, LOCAL)]
    assert m.open(4, "bob", 2e6) == []  # one channel per local channel
    # A Stratum V1 username too long for a STR0_255 is cut, not refused.
    [long] = m.open(5, "x" * 300, 0.0)
    assert long.user_identity == "x" * 255 and long.request_id == 3


def test_without_request_extensions_only_the_channels_are_opened():
    m = MinerChannels(LOCAL, request_extensions=False)
    m.start()
    m.open(3, "alice", 0.0)
    assert m.receive(SetupConnectionSuccess(2, 0)) == [
        ConnectionReady(0),
        SendMessage(OpenExtendedMiningChannel(1, "alice", 0.0, ANY_TARGET, LOCAL)),
    ]


def test_answers_go_to_the_channel_that_asked_and_its_work_carries_its_prefix():
    m = ready()
    m.open(3, "alice", 0.0)
    m.open(4, "bob", 0.0)
    # The pool answers out of order, and grants alice two bytes more than the miners roll.
    assert m.receive(success(2, 12, b"\xb2")) == [ForMiner(4, ChannelOpened(12, b"\xb2", 8, TARGET, GROUP))]
    [opened] = m.receive(success(1, 11, b"\xa1", size=LOCAL + 2, group=0))
    assert opened == ForMiner(3, ChannelOpened(11, b"\xa1", LOCAL + 2, TARGET, 0))
    assert (m.upstream_channel_of(3), m.upstream_channel_of(4), m.upstream_channel_of(5)) == (11, 12, None)
    [alice_work] = m.receive(job(11, 1))
    assert isinstance(alice_work, ForMiner) and alice_work.channel_id == 3
    assert isinstance(alice_work.action, NewWork)
    work = alice_work.action.work
    fixed = b"\xa1\x00\x00"  # the prefix, then the bytes granted beyond the local space
    assert (work.fixed_extranonce, work.coinbase_prefix, work.source_id) == (fixed, b"head" + fixed, 1)
    [bob_work] = m.receive(job(12, 1))
    assert bob_work.action.work.fixed_extranonce == b"\xb2" + bytes(8 - LOCAL)
    assert m.receive(prev_hash(11, 1)) == [ForMiner(3, NewPrevHash(1, PREV))]


def test_messages_to_the_group_reach_every_member():
    m = two_open()
    actions = m.receive(job(GROUP, 5))
    assert [(a.channel_id, a.action.work.fixed_extranonce[:1]) for a in actions] == [(3, b"\xa1"), (4, b"\xb2")]
    assert m.receive(prev_hash(GROUP, 5)) == [ForMiner(3, NewPrevHash(5, PREV)), ForMiner(4, NewPrevHash(5, PREV))]
    easier = (TARGET * 2).to_bytes(32, "little")
    assert m.receive(SetTarget(GROUP, easier)) == [
        ForMiner(3, TargetChanged(TARGET * 2)),
        ForMiner(4, TargetChanged(TARGET * 2)),
    ]
    # Shares and prefixes are per channel, never per group.
    [ignored] = m.receive(SetExtranoncePrefix(GROUP, b"\xcc"))
    assert isinstance(ignored, Ignored)
    assert m.receive(SetExtranoncePrefix(11, b"\xcc")) == [ForMiner(3, ExtranoncePrefixChanged(b"\xcc", 8))]
    assert isinstance(m.receive(job(99, 1))[0], Ignored)


def test_set_group_channel_moves_only_the_channels_it_names():
    m = two_open()
    assert m.receive(SetGroupChannel(77, (11,))) == []
    assert [a.channel_id for a in m.receive(job(77, 1))] == [3]
    assert [a.channel_id for a in m.receive(job(GROUP, 2))] == [4]
    assert isinstance(m.receive(SetGroupChannel(88, (99,)))[0], Ignored)


def test_a_share_goes_on_its_miners_own_channel_and_the_verdict_comes_back_to_it():
    m = two_open()
    m.receive(job(GROUP, 5))
    m.receive(prev_hash(GROUP, 5))
    alice_fixed = b"\xa1" + bytes(8 - LOCAL)
    bob_fixed = b"\xb2" + bytes(8 - LOCAL)
    local = b"\x00\x01" + b"\x99" * 4  # alice's local prefix and what she rolled
    [alice_share] = m.submit(share(5, alice_fixed + local, channel_id=3, worker="alice"), now=10.0)
    assert isinstance(alice_share, SubmitSharesExtended)
    assert (alice_share.channel_id, alice_share.sequence_number, alice_share.job_id) == (11, 0, 5)
    assert alice_share.extranonce == bytes(8 - LOCAL) + local  # everything after the pool's prefix
    [bob_share] = m.submit(share(5, bob_fixed + local, channel_id=4, worker="bob"), now=11.0)
    assert (bob_share.channel_id, bob_share.sequence_number) == (12, 0)  # each channel counts its own
    assert m.submit(share(5, bob_fixed + local, HARD_HASH, channel_id=4)) == []  # below the pool's target
    assert m.submit(share(5, alice_fixed + local, channel_id=9)) == []  # no such miner
    assert (m.forwarded, m.in_flight, m.oldest_in_flight_at) == (2, 2, 10.0)
    assert m.not_forwarded["no upstream channel for the miner"] == 1
    assert m.receive(SubmitSharesSuccess(11, 0, 1, 1)) == [
        ForMiner(3, ShareResult(0, True, None, 5, "alice", 3, False))
    ]
    assert m.receive(SubmitSharesError(12, 0, "stale-share")) == [
        ForMiner(4, ShareResult(0, False, "stale-share", 5, "bob", 4, False))
    ]
    assert (m.accepted, m.rejected["stale-share"], m.in_flight, m.oldest_in_flight_at) == (1, 1, 0, None)
    assert m.submit(share(5, alice_fixed + local, EASY_HASH, channel_id=3, is_block=True))[0].channel_id == 11


def test_worker_names_and_hash_rates_go_on_each_channel():
    m = two_open()
    m.receive(RequestExtensionsSuccess(1, (0x0002,)))
    assert m.worker_names and all(session.worker_names for session in m.channels.values())
    m.receive(job(GROUP, 5))
    m.receive(prev_hash(GROUP, 5))
    [message] = m.submit(share(5, b"\xa1" + bytes(8), channel_id=3, worker="alice"))
    assert message.worker_name == "alice"
    assert m.update_channels({3: 5e6, 4: 0.0, 9: 1e6}) == [UpdateChannel(11, 5e6, ANY_TARGET)]


def test_a_refused_channel_ends_alone_and_the_others_go_on():
    m = ready()
    m.open(3, "not-an-address", 0.0)
    m.open(4, "bob", 0.0)
    assert m.receive(OpenMiningChannelError(1, "invalid-user-identity")) == [
        MinerChannelClosed(3, "the pool refused our channel: 'invalid-user-identity'")
    ]
    assert list(m.channels) == [4] and m.is_open
    # Too little extranonce for the local miners: given up, and the pool is told.
    assert m.receive(success(2, 12, b"\xb2", size=LOCAL - 1)) == [
        MinerChannelClosed(4, f"the pool granted {LOCAL - 1} extranonce bytes, we need {LOCAL}")
    ]
    assert m.channels == {}


def test_a_channel_the_pool_closes_or_that_breaks_the_protocol_ends_alone():
    m = two_open()
    assert m.receive(CloseChannel(11, "bye")) == [MinerChannelClosed(3, "the pool closed our channel: 'bye'")]
    assert m.receive(NewMiningJob(12, 1, None, 0x20000000, bytes(32))) == [
        SendMessage(CloseChannel(12, REASON_PROTOCOL)),
        MinerChannelClosed(4, "NewMiningJob (a standard-channel job) on our extended channel"),
    ]
    assert m.channels == {} and m.is_open
    assert isinstance(m.receive(job(11, 1))[0], Ignored)  # a channel that is gone


def test_a_miner_leaving_closes_its_upstream_channel_even_before_it_opened():
    m = two_open()
    assert m.close(3) == [CloseChannel(11, REASON_MINER_GONE)]
    assert m.close(3) == [] and list(m.channels) == [4]
    assert isinstance(m.receive(SubmitSharesSuccess(11, 0, 1, 1))[0], Ignored)
    m.open(5, "carol", 0.0)
    m.open(6, "dave", 0.0)
    assert m.close(5) == [] and m.close(6) == []
    # The pool's late answers: the opened one is closed at once, the refused one forgotten.
    assert m.receive(success(3, 13, b"\xc3")) == [SendMessage(CloseChannel(13, REASON_MINER_GONE))]
    assert m.receive(OpenMiningChannelError(4, "unknown-user")) == []
    assert isinstance(m.receive(success(3, 14, b"\xc3"))[0], Ignored)
    # A channel never opened upstream (the connection not set up) closes quietly.
    waiting = MinerChannels(LOCAL)
    waiting.start()
    waiting.open(3, "alice", 0.0)
    assert waiting.close(3) == [] and waiting.channels == {}


def test_connection_messages_and_faults():
    m = two_open()
    assert m.receive(Reconnect("", 4444)) == [ReconnectTo("pool.example", 4444)]
    assert isinstance(m.receive(ChannelEndpointChanged(11))[0], Ignored)
    assert isinstance(m.receive(SetCustomMiningJobSuccess(11, 1, 1))[0], Ignored)
    assert isinstance(m.receive(UpdateChannelError(11, "max-target-out-of-range"))[0], ForMiner)
    assert m.receive(SetupConnectionSuccess(2, 0)) == [Fatal("a second SetupConnectionSuccess")]
    assert m.receive(job(11, 1)) == []  # closed: nothing more


@pytest.mark.parametrize(
    "message",
    [OpenStandardMiningChannelSuccess(1, 1, bytes(32), b"", 0)],
)
def test_what_no_pool_sends_a_proxy_is_fatal(message):
    m = two_open()
    assert m.receive(message) == [Fatal(f"unexpected {type(message).__name__} from a pool")]


def test_a_refused_setup_is_fatal_for_the_connection():
    m = MinerChannels(LOCAL)
    m.start()
    m.open(3, "alice", 0.0)
    [fatal] = m.receive(SetupConnection(0, 2, 2, 0, "", 0, "", "", "", ""))
    assert isinstance(fatal, Fatal) and m.phase is Phase.CLOSED
