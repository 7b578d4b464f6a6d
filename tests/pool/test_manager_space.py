"""The channel manager's extranonce space over time: reservations, a new upstream's space,
lost work, and a single channel's fresh job (what proxy mode and Stratum V1 miners need)."""

from __future__ import annotations

import pytest

from sv2proxy.codec import (
    CloseChannel,
    NewExtendedMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
    SetExtranoncePrefix,
    SetNewPrevHash,
    SubmitSharesError,
    SubmitSharesExtended,
)
from sv2proxy.errors import PoolError
from sv2proxy.pool.manager import ChannelManager
from tests.pool.test_manager import ANY, NOW, easy_settings, with_tip, work


def messages(out):
    return [message for _, message in out]


def test_a_channel_rolling_fewer_bytes_gets_a_padded_prefix():
    manager = ChannelManager(easy_settings())  # 8 bytes: 2 per channel, 6 rollable
    out = messages(manager.open_extended("A", OpenExtendedMiningChannel(1, "w", 0.0, ANY, 2), NOW, rollable_size=2))
    success = out[0]
    assert isinstance(success, OpenExtendedMiningChannelSuccess)
    assert success.extranonce_size == 2 and len(success.extranonce_prefix) == 6
    assert success.extranonce_prefix[2:] == bytes(4)


def test_more_rollable_bytes_than_the_space_has_is_refused():
    manager = ChannelManager(easy_settings())
    request = OpenExtendedMiningChannel(1, "w", 0.0, ANY, 2)
    assert messages(manager.open_extended("A", request, NOW, rollable_size=7)) == [
        OpenMiningChannelError(1, "min-extranonce-size-too-large")
    ]
    asks_more = OpenExtendedMiningChannel(2, "w", 0.0, ANY, 5)
    assert messages(manager.open_extended("A", asks_more, NOW, rollable_size=4)) == [
        OpenMiningChannelError(2, "min-extranonce-size-too-large")
    ]


def test_a_reserved_value_becomes_the_channel_prefix_and_is_freed_with_its_owner():
    manager = ChannelManager(easy_settings())
    value = manager.reserve("A")
    prefix = manager.prefix_for(value, 4)
    out = messages(
        manager.open_extended("A", OpenExtendedMiningChannel(1, "w", 0.0, ANY, 4), NOW, rollable_size=4, reserved=value)
    )
    assert out[0].extranonce_prefix == prefix
    # Another reservation never collides with a live or reserved value.
    other = manager.reserve("B")
    assert other != value
    manager.close_owner("B")
    assert manager.reserve("C") not in (value,)


def test_a_value_reserved_for_someone_else_cannot_be_used():
    manager = ChannelManager(easy_settings())
    value = manager.reserve("A")
    with pytest.raises(PoolError):
        manager.open_extended("B", OpenExtendedMiningChannel(1, "w", 0.0, ANY, 4), NOW, rollable_size=4, reserved=value)


def test_reservations_count_against_capacity():
    from sv2proxy.pool.extranonce import ExtranonceLayout
    from sv2proxy.pool.manager import PoolSettings

    manager = ChannelManager(PoolSettings(layout=ExtranonceLayout(4, 1)))
    for _ in range(256):
        manager.reserve("A")
    with pytest.raises(PoolError):
        manager.reserve("B")
    assert messages(manager.open_standard("B", OpenStandardMiningChannel(9, "w", 0.0, ANY), NOW)) == [
        OpenMiningChannelError(9, "channel-capacity-exhausted")
    ]
    manager.close_owner("A")
    manager.reserve("B")


def test_a_new_space_re_prefixes_every_channel_and_keeps_local_bytes():
    manager = ChannelManager(easy_settings())
    extended = messages(manager.open_extended("A", OpenExtendedMiningChannel(1, "w", 0.0, ANY, 2), NOW))[0]
    standard = messages(manager.open_standard("B", OpenStandardMiningChannel(2, "w", 0.0, ANY), NOW))[0]
    assert isinstance(standard, OpenStandardMiningChannelSuccess)
    out = manager.rebase(b"\xaa\xbb\xcc", 12)  # 3 fixed + 2 local + 7 left
    assert out == [
        # The extended miner still rolls its 6 bytes: one byte of padding fills the wider space.
        ("A", SetExtranoncePrefix(extended.channel_id, b"\xaa\xbb\xcc" + extended.extranonce_prefix + b"\0")),
        ("B", SetExtranoncePrefix(standard.channel_id, b"\xaa\xbb\xcc" + standard.extranonce_prefix[:2] + bytes(7))),
    ]
    # New work is built on the new prefixes; a later channel gets all the rollable room there is.
    with_tip(manager)
    assert manager.channels[extended.channel_id].jobs.active.extranonce_prefix[:3] == b"\xaa\xbb\xcc"
    later = messages(manager.open_extended("C", OpenExtendedMiningChannel(3, "w", 0.0, ANY, 2), NOW))[0]
    assert later.extranonce_size == 7 and later.extranonce_prefix[:3] == b"\xaa\xbb\xcc"


def test_a_space_too_small_for_a_miner_closes_its_channel():
    manager = ChannelManager(easy_settings())
    wide = messages(manager.open_extended("A", OpenExtendedMiningChannel(1, "w", 0.0, ANY, 6), NOW))[0]
    narrow = messages(manager.open_extended("B", OpenExtendedMiningChannel(2, "w", 0.0, ANY, 2), NOW, rollable_size=2))[
        0
    ]
    out = manager.rebase(b"\x01" * 4, 8)  # 4 fixed + 2 local leaves 2 rollable
    assert ("A", CloseChannel(wide.channel_id, "extranonce-space-changed")) in out
    assert wide.channel_id not in manager.channels and narrow.channel_id in manager.channels
    assert manager.channels[narrow.channel_id].extranonce_prefix == b"\x01" * 4 + narrow.extranonce_prefix[:2]


def test_a_space_that_cannot_hold_the_local_bytes_is_an_error():
    manager = ChannelManager(easy_settings())
    with pytest.raises(PoolError, match="extranonce space"):
        manager.rebase(b"\x01" * 7, 8)


def test_dropped_work_makes_every_share_stale_until_new_work():
    manager = ChannelManager(easy_settings())
    with_tip(manager)
    out = messages(manager.open_extended("A", OpenExtendedMiningChannel(1, "w", 0.0, ANY, 2), NOW))
    channel_id = out[0].channel_id
    job_id = out[1].job_id
    manager.drop_work()
    share = SubmitSharesExtended(channel_id, 1, job_id, 0, int(NOW), 0x20000000, bytes(6))
    answer, result = manager.submit("A", share, NOW)
    assert messages(answer) == [SubmitSharesError(channel_id, 1, "stale-share")]
    # A channel opened meanwhile waits for work instead of getting the old one.
    assert [
        type(m) for m in messages(manager.open_extended("B", OpenExtendedMiningChannel(2, "w", 0.0, ANY, 2), NOW))
    ] == [OpenExtendedMiningChannelSuccess]
    assert manager.refresh_work(NOW) is None
    # The next source's work and prev hash bring everyone back.
    manager.new_work(work(7))
    from tests.pool.test_manager import prev

    out = manager.new_prev_hash(7, prev(b"other tip"))
    assert {type(m) for m in messages(out)} >= {SetNewPrevHash}


def test_refreshing_one_channel_gives_it_a_new_job_with_its_current_target():
    manager = ChannelManager(easy_settings())
    with_tip(manager)
    a = messages(manager.open_extended("A", OpenExtendedMiningChannel(1, "w", 0.0, ANY, 2), NOW))
    manager.open_extended("B", OpenExtendedMiningChannel(2, "w", 0.0, ANY, 2), NOW)
    channel_id = a[0].channel_id
    old_job = manager.channels[channel_id].jobs.active
    manager.set_difficulty(4.0, NOW, channel_id)
    out = manager.refresh_channel("A", channel_id, NOW + 3)
    assert len(out) == 1 and out[0][0] == "A"
    job = out[0][1]
    assert isinstance(job, NewExtendedMiningJob) and job.channel_id == channel_id
    assert job.min_ntime == int(NOW + 3) and job.job_id != old_job.job_id
    channel = manager.channels[channel_id]
    assert channel.jobs.active.target == channel.target != old_job.target
    # Someone else's channel, or no work: nothing.
    assert manager.refresh_channel("B", channel_id, NOW) == []
    manager.drop_work()
    assert manager.refresh_channel("A", channel_id, NOW) == []


def test_total_hash_rate_sums_the_channels():
    manager = ChannelManager(easy_settings())
    assert manager.total_hash_rate() == 0.0
    manager.open_extended("A", OpenExtendedMiningChannel(1, "w", 1e9, ANY, 2), NOW)
    manager.open_extended("B", OpenExtendedMiningChannel(2, "w", 3e9, ANY, 2), NOW)
    assert manager.total_hash_rate() == pytest.approx(4e9, rel=0.01)


def test_future_work_never_activated_is_bounded_everywhere():
    from sv2proxy.pool.manager import MAX_PENDING_FUTURE_WORK

    manager = ChannelManager(easy_settings())
    with_tip(manager)
    out = messages(manager.open_extended("A", OpenExtendedMiningChannel(1, "w", 0.0, ANY, 2), NOW))
    channel = manager.channels[out[0].channel_id]
    for source_id in range(100, 100 + 3 * MAX_PENDING_FUTURE_WORK):
        manager.new_work(work(source_id))
    assert len(manager._jobs_by_source) == MAX_PENDING_FUTURE_WORK
    assert len(channel.jobs.future_jobs()) <= manager.settings.max_past_jobs
    # The newest can still be activated.
    from tests.pool.test_manager import prev

    newest = 100 + 3 * MAX_PENDING_FUTURE_WORK - 1
    assert manager.new_prev_hash(newest, prev(b"next"))
