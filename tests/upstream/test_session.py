"""UpstreamSession: every message path and every error path, as ordered actions."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec.strategies import any_message
from sv2proxy.codec.common import (
    ChannelEndpointChanged,
    Reconnect,
    SetupConnection,
    SetupConnectionError,
    SetupConnectionSuccess,
)
from sv2proxy.codec.constants import REQUIRES_EXTENDED_CHANNELS, REQUIRES_FIXED_VERSION
from sv2proxy.codec.extensions import RequestExtensions, RequestExtensionsError, RequestExtensionsSuccess
from sv2proxy.codec.framing import Frame
from sv2proxy.codec.message import Message
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
from sv2proxy.codec.registry import decode_frame
from sv2proxy.codec.template_distribution import NewTemplate
from sv2proxy.errors import ProtocolError
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.upstream.session import (
    ANY_TARGET,
    F32_MAX,
    MAX_IN_FLIGHT,
    MAX_JOBS,
    MAX_REJECT_CODES,
    OTHER,
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
    UpstreamSession,
)

from .fakes import EASY_HASH, HARD_HASH, share

CHANNEL = 5
GROUP = 7
PREFIX = b"\xaa\xbb"
SIZE = 8
TARGET = 1 << 240
NBITS = 0x1D00FFFF
PREV_HASH = bytes(range(32))
PATH = (b"\x11" * 32, b"\x22" * 32)


def session(**kwargs) -> UpstreamSession:
    return UpstreamSession("proxy.worker", 1e9, 6, "pool.example", 3333, **kwargs)


def opened(target: int = TARGET, prefix: bytes = PREFIX, size: int = SIZE, group: int = GROUP) -> UpstreamSession:
    s = session()
    s.start()
    s.receive(SetupConnectionSuccess(2, 0))
    [action] = s.receive(
        OpenExtendedMiningChannelSuccess(1, CHANNEL, target.to_bytes(32, "little"), size, prefix, group)
    )
    assert isinstance(action, ChannelOpened)
    return s


def job(job_id: int, min_ntime: int | None = None, channel_id: int = CHANNEL, rolling: bool = True):
    return NewExtendedMiningJob(channel_id, job_id, min_ntime, 0x20000000, rolling, PATH, b"\x01" * 40, b"\x02" * 60)


def work(job_id: int, min_ntime: int | None = None, rolling: bool = True) -> Work:
    return Work(
        source_id=job_id,
        version=0x20000000,
        version_rolling_allowed=rolling,
        coinbase_prefix=b"\x01" * 40,
        coinbase_suffix=b"\x02" * 60,
        merkle_path=PATH,
        future=min_ntime is None,
        min_ntime=min_ntime,
    )


def prev_hash(job_id: int, channel_id: int = CHANNEL, nbits: int = NBITS) -> SetNewPrevHash:
    return SetNewPrevHash(channel_id, job_id, PREV_HASH, 1_700_000_000, nbits)


def mining(job_id: int = 1) -> UpstreamSession:
    """An open session with future job ``job_id`` active on a prev hash."""
    s = opened()
    s.receive(job(job_id))
    s.receive(prev_hash(job_id))
    return s


def full(rolled: bytes = b"\x00\x01" + b"\x99" * 6, prefix: bytes = PREFIX) -> bytes:
    return prefix + rolled


# -- setup and opening ------------------------------------------------------------------------


def test_start_sends_one_setup_connection_asking_for_version_rolling():
    s = session(firmware="0.1.0")
    assert s.start() == [
        SetupConnection(
            protocol=0,
            min_version=2,
            max_version=2,
            flags=0b100,  # REQUIRES_VERSION_ROLLING, as the SRI translator
            endpoint_host="pool.example",
            endpoint_port=3333,
            vendor="sv2proxy",
            hardware_version="proxy",
            firmware="0.1.0",
            device_id="",
        )
    ]
    assert s.start() == [] and s.phase is Phase.SETTING_UP


def test_setup_success_opens_exactly_one_extended_channel():
    s = session()
    s.start()
    assert s.receive(SetupConnectionSuccess(2, REQUIRES_EXTENDED_CHANNELS)) == [
        SendMessage(RequestExtensions(1, (0x0002,))),  # worker names, if the pool takes them
        SendMessage(OpenExtendedMiningChannel(1, "proxy.worker", 1e9, ANY_TARGET, 6)),
    ]
    success = OpenExtendedMiningChannelSuccess(1, CHANNEL, TARGET.to_bytes(32, "little"), SIZE, PREFIX, GROUP)
    assert s.receive(success) == [ChannelOpened(CHANNEL, PREFIX, SIZE, TARGET, GROUP)]
    assert (s.phase, s.channel_id, s.group_channel_id, s.extranonce_prefix, s.extranonce_size, s.target) == (
        Phase.OPEN,
        CHANNEL,
        GROUP,
        PREFIX,
        SIZE,
        TARGET,
    )
    assert s.total_extranonce_size == 10 and s.is_open
    # A second answer to our one request opens nothing more.
    assert isinstance(s.receive(success)[0], Ignored)


def test_without_request_extensions_setup_success_only_opens_the_channel():
    s = session(request_extensions=False)
    s.start()
    assert s.receive(SetupConnectionSuccess(2, 0)) == [
        SendMessage(OpenExtendedMiningChannel(1, "proxy.worker", 1e9, ANY_TARGET, 6)),
    ]
    assert s.phase is Phase.OPENING and not s.worker_names


def test_a_connection_without_its_own_channel_is_ready_after_setup():
    s = session(open_after_setup=False)
    s.start()
    assert s.receive(SetupConnectionSuccess(2, 0)) == [SendMessage(RequestExtensions(1, (0x0002,)))]
    assert s.phase is Phase.READY and s.channel_id is None
    assert s.receive(RequestExtensionsSuccess(1, (0x0002,))) == [] and s.worker_names
    assert isinstance(s.receive(job(1))[0], Ignored)  # channel messages are for the channel sessions
    assert s.receive(Reconnect("", 4444)) == [ReconnectTo("pool.example", 4444)]
    assert s.open() == []  # it opens no channel of its own
    quiet = session(open_after_setup=False, request_extensions=False)
    quiet.start()
    assert quiet.receive(SetupConnectionSuccess(2, 0)) == [] and quiet.phase is Phase.READY


def test_a_channel_session_opens_with_its_own_request_id_on_a_set_up_connection():
    s = session(request_id=9)
    assert s.open(setup_flags=REQUIRES_EXTENDED_CHANNELS, worker_names=True) == [
        OpenExtendedMiningChannel(9, "proxy.worker", 1e9, ANY_TARGET, 6)
    ]
    assert s.open() == [] and s.phase is Phase.OPENING
    assert (s.setup_flags, s.worker_names) == (REQUIRES_EXTENDED_CHANNELS, True)
    other = OpenExtendedMiningChannelSuccess(1, CHANNEL, TARGET.to_bytes(32, "little"), SIZE, PREFIX, 0)
    assert s.receive(other) == [Fatal("a channel for request 1; we asked with 9")]
    s = session(request_id=9)
    s.open()
    success = OpenExtendedMiningChannelSuccess(9, CHANNEL, TARGET.to_bytes(32, "little"), SIZE, PREFIX, 0)
    assert s.receive(success) == [ChannelOpened(CHANNEL, PREFIX, SIZE, TARGET, 0)]


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (
            SetupConnectionError(0b100, "unsupported-feature-flags"),
            "refused SetupConnection: 'unsupported-feature-flags'",
        ),
        (SetupConnectionSuccess(3, 0), "protocol version 3"),
        (SetupConnectionSuccess(2, REQUIRES_FIXED_VERSION), "fixed version"),
        (SetTarget(CHANNEL, ANY_TARGET), "SetTarget before SetupConnection.Success"),
        (Reconnect("", 0), "Reconnect before SetupConnection.Success"),
    ],
)
def test_a_refused_or_broken_setup_is_fatal_and_ends_the_session(answer, words):
    s = session()
    s.start()
    [fatal] = s.receive(answer)
    assert isinstance(fatal, Fatal) and words in fatal.reason
    assert s.phase is Phase.CLOSED
    assert s.receive(SetupConnectionSuccess(2, 0)) == []  # nothing after the end


def test_a_message_before_start_is_fatal():
    [fatal] = session().receive(SetupConnectionSuccess(2, 0))
    assert isinstance(fatal, Fatal) and "before we sent SetupConnection" in fatal.reason


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (OpenMiningChannelError(1, "unknown-user"), "refused our channel: 'unknown-user'"),
        (OpenExtendedMiningChannelSuccess(2, CHANNEL, ANY_TARGET, SIZE, PREFIX, 0), "request 2"),
        (
            OpenExtendedMiningChannelSuccess(1, CHANNEL, ANY_TARGET, 5, PREFIX, 0),
            "granted 5 extranonce bytes, we need 6",
        ),
        (OpenExtendedMiningChannelSuccess(1, CHANNEL, ANY_TARGET, 20, b"\x00" * 13, 0), "longer than 32"),
        (OpenExtendedMiningChannelSuccess(1, CHANNEL, bytes(32), SIZE, PREFIX, 0), "target of 0"),
        (OpenStandardMiningChannelSuccess(1, CHANNEL, ANY_TARGET, PREFIX, 0), "unexpected"),
        (SetupConnectionSuccess(2, 0), "a second SetupConnectionSuccess"),
    ],
)
def test_a_refused_or_unusable_channel_is_fatal(answer, words):
    s = session()
    s.start()
    s.receive(SetupConnectionSuccess(2, 0))
    [fatal] = s.receive(answer)
    assert isinstance(fatal, Fatal) and words in fatal.reason, fatal
    assert s.phase is Phase.CLOSED


@pytest.mark.parametrize(
    "early",
    [job(1), prev_hash(1), SetTarget(CHANNEL, ANY_TARGET), NewMiningJob(CHANNEL, 1, None, 2, bytes(32))]
    + [SetGroupChannel(GROUP, (CHANNEL,))],
)
def test_channel_messages_before_our_channel_is_open_are_ignored(early):
    s = session()
    s.start()
    s.receive(SetupConnectionSuccess(2, 0))
    [ignored] = s.receive(early)
    assert isinstance(ignored, Ignored) and "before our channel is open" in ignored.reason
    assert s.phase is Phase.OPENING


# -- jobs and prev hashes ---------------------------------------------------------------------


def test_future_jobs_become_future_work_and_set_new_prev_hash_activates_them():
    s = opened()
    assert s.receive(job(1)) == [NewWork(work(1))]
    assert s.receive(prev_hash(1)) == [NewPrevHash(1, PrevHash(PREV_HASH, 1_700_000_000, NBITS))]
    assert s.prev == PrevHash(PREV_HASH, 1_700_000_000, NBITS)
    # A job with min_ntime applies at once, on the current prev hash.
    assert s.receive(job(2, min_ntime=1_700_000_030)) == [NewWork(work(2, 1_700_000_030))]


def test_jobs_to_our_group_count_and_the_same_job_twice_is_announced_once():
    s = opened()
    assert s.receive(job(1, channel_id=GROUP)) == [NewWork(work(1))]
    [ignored] = s.receive(job(1, channel_id=CHANNEL))  # the same job, now to the channel
    assert isinstance(ignored, Ignored) and "twice" in ignored.reason
    assert s.receive(prev_hash(1, channel_id=GROUP))[0] == NewPrevHash(1, PrevHash(PREV_HASH, 1_700_000_000, NBITS))
    [ignored] = s.receive(prev_hash(1, channel_id=CHANNEL))
    assert isinstance(ignored, Ignored) and "twice" in ignored.reason


def test_a_job_that_forbids_version_rolling_is_passed_on_as_such():
    s = opened()
    assert s.receive(job(1, rolling=False)) == [NewWork(work(1, rolling=False))]


def test_odd_job_and_prev_hash_messages_are_ignored_with_a_reason():
    s = opened()
    cases = [
        (job(1, min_ntime=1_700_000_000), "no SetNewPrevHash came yet"),
        (prev_hash(9), "never announced as a future job"),
        (job(1, channel_id=99), "not ours"),
        (prev_hash(1, channel_id=99), "not ours"),
    ]
    for message, words in cases:
        [ignored] = s.receive(message)
        assert isinstance(ignored, Ignored) and words in ignored.reason, (message, ignored)
    assert s.phase is Phase.OPEN


@pytest.mark.parametrize("nbits", [0x1D80FFFF, 0xFF00FFFF, 0x01003456])  # negative, overflowing, zero
def test_a_prev_hash_with_an_unusable_nbits_is_fatal(nbits):
    s = opened()
    s.receive(job(1))
    [fatal] = s.receive(prev_hash(1, nbits=nbits))
    assert isinstance(fatal, Fatal) and "nbits" in fatal.reason


def test_a_new_prev_hash_retires_every_other_job_so_their_ids_may_come_again():
    s = mining(1)
    s.receive(job(2))  # a future job for a tip that never comes
    s.receive(job(3))
    assert s.receive(prev_hash(3)) == [NewPrevHash(3, PrevHash(PREV_HASH, 1_700_000_000, NBITS))]
    assert s.submit(share(1, full())) == []  # job 1 is gone
    assert s.not_forwarded["unknown job"] == 1
    assert s.receive(job(2)) == [NewWork(work(2))]  # a new job with an old id: not a duplicate


def test_too_many_jobs_evict_active_ones_before_a_future_job_awaiting_its_prev_hash():
    s = mining(1)
    s.receive(job(2))  # future: the next SetNewPrevHash may name it
    for job_id in range(100, 100 + MAX_JOBS):
        assert s.receive(job(job_id, min_ntime=1_700_000_000)) == [NewWork(work(job_id, 1_700_000_000))]
    # Two too many: the two oldest active jobs went, not the older future one.
    assert s.submit(share(1, full())) == [] and s.submit(share(100, full())) == []
    assert s.submit(share(101, full())) != []
    assert s.receive(prev_hash(2)) == [NewPrevHash(2, PrevHash(PREV_HASH, 1_700_000_000, NBITS))]


def test_new_mining_job_on_our_extended_channel_is_fatal_and_elsewhere_ignored():
    s = opened()
    [ignored] = s.receive(NewMiningJob(99, 1, None, 0x20000000, bytes(32)))
    assert isinstance(ignored, Ignored)
    [fatal] = s.receive(NewMiningJob(CHANNEL, 1, None, 0x20000000, bytes(32)))
    assert isinstance(fatal, Fatal) and "standard-channel job" in fatal.reason


# -- target and extranonce --------------------------------------------------------------------


def test_set_target_applies_to_future_jobs_and_new_ones_but_not_to_active_ones():
    s = mining(1)  # job 1 active with TARGET
    s.receive(job(2))  # future, TARGET for now
    harder = TARGET >> 8
    assert s.receive(SetTarget(GROUP, harder.to_bytes(32, "little"))) == [TargetChanged(harder)]
    assert s.target == harder
    s.receive(job(3, min_ntime=1_700_000_001))  # made after SetTarget
    between = (harder + 1).to_bytes(32, "little")  # meets TARGET, not the harder one
    assert len(s.submit(share(1, full(), between))) == 1  # active: judged by TARGET
    assert s.submit(share(2, full(), between)) == []  # future: now the harder target
    assert s.submit(share(3, full(), between)) == []
    assert s.below_target == 2


def test_a_set_target_of_zero_is_ignored_and_one_that_changes_nothing_is_silent():
    s = opened()
    [ignored] = s.receive(SetTarget(CHANNEL, bytes(32)))
    assert isinstance(ignored, Ignored) and s.target == TARGET
    assert s.receive(SetTarget(CHANNEL, TARGET.to_bytes(32, "little"))) == []


def test_set_extranonce_prefix_applies_to_jobs_received_after_it():
    s = mining(1)
    assert s.receive(SetExtranoncePrefix(CHANNEL, b"\xcc\xdd\xee")) == [ExtranoncePrefixChanged(b"\xcc\xdd\xee", SIZE)]
    s.receive(job(2, min_ntime=1_700_000_001))
    old = s.submit(share(1, full()))
    new = s.submit(share(2, full(prefix=b"\xcc\xdd\xee")))
    assert [m.extranonce for m in old + new] == [b"\x00\x01" + b"\x99" * 6] * 2
    # A share carrying the wrong prefix for its job is not ours to send.
    assert s.submit(share(2, full())) == [] and s.not_forwarded["extranonce outside the channel's space"] == 1


def test_set_extranonce_prefix_to_a_group_is_ignored_and_one_too_long_is_fatal():
    s = opened()
    [ignored] = s.receive(SetExtranoncePrefix(GROUP, b"\x01"))
    assert isinstance(ignored, Ignored)
    [fatal] = s.receive(SetExtranoncePrefix(CHANNEL, b"\x01" * 25))
    assert isinstance(fatal, Fatal) and "leaves no room" in fatal.reason


# -- shares -----------------------------------------------------------------------------------


def test_a_share_meeting_the_upstream_target_is_forwarded_without_the_upstream_prefix():
    s = mining(1)
    [message] = s.submit(share(1, full()))
    assert message == SubmitSharesExtended(
        channel_id=CHANNEL,
        sequence_number=0,
        job_id=1,
        nonce=42,
        ntime=1_700_000_000,
        version=0x20000000,
        extranonce=b"\x00\x01" + b"\x99" * 6,
    )
    assert s.submit(share(1, full()))[0].sequence_number == 1
    assert (s.forwarded, s.in_flight) == (2, 2)


def test_worker_names_go_with_shares_only_when_the_pool_took_extension_2():
    s = mining(1)
    assert s.submit(share(1, full()))[0].tlvs == ()  # not negotiated (yet)
    assert s.receive(RequestExtensionsSuccess(1, (0x0002,))) == []
    [message] = s.submit(share(1, full(), worker="alice.rig-with-a-rather-long-name-ü"))
    assert message.worker_name == "alice.rig-with-a-rather-long-nam"  # cut to 32 bytes
    assert len(message.to_frame()) > len(dataclasses.replace(message, tlvs=()).to_frame())
    assert isinstance(s.receive(RequestExtensionsError(1, (0x0002,), ()))[0], Ignored)
    assert s.submit(share(1, full()))[0].tlvs == ()


def test_shares_below_the_upstream_target_stay_local_unless_they_are_blocks():
    s = mining(1)
    assert s.submit(share(1, full(), HARD_HASH)) == []
    assert s.below_target == 1 and s.in_flight == 0
    [block] = s.submit(share(1, full(), HARD_HASH, is_block=True))
    assert block.job_id == 1 and s.in_flight == 1


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda s: share(9, full()), "unknown job"),
        (lambda s: share(1, full()[:-1]), "extranonce outside the channel's space"),
        (lambda s: share(1, b"\x00\x00" + full()[2:]), "extranonce outside the channel's space"),
    ],
)
def test_shares_that_cannot_be_for_the_pool_are_not_forwarded(make, reason):
    s = mining(1)
    assert s.submit(make(s)) == []
    assert s.not_forwarded == {reason: 1}


def test_shares_before_the_channel_opens_or_after_the_end_are_not_forwarded():
    s = session()
    assert s.submit(share(1, full())) == []
    s = mining(1)
    s.receive(CloseChannel(CHANNEL, "bye"))
    assert s.submit(share(1, full())) == []
    assert s.not_forwarded["no open channel"] == 1


def test_submit_shares_success_is_cumulative_and_errors_name_the_share():
    s = mining(1)
    for worker in ("a", "b", "c", "d"):
        s.submit(share(1, full(), worker=worker, channel_id=ord(worker)))
    [rejected] = s.receive(SubmitSharesError(CHANNEL, 1, "difficulty-too-low"))
    assert rejected == ShareResult(1, False, "difficulty-too-low", 1, "b", ord("b"))
    assert s.receive(SubmitSharesSuccess(CHANNEL, 2, 2, 2000)) == [
        ShareResult(0, True, None, 1, "a", ord("a")),
        ShareResult(2, True, None, 1, "c", ord("c")),
    ]
    assert (s.accepted, s.accepted_shares_sum, dict(s.rejected), s.in_flight) == (
        2,
        2000,
        {"difficulty-too-low": 1},
        1,
    )


def test_odd_share_answers_are_ignored_with_a_reason():
    s = mining(1)
    s.submit(share(1, full()))
    s.submit(share(1, full()))
    cases = [
        (SubmitSharesSuccess(CHANNEL, 77, 1, 1), "not in flight"),
        (SubmitSharesError(CHANNEL, 77, "invalid-share"), "not in flight"),
        (SubmitSharesSuccess(GROUP, 0, 1, 1), "not ours"),  # share answers name the channel itself
        (SubmitSharesError(99, 0, "invalid-share"), "not ours"),
    ]
    for message, words in cases:
        [ignored] = s.receive(message)
        assert isinstance(ignored, Ignored) and words in ignored.reason
    # A count that disagrees with what was in flight is noted after the results.
    actions = s.receive(SubmitSharesSuccess(CHANNEL, 1, 5, 5))
    assert [type(a) for a in actions] == [ShareResult, ShareResult, Ignored]
    assert "counts 5" in actions[2].reason


def test_rejections_count_a_bounded_number_of_pool_chosen_codes():
    s = mining(1)
    for n in range(MAX_REJECT_CODES + 10):
        s.submit(share(1, full()))
        s.receive(SubmitSharesError(CHANNEL, n, f"code-{n}"))
    s.submit(share(1, full()))
    s.receive(SubmitSharesError(CHANNEL, MAX_REJECT_CODES + 10, "code-0"))  # a known code still counts
    assert len(s.rejected) == MAX_REJECT_CODES
    assert s.rejected["code-0"] == 2 and s.rejected[OTHER] == 11
    assert sum(s.rejected.values()) == MAX_REJECT_CODES + 11


def test_in_flight_shares_are_bounded():
    s = mining(1)
    for _ in range(MAX_IN_FLIGHT + 1):
        s.submit(share(1, full()))
    assert (s.in_flight, s.unanswered) == (MAX_IN_FLIGHT, 1)
    [ignored] = s.receive(SubmitSharesError(CHANNEL, 0, "stale-share"))  # given up on
    assert isinstance(ignored, Ignored)


# -- the rest of the protocol -----------------------------------------------------------------


def test_update_channel_reports_the_aggregate_hash_rate_once_open():
    s = session()
    assert s.update_channel(5e12) == []
    s = opened()
    assert s.update_channel(5e12) == [UpdateChannel(CHANNEL, 5e12, ANY_TARGET)]
    assert s.update_channel(1e40) == [UpdateChannel(CHANNEL, F32_MAX, ANY_TARGET)]
    for bad in (math.nan, math.inf, -1.0):
        assert s.update_channel(bad) == []


@pytest.mark.parametrize(
    ("reconnect", "action"),
    [
        (Reconnect("", 0), ReconnectTo("pool.example", 3333)),
        (Reconnect("backup.example", 0), ReconnectTo("backup.example", 3333)),
        (Reconnect("10.1.2.3", 4444), ReconnectTo("10.1.2.3", 4444)),
        (Reconnect("evil host/", 1), None),
    ],
)
def test_reconnect_names_where_to_go_with_empty_meaning_the_same(reconnect, action):
    s = opened()
    [result] = s.receive(reconnect)
    if action is None:
        assert isinstance(result, Ignored)
    else:
        assert result == action


def test_close_channel_for_our_channel_or_group_is_fatal_for_another_ignored():
    s = opened()
    assert isinstance(s.receive(CloseChannel(99, "x"))[0], Ignored)
    [fatal] = s.receive(CloseChannel(GROUP, "pool-shutdown"))
    assert isinstance(fatal, Fatal) and "'pool-shutdown'" in fatal.reason


def test_set_group_channel_moves_our_channel_between_groups():
    s = opened(group=0)
    assert s.receive(SetGroupChannel(11, (3, CHANNEL))) == []
    assert s.group_channel_id == 11
    assert s.receive(job(1, channel_id=11)) == [NewWork(work(1))]
    assert isinstance(s.receive(SetGroupChannel(12, (3,)))[0], Ignored)
    assert s.receive(SetGroupChannel(11, (3,))) == [] and s.group_channel_id == 0


@pytest.mark.parametrize(
    "message",
    [
        UpdateChannelError(CHANNEL, "max-target-out-of-range"),
        ChannelEndpointChanged(CHANNEL),
        SetCustomMiningJobSuccess(CHANNEL, 1, 1),
        OpenMiningChannelError(3, "unknown-user"),
    ],
)
def test_messages_that_change_nothing_are_ignored_with_a_reason(message):
    s = opened()
    [ignored] = s.receive(message)
    assert isinstance(ignored, Ignored) and ignored.reason
    assert s.phase is Phase.OPEN


@pytest.mark.parametrize(
    "message",
    [
        SubmitSharesExtended(CHANNEL, 1, 1, 1, 1, 1, b""),  # a client's message
        NewTemplate(1, True, 2, 2, b"", 0, 0, 0, b"", 0, ()),  # another protocol
        SetupConnectionError(0, "x"),
    ],
)
def test_messages_no_pool_sends_are_fatal(message):
    s = opened()
    [fatal] = s.receive(message)
    assert isinstance(fatal, Fatal) and s.phase is Phase.CLOSED


def test_the_constructor_refuses_what_no_pool_could_take():
    with pytest.raises(ValueError, match="255 bytes"):
        UpstreamSession("x" * 256, 1.0, 4)
    with pytest.raises(ValueError, match="min_extranonce_size"):
        UpstreamSession("x", 1.0, 33)
    # A hash rate that is no number is sent as 0.
    s = UpstreamSession("x", math.nan, 4)
    s.start()
    [_, send] = s.receive(SetupConnectionSuccess(2, 0))
    assert send.message.nominal_hash_rate == 0.0


# -- whatever a pool sends --------------------------------------------------------------------

ACTION_TYPES = (
    SendMessage,
    ChannelOpened,
    NewWork,
    NewPrevHash,
    TargetChanged,
    ExtranoncePrefixChanged,
    ShareResult,
    ReconnectTo,
    Fatal,
    Ignored,
)


def aimed(message: Message, channel_id: int, small: int) -> Message:
    """``message`` pointed at one of the ids a session knows, so its paths are reached."""
    changes = {}
    for name, value in (("channel_id", channel_id), ("job_id", small), ("request_id", 1), ("sequence_number", small)):
        if hasattr(message, name):
            changes[name] = value
    return dataclasses.replace(message, **changes) if changes else message


pool_messages = st.lists(
    st.builds(aimed, any_message(), st.sampled_from([CHANNEL, GROUP, 99]), st.integers(0, 3)), max_size=12
)


@given(pool_messages, st.integers(0, 3))
def test_no_sequence_of_messages_makes_the_session_raise(messages, shares):
    s = session()
    s.start()
    for message in [SetupConnectionSuccess(2, 0), *messages]:
        for action in s.receive(message):
            assert isinstance(action, ACTION_TYPES)
        for _ in range(shares):
            for sent in s.submit(share(1, full())):
                assert isinstance(sent, SubmitSharesExtended)
                sent.encode()  # always something the codec can put on the wire
    for sent in s.update_channel(1e12):
        sent.encode()


@given(st.integers(0, 0x7FFF), st.integers(0, 255), st.binary(max_size=200))
def test_arbitrary_frames_decode_to_a_message_or_a_protocol_error(extension_type, msg_type, payload):
    s = mining(1)
    try:
        message = decode_frame(Frame(extension_type, msg_type, False, payload))
    except ProtocolError:
        return
    for action in s.receive(message):
        assert isinstance(action, ACTION_TYPES)


def test_easy_and_hard_hashes_bracket_every_target():
    assert int.from_bytes(EASY_HASH, "little") == 0
    assert int.from_bytes(HARD_HASH, "little") == (1 << 256) - 1
