"""LiveState: what the daemon saw since start, counted from the event bus on a Clock."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock

from sv2proxy.events import (
    BlockMined,
    BlockSubmitted,
    BlockTemplateUpdated,
    EventBus,
    HandshakeFailed,
    MiningJobCreated,
    MiningPoolConnected,
    MiningPoolDisconnected,
    ShareSubmitted,
)
from sv2proxy.store.records import HASHES_PER_DIFFICULTY, BlockRecord
from sv2proxy.web.live import (
    BUCKET,
    KEPT_BLOCKS,
    KEPT_BUCKETS,
    MAX_LIVE_WORKERS,
    MAX_REJECT_REASONS,
    OTHER_REASON,
    LiveState,
    RateHistory,
)

T0 = 1_800_000_000.0  # a whole number of minutes: 30_000_000 * 60


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.advance(T0)
    return clock


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def live(bus: EventBus, clock: Clock) -> LiveState:
    state = LiveState(bus, clock, ("sv2://primary:3336",))
    state.start()
    return state


def share(worker: str, difficulty: float = 1.0, accepted: bool = True, error: str | None = None) -> ShareSubmitted:
    return ShareSubmitted(channel_id=1, job_id=2, worker=worker, difficulty=difficulty, accepted=accepted,
                          error_code=error)


# -- shares ------------------------------------------------------------------------------------


def test_shares_are_counted_per_worker_and_reason(live: LiveState, bus: EventBus, clock: Clock) -> None:
    bus.publish(share("alice", 2.0))
    clock.advance(5)
    bus.publish(share("bob", 3.0))
    bus.publish(share("alice", 1.0, accepted=False, error="stale-share"))
    bus.publish(share("alice", 1.0, accepted=False, error="stale-share"))
    bus.publish(share("bob", 1.0, accepted=False, error="difficulty-too-low"))
    clock.advance(1)
    bus.publish(share("carol", 1.0, accepted=False))  # no error code: counted as "rejected"

    assert live.accepted == 2
    assert live.accepted_difficulty == 5.0
    assert live.rejected == {"stale-share": 2, "difficulty-too-low": 1, "rejected": 1}
    alice, bob, carol = live.workers["alice"], live.workers["bob"], live.workers["carol"]
    assert (alice.accepted, alice.difficulty, alice.rejected) == (1, 2.0, {"stale-share": 2})
    assert (bob.accepted, bob.difficulty, bob.rejected) == (1, 3.0, {"difficulty-too-low": 1})
    assert (carol.accepted, carol.difficulty, carol.rejected) == (0, 0.0, {"rejected": 1})
    # A rejected share is still a sign of life.
    assert alice.last_share_at == T0 + 5
    assert carol.last_share_at == T0 + 6


def test_only_accepted_difficulty_enters_the_histories(live: LiveState, bus: EventBus, clock: Clock) -> None:
    bus.publish(share("alice", 4.0))
    bus.publish(share("alice", 100.0, accepted=False, error="stale-share"))
    [(_, pool_rate)] = live.pool_history.series(T0 + BUCKET, BUCKET, 1)
    [(_, alice_rate)] = live.workers["alice"].history.series(T0 + BUCKET, BUCKET, 1)
    assert pool_rate == alice_rate == 4.0 * HASHES_PER_DIFFICULTY / BUCKET


def test_nothing_is_counted_before_start_or_after_stop(bus: EventBus, clock: Clock) -> None:
    state = LiveState(bus, clock)
    bus.publish(share("alice"))
    assert state.accepted == 0 and state.workers == {}
    state.start()
    bus.publish(share("alice"))
    state.stop()
    bus.publish(share("alice"))
    bus.publish(MiningPoolConnected("sv2://x"))
    assert state.accepted == 1
    assert state.upstreams == {}


# -- the rate history --------------------------------------------------------------------------


def test_a_rate_history_sums_a_minute_per_bucket() -> None:
    history = RateHistory()
    history.add(T0 + 1, 1.0)
    history.add(T0 + 59, 2.0)  # same minute
    history.add(T0 + 60, 4.0)  # the next one
    history.add(T0 + 30, 8.0)  # the clock went back: dropped
    series = history.series(T0 + 120, 120, 2)
    assert series == [
        (T0, 3.0 * HASHES_PER_DIFFICULTY / 60),
        (T0 + 60, 4.0 * HASHES_PER_DIFFICULTY / 60),
    ]


def test_a_rate_history_keeps_an_hour() -> None:
    history = RateHistory()
    for minute in range(KEPT_BUCKETS + 5):
        history.add(T0 + minute * BUCKET, float(minute + 1))
    now = T0 + (KEPT_BUCKETS + 5) * BUCKET
    # Ask for more than is kept: the five oldest minutes are gone.
    series = history.series(now, (KEPT_BUCKETS + 5) * BUCKET, KEPT_BUCKETS + 5)
    rates = [rate * BUCKET / HASHES_PER_DIFFICULTY for _, rate in series]
    assert rates == pytest.approx([0.0] * 5 + [float(m + 1) for m in range(5, KEPT_BUCKETS + 5)])


def test_series_slices_end_now_and_spread_a_minute_over_the_slices_it_overlaps() -> None:
    history = RateHistory()
    history.add(T0, 6.0)  # the minute T0..T0+60
    # Slices of 20 s from T0 to T0+60: a third of the minute's difficulty in each, no spikes.
    series = history.series(T0 + 60, 60, 3)
    assert [at for at, _ in series] == [T0, T0 + 20, T0 + 40]
    assert [rate for _, rate in series] == pytest.approx([2.0 * HASHES_PER_DIFFICULTY / 20] * 3)
    # The current minute counts up to now: all 6 so far fell within [T0, T0+30).
    ((at, rate),) = history.series(T0 + 30, 60, 1)
    assert at == T0 - 30 and rate == pytest.approx(6.0 * HASHES_PER_DIFFICULTY / 60)
    half = history.series(T0 + 30, 30, 2)  # 15 s slices: evenly over the half minute
    assert [rate for _, rate in half] == pytest.approx([3.0 * HASHES_PER_DIFFICULTY / 15] * 2)
    # A minute older than the span is left out.
    assert history.series(T0 + 200, 60, 1) == [(T0 + 140, 0.0)]


@given(st.lists(st.tuples(st.integers(0, 3599), st.floats(0.001, 1e6)), max_size=50))
def test_series_over_the_kept_hour_accounts_for_every_accepted_difficulty(
    shares: list[tuple[int, float]],
) -> None:
    history = RateHistory()
    for offset, difficulty in sorted(shares):
        history.add(T0 + offset, difficulty)
    series = history.series(T0 + 3600, 3600, 60)
    assert len(series) == 60
    total = sum(rate * 60 for _, rate in series) / HASHES_PER_DIFFICULTY
    assert total == pytest.approx(sum(d for _, d in shares))


# -- blocks ------------------------------------------------------------------------------------


def test_a_network_block_is_not_ours(live: LiveState, bus: EventBus) -> None:
    bus.publish(BlockMined("00" * 32, height=100))
    assert live.blocks_found == 0
    assert list(live.blocks) == []


def test_found_then_submitted_blocks_merge_by_hash(live: LiveState, bus: EventBus, clock: Clock) -> None:
    bus.publish(share("alice"))
    bus.publish(BlockMined("aa" * 32, height=800_000, worker="alice", channel_id=1))
    clock.advance(2)
    bus.publish(BlockMined("bb" * 32, worker="bob"))
    assert live.blocks_found == 2
    assert live.workers["alice"].blocks == 1
    assert "bob" not in live.workers  # a block without a share seen: counted, no worker entry made
    assert list(live.blocks) == [
        BlockRecord("aa" * 32, "found", T0, "alice", 800_000),
        BlockRecord("bb" * 32, "found", T0 + 2, "bob"),
    ]

    clock.advance(3)
    # The node's answer keeps when the block was found and by whom, and what it knew already.
    bus.publish(BlockSubmitted("aa" * 32, True, reward=312_500_000))
    bus.publish(BlockSubmitted("bb" * 32, False, reason="high-hash", height=800_001, worker="bob"))
    assert list(live.blocks) == [
        BlockRecord("aa" * 32, "accepted", T0, "alice", 800_000, 312_500_000),
        BlockRecord("bb" * 32, "rejected", T0 + 2, "bob", 800_001, None, "high-hash"),
    ]
    assert live.blocks_found == 2


def test_a_submission_without_a_found_record_is_remembered_at_its_time(
    live: LiveState, bus: EventBus, clock: Clock
) -> None:
    clock.advance(7)
    bus.publish(BlockSubmitted("cc" * 32, True, height=5, worker="dave"))
    assert list(live.blocks) == [BlockRecord("cc" * 32, "accepted", T0 + 7, "dave", 5)]
    assert live.blocks_found == 0


def test_only_the_latest_blocks_are_kept(live: LiveState, bus: EventBus, clock: Clock) -> None:
    for i in range(KEPT_BLOCKS + 3):
        bus.publish(BlockMined(f"{i:064x}", worker="alice"))
        clock.advance(1)
    assert live.blocks_found == KEPT_BLOCKS + 3
    assert len(live.blocks) == KEPT_BLOCKS
    assert live.blocks[0].hash == f"{3:064x}"
    assert live.blocks[-1].hash == f"{KEPT_BLOCKS + 2:064x}"


# -- upstreams, handshakes, work ---------------------------------------------------------------


def test_upstream_connects_and_disconnects(live: LiveState, bus: EventBus, clock: Clock) -> None:
    primary = live.upstreams["sv2://primary:3336"]
    assert (primary.connected, primary.since, primary.connects, primary.disconnects) == (False, None, 0, 0)
    bus.publish(MiningPoolConnected("sv2://primary:3336"))
    clock.advance(10)
    bus.publish(MiningPoolDisconnected("sv2://primary:3336", "connection lost"))
    clock.advance(5)
    bus.publish(MiningPoolConnected("sv2://backup:3336"))  # not configured: added when seen
    clock.advance(1)
    bus.publish(MiningPoolConnected("sv2://primary:3336"))

    assert (primary.connected, primary.since, primary.connects, primary.disconnects) == (True, T0 + 16, 2, 1)
    assert primary.last_reason == "connection lost"
    backup = live.upstreams["sv2://backup:3336"]
    assert (backup.connected, backup.since, backup.connects, backup.disconnects) == (True, T0 + 15, 1, 0)
    assert list(live.upstreams) == ["sv2://primary:3336", "sv2://backup:3336"]


def test_handshake_failures_are_counted_by_kind_only(live: LiveState, bus: EventBus) -> None:
    bus.publish(HandshakeFailed("10.0.0.1:5000", "timeout"))
    bus.publish(HandshakeFailed("10.0.0.2:5000", "bad certificate signature"))
    bus.publish(HandshakeFailed("10.0.0.3:5000", "unexpected message length 17"))
    assert live.handshake_failures == {"timeout": 1, "invalid": 2}


@dataclass
class Template:
    height: int


def test_template_age_follows_templates_and_jobs(live: LiveState, bus: EventBus, clock: Clock) -> None:
    assert live.template_age(clock.seconds()) is None
    assert live.template_height is None
    bus.publish(BlockTemplateUpdated(Template(840_000), template_id=1, clean=True))
    clock.advance(12)
    assert live.template_age(clock.seconds()) == 12.0
    assert live.template_height == 840_000
    bus.publish(MiningJobCreated(job_id=3, channel_ids=(1,)))
    clock.advance(4)
    assert live.template_age(clock.seconds()) == 4.0
    # A template without a height (an upstream's job) leaves the height as it was.
    bus.publish(BlockTemplateUpdated(object()))
    assert live.template_age(clock.seconds()) == 0.0
    assert live.template_height == 840_000
    # A clock that went back never gives a negative age.
    assert live.template_age(clock.seconds() - 30) == 0.0


def test_starting_twice_counts_once_and_stop_ends_counting(live: LiveState, bus: EventBus) -> None:
    live.start()
    bus.publish(share("alice"))
    assert live.accepted == 1
    live.stop()
    bus.publish(share("alice"))
    assert live.accepted == 1


def test_aux_rewards_are_counted_per_chain(live: LiveState, bus: EventBus, clock: Clock) -> None:
    from sv2proxy.events import MergeMiningReward

    bus.publish(MergeMiningReward("namecoin", 10, 5_000))
    clock.advance(3)
    bus.publish(MergeMiningReward("namecoin", 11, 4_000))
    bus.publish(MergeMiningReward("doge", 99, 1))
    namecoin = live.aux["namecoin"]
    assert (namecoin.blocks, namecoin.rewards, namecoin.last_height) == (2, 9_000, 11)
    assert namecoin.last_at == clock.seconds() and live.aux["doge"].blocks == 1


# -- bounds ------------------------------------------------------------------------------------


def test_workers_are_bounded_forgetting_the_least_recently_seen(bus: EventBus, clock: Clock) -> None:
    live = LiveState(bus, clock, max_workers=3)
    live.start()
    for name in ("a", "b", "c"):
        bus.publish(share(name))
        clock.advance(1)
    bus.publish(share("a", accepted=False, error="stale-share"))  # "a" is seen again: "b" is now the oldest
    bus.publish(share("d"))
    assert list(live.workers) == ["c", "a", "d"]
    assert live.workers["a"].accepted == 1 and live.workers["a"].rejected == {"stale-share": 1}
    bus.publish(share("e"))
    assert list(live.workers) == ["a", "d", "e"]
    assert live.accepted == 5  # the totals forget nobody


def test_a_million_names_from_one_miner_cost_a_bounded_map(live: LiveState, bus: EventBus) -> None:
    for i in range(MAX_LIVE_WORKERS + 500):
        bus.publish(share(f"rig{i}"))
    assert len(live.workers) == MAX_LIVE_WORKERS
    assert "rig0" not in live.workers and f"rig{MAX_LIVE_WORKERS + 499}" in live.workers


def test_rejection_reasons_are_bounded(live: LiveState, bus: EventBus) -> None:
    for i in range(MAX_REJECT_REASONS + 10):
        bus.publish(share("alice", accepted=False, error=f"reason-{i}"))
    bus.publish(share("alice", accepted=False, error="reason-0"))  # a known one still counts as itself
    for counts in (live.workers["alice"].rejected, live.rejected):
        assert len(counts) == MAX_REJECT_REASONS + 1
        assert counts[OTHER_REASON] == 10 and counts["reason-0"] == 2


def test_the_minute_counting_began_in_does_not_read_low(bus: EventBus, clock: Clock) -> None:
    clock.advance(50)  # counting starts 50 s into a minute
    state = LiveState(bus, clock)
    state.start()
    for _ in range(5):
        bus.publish(share("alice", 1.0))
        clock.advance(1)
    # 5 difficulty-1 shares in the 5 s since start: that rate, not a twelfth of it.
    assert state.pool_rate(clock.seconds()) == pytest.approx(5 * HASHES_PER_DIFFICULTY / 5)
    assert state.worker_rate("alice", clock.seconds()) == pytest.approx(5 * HASHES_PER_DIFFICULTY / 5)
    clock.advance(60)  # the next minute had none: the rate over the 65 s since start
    assert state.pool_rate(clock.seconds()) == pytest.approx(5 * HASHES_PER_DIFFICULTY / 65)
