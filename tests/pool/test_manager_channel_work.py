"""The channel manager with work of one channel's own (per-miner proxy mode): each channel's jobs
and prev hashes come alone and go to it alone, never to its group; its fresh job for a new
difficulty is made from its own work; a watcher hears of every channel opened and closed."""

from __future__ import annotations

import dataclasses

import pytest

from sv2proxy.codec import NewExtendedMiningJob, OpenExtendedMiningChannel, SetNewPrevHash, SubmitSharesError
from sv2proxy.errors import MiningJobError
from sv2proxy.pool.channel import Channel
from sv2proxy.pool.manager import ChannelManager
from tests.pool.test_manager import ANY, NOW, easy_settings, mine_extended, prev, work


class Watcher:
    def __init__(self) -> None:
        self.heard: list[tuple[str, object]] = []

    def miner_channel_opened(self, channel: Channel) -> None:
        self.heard.append(("opened", (channel.channel_id, channel.user_identity)))

    def miner_channel_closed(self, channel_id: int) -> None:
        self.heard.append(("closed", channel_id))


def two_channels() -> tuple[ChannelManager, int, int]:
    """One connection with two grouped extended channels, and no pool-wide work."""
    manager = ChannelManager(easy_settings())
    first = manager.open_extended("A", OpenExtendedMiningChannel(1, "alice", 0.0, ANY, 4), NOW)[0][1]
    second = manager.open_extended("A", OpenExtendedMiningChannel(2, "bob", 0.0, ANY, 4), NOW)[0][1]
    assert first.group_channel_id == second.group_channel_id != 0
    return manager, first.channel_id, second.channel_id


def test_each_channel_gets_its_own_work_addressed_to_itself_not_its_group():
    manager, alice, bob = two_channels()
    alice_work = dataclasses.replace(work(7), coinbase_prefix=b"alice-head")
    job_id, out = manager.new_channel_work(alice, alice_work)
    [(owner, message)] = out
    assert owner == "A" and isinstance(message, NewExtendedMiningJob)
    assert (message.channel_id, message.job_id, message.min_ntime) == (alice, job_id, None)
    assert message.coinbase_tx_prefix == b"alice-head"
    assert manager.channels[bob].jobs.has_future(job_id) is False
    assert manager.new_channel_prev_hash(alice, 7, prev()) == [
        ("A", SetNewPrevHash(alice, job_id, prev().prev_hash, prev().min_ntime, prev().nbits))
    ]
    # Bob has no work until his own comes; his own source ids are his alone.
    assert manager.channels[bob].jobs.active is None
    bob_job, _ = manager.new_channel_work(bob, work(7))
    assert bob_job != job_id
    manager.new_channel_prev_hash(bob, 7, prev(b"bob"))
    assert manager.channels[bob].jobs.active.prev == prev(b"bob")
    assert manager.channels[alice].jobs.active.prev == prev()


def test_shares_for_a_channels_own_work_are_accepted_and_stale_after_its_next_tip():
    manager, alice, _ = two_channels()
    job_id, _ = manager.new_channel_work(alice, work(7))
    manager.new_channel_prev_hash(alice, 7, prev())
    share = mine_extended(manager, alice, job_id)
    out, result = manager.submit("A", share, NOW)
    assert result is not None and result.accepted
    # Work that is not future applies on the channel's own prev hash at once.
    current, _ = manager.new_channel_work(alice, work(8, future=False))
    assert manager.channels[alice].jobs.active.job_id == current
    manager.new_channel_work(alice, work(9))
    manager.new_channel_prev_hash(alice, 9, prev(b"next"))
    out, result = manager.submit("A", dataclasses.replace(share, sequence_number=99), NOW)
    assert out == [("A", SubmitSharesError(alice, 99, "stale-share"))]


def test_what_a_channel_cannot_take_is_refused():
    manager, alice, _ = two_channels()
    with pytest.raises(MiningJobError):
        manager.new_channel_work(999, work(1))
    with pytest.raises(MiningJobError):
        manager.new_channel_work(alice, work(1, future=False))  # no prev hash of its own yet
    with pytest.raises(MiningJobError):
        manager.new_channel_prev_hash(alice, 1, prev())  # never announced
    manager.new_channel_work(alice, work(1))
    with pytest.raises(MiningJobError):
        manager.new_channel_prev_hash(999, 1, prev())


def test_a_channel_refreshed_for_a_new_difficulty_gets_its_own_work_with_a_fresh_ntime():
    manager, alice, bob = two_channels()
    job_id, _ = manager.new_channel_work(alice, dataclasses.replace(work(7), coinbase_prefix=b"alice-head"))
    manager.new_channel_prev_hash(alice, 7, prev())
    [(owner, message)] = manager.refresh_channel("A", alice, NOW + 30)
    assert owner == "A" and message.channel_id == alice and message.job_id > job_id
    assert (message.min_ntime, message.coinbase_tx_prefix) == (int(NOW + 30), b"alice-head")
    assert manager.channels[alice].jobs.active.work.source_id == 7
    manager.new_channel_work(bob, work(3))
    assert manager.refresh_channel("A", bob, NOW) == []  # nothing active yet


def test_dropped_work_makes_a_channels_jobs_stale():
    manager, alice, bob = two_channels()
    job_id, _ = manager.new_channel_work(alice, work(7))
    manager.new_channel_prev_hash(alice, 7, prev())
    share = mine_extended(manager, alice, job_id)
    manager.drop_channel_work(alice)
    manager.drop_channel_work(12345)  # unknown: nothing to do
    out, _ = manager.submit("A", share, NOW)
    assert out == [("A", SubmitSharesError(alice, share.sequence_number, "stale-share"))]
    with pytest.raises(MiningJobError):
        manager.new_channel_prev_hash(alice, 7, prev())
    # Losing the upstream altogether drops every channel's own work too.
    manager.new_channel_work(bob, work(3))
    manager.drop_work()
    with pytest.raises(MiningJobError):
        manager.new_channel_prev_hash(bob, 3, prev())


def test_the_watcher_hears_every_channel_opened_and_closed_and_its_rate_is_known():
    manager = ChannelManager(easy_settings())
    watcher = Watcher()
    manager.watcher = watcher
    first = manager.open_extended("A", OpenExtendedMiningChannel(1, "alice", 1e6, ANY, 4), NOW)[0][1].channel_id
    second = manager.open_extended("B", OpenExtendedMiningChannel(1, "bob", 0.0, ANY, 4), NOW)[0][1].channel_id
    manager.close(first)
    manager.close_owner("B")
    assert watcher.heard == [
        ("opened", (first, "alice")),
        ("opened", (second, "bob")),
        ("closed", first),
        ("closed", second),
    ]
    assert manager.hash_rate_of(first) == 0.0  # gone
    third = manager.open_extended("C", OpenExtendedMiningChannel(1, "carol", 1e6, ANY, 4), NOW)[0][1].channel_id
    assert manager.hash_rate_of(third) > 0


def test_keepalives_refresh_each_channels_own_work():
    manager, alice, bob = two_channels()
    assert manager.refresh_work(NOW) is None  # no work anywhere
    job_id, _ = manager.new_channel_work(alice, dataclasses.replace(work(7), coinbase_prefix=b"alice-head"))
    manager.new_channel_prev_hash(alice, 7, prev())
    manager.new_channel_work(bob, work(3))  # future only: nothing to refresh for bob yet
    fresh_id, out = manager.refresh_work(NOW + 60)
    [(owner, message)] = out
    assert (owner, message.channel_id, message.job_id) == ("A", alice, fresh_id)
    assert fresh_id > job_id and (message.min_ntime, message.coinbase_tx_prefix) == (int(NOW + 60), b"alice-head")
