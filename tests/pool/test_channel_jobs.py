"""Channels turn shared work into their own jobs and announce them with the right messages."""

import hashlib

import pytest

from sv2proxy.bitcoin.hashing import merkle_root_from_path, sha256d
from sv2proxy.bitcoin.target import MAX_TARGET
from sv2proxy.codec import NewExtendedMiningJob, NewMiningJob, SetNewPrevHash
from sv2proxy.errors import MiningJobError
from sv2proxy.pool.channel import MAX_SEEN_SHARES, Channel, ChannelKind
from sv2proxy.pool.jobs import NOT_ACTIVE, STALE, JobStore, PrevHash, Work

PATH = (hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest())
PREV = PrevHash(hashlib.sha256(b"tip").digest(), 1_800_000_000, 0x1D00FFFF)


def work(future=True, min_ntime=None):
    return Work(9, 0x20000000, True, b"head", b"tail", PATH, future, min_ntime)


def test_standard_job_carries_the_channel_merkle_root():
    prefix = b"\x00\x01" + b"\x00" * 6
    ch = Channel(3, ChannelKind.STANDARD, "w", 1.0, 1, prefix, 0, MAX_TARGET, MAX_TARGET)
    job = ch.add_job(11, work())
    assert ch.job_message(job) == NewMiningJob(
        3, 11, None, 0x20000000, merkle_root_from_path(sha256d(b"head" + prefix + b"tail"), PATH)
    )
    ch.activate(11, PREV)
    assert ch.prev_hash_message(job) == SetNewPrevHash(3, 11, PREV.prev_hash, PREV.min_ntime, PREV.nbits)


def test_extended_job_and_a_non_future_job_on_the_current_tip():
    ch = Channel(4, ChannelKind.EXTENDED, "w", 1.0, 2, b"\x00\x02", 6, MAX_TARGET, MAX_TARGET)
    first = ch.add_job(1, work())
    assert ch.job_message(first) == NewExtendedMiningJob(4, 1, None, 0x20000000, True, PATH, b"head", b"tail")
    ch.activate(1, PREV)
    fresh = ch.add_job(2, work(future=False, min_ntime=PREV.min_ntime + 30))
    assert ch.job_message(fresh).min_ntime == PREV.min_ntime + 30
    assert ch.jobs.active is fresh


def test_a_non_future_job_needs_a_prev_hash():
    ch = Channel(4, ChannelKind.EXTENDED, "w", 1.0, 2, b"\x00\x02", 6, MAX_TARGET, MAX_TARGET)
    with pytest.raises(MiningJobError, match="no prev hash"):
        ch.add_job(1, work(future=False))


def test_activation_makes_everything_older_stale_and_drops_other_futures():
    store = JobStore()
    ch = Channel(4, ChannelKind.EXTENDED, "w", 1.0, 2, b"\x00\x02", 6, MAX_TARGET, MAX_TARGET)
    ch.jobs = store
    ch.add_job(1, work())
    ch.activate(1, PREV)
    ch.add_job(2, work())
    ch.add_job(3, work())
    assert store.lookup(2) is NOT_ACTIVE
    ch.activate(3, PrevHash(b"\x01" * 32, PREV.min_ntime + 600, PREV.nbits))
    assert store.lookup(1) is STALE and store.lookup(2) is STALE
    with pytest.raises(MiningJobError, match="no future job 2"):
        ch.activate(2, PREV)


def test_starting_a_job_on_a_new_tip_is_adding_then_activating_it():
    tip = PrevHash(b"\x01" * 32, PREV.min_ntime + 600, PREV.nbits)
    stepwise = Channel(4, ChannelKind.EXTENDED, "w", 1.0, 2, b"\x00\x02", 6, MAX_TARGET, MAX_TARGET)
    at_once = Channel(4, ChannelKind.EXTENDED, "w", 1.0, 2, b"\x00\x02", 6, MAX_TARGET, MAX_TARGET)
    for ch in (stepwise, at_once):
        ch.add_job(1, work())
        ch.activate(1, PREV)
        ch.add_job(2, work(future=False, min_ntime=PREV.min_ntime + 30))  # 1 is past now
        ch.add_job(3, work())  # a future job the new tip overtakes
        ch.remember(b"\xaa" * 32)
    stepwise.add_job(4, work())
    stepwise.activate(4, tip)
    job = at_once.start_job(4, work(), tip)
    assert at_once.jobs.active is job and job.prev is tip and job.network_target == tip.network_target
    for ch in (stepwise, at_once):
        assert [ch.jobs.lookup(job_id) for job_id in (1, 2, 3)] == [STALE, STALE, STALE]
        assert ch.jobs.lookup(4) is ch.jobs.active and ch.jobs.prev is tip
        assert ch.seen == {}  # shares on the old tip can no longer be duplicates
    with pytest.raises(MiningJobError, match="not a future job"):
        at_once.start_job(5, work(future=False, min_ntime=tip.min_ntime), tip)


def test_a_prev_hash_works_its_network_target_out_once_and_compares_without_it():
    tip = PrevHash(PREV.prev_hash, PREV.min_ntime, 0x1D00FFFF)
    assert tip.network_target == 0xFFFF << 208
    assert tip == PrevHash(PREV.prev_hash, PREV.min_ntime, 0x1D00FFFF)
    assert "network_target" not in repr(tip)
    unusable = PrevHash(PREV.prev_hash, PREV.min_ntime, 0x1D80FFFF)  # a negative target
    with pytest.raises(ValueError, match="negative"):
        unusable.network_target  # noqa: B018 -- made when asked for, as before


def test_duplicate_memory_is_bounded():
    ch = Channel(4, ChannelKind.EXTENDED, "w", 1.0, 2, b"\x00\x02", 6, MAX_TARGET, MAX_TARGET)
    for i in range(MAX_SEEN_SHARES + 10):
        assert ch.remember(i.to_bytes(32, "little"))
    assert len(ch.seen) <= MAX_SEEN_SHARES
    assert not ch.remember((MAX_SEEN_SHARES + 9).to_bytes(32, "little"))
