"""Vardiff: SRI's classic retarget rules, bounds and the channel's max_target, driven by ``now``."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.bitcoin.target import MAX_TARGET, difficulty_to_target, hash_rate_to_target, target_to_difficulty
from sv2proxy.codec.constants import ERROR_INVALID_NOMINAL_HASHRATE, ERROR_MAX_TARGET_OUT_OF_RANGE
from sv2proxy.errors import ProtocolError
from sv2proxy.pool.vardiff import (
    HASHES_PER_DIFFICULTY,
    Vardiff,
    VardiffConfig,
    initial_difficulty_for,
    retarget_due,
)

T0 = 1_000.0


def hundred_share_vardiff(elapsed: float, difficulty: float = 1.0) -> Vardiff:
    """A channel whose estimate expects exactly 100 shares in ``elapsed`` seconds, so a window of
    ``100 + p`` shares is ``p`` percent off."""
    config = VardiffConfig(shares_per_minute=6000.0 / elapsed, min_difficulty=1e-9)
    return Vardiff(config, difficulty, T0)


def plain(difficulty: float = 1.0, **config: Any) -> Vardiff:
    return Vardiff(VardiffConfig(**config), difficulty, T0)


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shares_per_minute": 0.0}, "shares_per_minute"),
        ({"shares_per_minute": math.inf}, "shares_per_minute"),
        ({"min_difficulty": 0.0}, "min_difficulty"),
        ({"min_difficulty": math.nan}, "min_difficulty"),
        ({"max_difficulty": math.inf}, "max_difficulty"),
        ({"min_difficulty": 2.0, "max_difficulty": 1.0}, "below min_difficulty"),
        ({"min_interval": -1.0}, "min_interval"),
    ],
)
def test_config_rejects(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VardiffConfig(**kwargs)


def test_config_defaults() -> None:
    config = VardiffConfig()
    assert (config.shares_per_minute, config.min_difficulty, config.max_difficulty, config.min_interval) == (
        6.0,
        0.0001,
        None,
        15.0,
    )


# --- the evaluation window -----------------------------------------------------------------


@pytest.mark.parametrize("elapsed", [0.0, 10.0, 15.0])
def test_nothing_before_min_interval(elapsed: float) -> None:
    vardiff = plain()
    vardiff.on_shares(10_000, T0 + 1)
    assert vardiff.evaluate(T0 + elapsed) is None
    assert vardiff.difficulty == 1.0


def test_first_evaluation_just_after_min_interval() -> None:
    vardiff = plain()
    vardiff.on_shares(10_000, T0 + 1)
    assert vardiff.evaluate(T0 + 15.001) is not None


def test_fast_shares_raise_difficulty() -> None:
    vardiff = hundred_share_vardiff(120.0)
    vardiff.on_shares(200, T0 + 60)
    new = vardiff.evaluate(T0 + 120)
    assert new == pytest.approx(2.0)
    assert vardiff.difficulty == new
    assert vardiff.target == difficulty_to_target(new)


def test_slow_shares_lower_difficulty() -> None:
    vardiff = hundred_share_vardiff(120.0)
    vardiff.on_shares(40, T0 + 60)
    assert vardiff.evaluate(T0 + 120) == pytest.approx(0.4)


TIERS = [
    (16.0, 99, 101),
    (59.0, 99, 101),
    (60.0, 59, 61),
    (61.0, 59, 61),
    (119.0, 59, 61),
    (120.0, 49, 51),
    (180.0, 44, 46),
    (240.0, 29, 31),
    (300.0, 14, 16),
    (3600.0, 14, 16),
]


@pytest.mark.parametrize(
    ("elapsed", "below", "above", "direction"),
    [(*tier, 1) for tier in TIERS] + [(*tier, -1) for tier in TIERS if tier[2] < 100],
)
def test_threshold_tiers(elapsed: float, below: int, above: int, direction: int) -> None:
    """A window ``below`` percent off its estimate keeps the difficulty; ``above`` retargets it,
    faster (direction 1) or slower (-1) than expected."""
    quiet = hundred_share_vardiff(elapsed)
    quiet.on_shares(100 + direction * below, T0 + 1)
    assert quiet.evaluate(T0 + elapsed) is None

    moved = hundred_share_vardiff(elapsed)
    moved.on_shares(100 + direction * above, T0 + 1)
    assert moved.evaluate(T0 + elapsed) == pytest.approx((100 + direction * above) / 100)


def test_tier_starts_at_its_second() -> None:
    """61 % off is not enough at 59.9 s (only the 100 % tier applies) but is at 60 s."""
    early = hundred_share_vardiff(60.0)
    early.on_shares(161, T0 + 1)
    assert early.evaluate(T0 + 59.9) is None
    late = hundred_share_vardiff(60.0)
    late.on_shares(161, T0 + 1)
    assert late.evaluate(T0 + 60.0) == pytest.approx(1.61)


def test_retarget_due_table() -> None:
    assert retarget_due(100.0, 16.0)
    assert not retarget_due(99.9, 59.9)
    assert retarget_due(60.0, 60.0)
    assert not retarget_due(14.9, 10_000.0)
    assert retarget_due(15.0, 300.0)


def test_window_grows_until_a_stricter_tier_fires() -> None:
    vardiff = plain(shares_per_minute=60.0, min_difficulty=1e-9)
    vardiff.on_shares(79, T0 + 30)  # 31.7 % off: not enough at 60 s
    assert vardiff.evaluate(T0 + 60) is None
    vardiff.on_shares(236, T0 + 200)  # 315 in 240 s, 31.25 % off: enough from 240 s on
    assert vardiff.evaluate(T0 + 239) is None
    assert vardiff.evaluate(T0 + 240) == pytest.approx(1.3125)


def test_retarget_opens_a_new_window() -> None:
    vardiff = plain(shares_per_minute=60.0)
    vardiff.on_shares(200, T0 + 50)
    assert vardiff.evaluate(T0 + 100) == pytest.approx(2.0)
    assert vardiff.evaluate(T0 + 116) is not None  # no shares since: the new window is empty
    vardiff = plain(shares_per_minute=60.0)
    vardiff.on_shares(200, T0 + 50)
    vardiff.evaluate(T0 + 100)
    vardiff.on_shares(100, T0 + 150)  # 1 share/s at difficulty 2: exactly the new estimate
    assert vardiff.evaluate(T0 + 200) is None


# --- no shares, and bursts -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "divisor"),
    [(16.0, 1.5), (30.0, 1.5), (30.5, 2.0), (59.0, 2.0), (60.0, 3.0), (600.0, 3.0)],
)
def test_no_shares_lowers_estimate(elapsed: float, divisor: float) -> None:
    vardiff = plain(difficulty=9.0)
    rate = vardiff.estimated_hash_rate
    assert vardiff.evaluate(T0 + elapsed) == pytest.approx(9.0 / divisor)
    assert vardiff.estimated_hash_rate == pytest.approx(rate / divisor)


@pytest.mark.parametrize(("elapsed", "factor"), [(20.0, 10.0), (30.0, 10.0), (45.0, 5.0), (90.0, 3.0)])
def test_burst_rise_is_capped(elapsed: float, factor: float) -> None:
    vardiff = plain()
    vardiff.on_shares(100_000, T0 + 1)
    assert vardiff.evaluate(T0 + elapsed) == pytest.approx(factor)


def test_estimated_hash_rate_formula() -> None:
    vardiff = plain(difficulty=3.0, shares_per_minute=6.0)
    assert vardiff.estimated_hash_rate == pytest.approx(3.0 * HASHES_PER_DIFFICULTY / 10.0)


# --- bounds ------------------------------------------------------------------------------------


def test_initial_difficulty_is_clamped() -> None:
    assert plain(difficulty=1e-9, min_difficulty=1e-4).difficulty == 1e-4
    assert plain(difficulty=1e9, max_difficulty=1e6).difficulty == 1e6


def test_clamped_to_max_difficulty() -> None:
    vardiff = plain(difficulty=500.0, max_difficulty=1000.0)
    vardiff.on_shares(100_000, T0 + 1)
    assert vardiff.evaluate(T0 + 20) == 1000.0
    vardiff.on_shares(100_000, T0 + 30)
    assert vardiff.evaluate(T0 + 40) is None  # wants more, but already at the ceiling
    assert vardiff.difficulty == 1000.0


def test_fractional_min_difficulty_floor() -> None:
    vardiff = plain(difficulty=0.001, min_difficulty=0.0001)
    now = T0
    seen = []
    for _ in range(10):
        now += 61
        seen.append(vardiff.evaluate(now))
    assert seen[:2] == [pytest.approx(0.001 / 3), pytest.approx(0.001 / 9)]
    assert seen[2] == 0.0001
    assert seen[3:] == [None] * 7
    assert vardiff.difficulty == 0.0001
    assert vardiff.target == difficulty_to_target(0.0001)
    assert target_to_difficulty(vardiff.target) == pytest.approx(0.0001)


def test_tiny_difficulty_retargets_up() -> None:
    vardiff = plain(difficulty=0.0001, min_difficulty=0.0001)
    vardiff.on_shares(12, T0 + 30)  # 12/min on 6: twice the expected rate
    assert vardiff.evaluate(T0 + 60) == pytest.approx(0.0002)


# --- the channel's max_target ----------------------------------------------------------------


def test_lower_max_target_applies_at_once() -> None:
    vardiff = plain()
    max_target = difficulty_to_target(4.0)
    new = vardiff.set_max_target(max_target)
    assert new == pytest.approx(4.0)
    assert vardiff.difficulty == new
    assert vardiff.target <= max_target
    assert vardiff.max_target == max_target


def test_lower_max_target_above_current_target_changes_nothing() -> None:
    vardiff = plain(difficulty=8.0)
    assert vardiff.set_max_target(difficulty_to_target(4.0)) is None
    assert vardiff.set_max_target(vardiff.target) is None
    assert vardiff.difficulty == 8.0


def test_max_target_holds_against_the_estimate() -> None:
    vardiff = plain()
    vardiff.set_max_target(difficulty_to_target(4.0))
    assert vardiff.evaluate(T0 + 100) is None  # no shares: the estimate falls, the floor holds
    assert vardiff.target <= difficulty_to_target(4.0)


def test_raising_max_target_does_not_force_a_change() -> None:
    vardiff = plain()
    vardiff.set_max_target(difficulty_to_target(4.0))
    assert vardiff.set_max_target(MAX_TARGET) is None
    assert vardiff.difficulty == pytest.approx(4.0)
    # The miner keeps its pace (one share per 40 s at difficulty 4 is the estimate's rate):
    # the difficulty follows the estimate once the bound is gone.
    vardiff.on_share(T0 + 20)
    assert vardiff.evaluate(T0 + 40) == pytest.approx(1.0)


def test_constructor_max_target() -> None:
    vardiff = Vardiff(VardiffConfig(), 1.0, T0, max_target=difficulty_to_target(16.0))
    assert vardiff.difficulty == pytest.approx(16.0)
    assert vardiff.target <= difficulty_to_target(16.0)


@pytest.mark.parametrize("max_target", [0, -1, MAX_TARGET + 1])
def test_max_target_outside_u256(max_target: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        plain().set_max_target(max_target)
    assert caught.value.error_code == ERROR_MAX_TARGET_OUT_OF_RANGE


def test_max_target_above_max_difficulty_is_refused() -> None:
    vardiff = plain(max_difficulty=100.0)
    with pytest.raises(ProtocolError) as caught:
        vardiff.set_max_target(difficulty_to_target(1000.0))
    assert caught.value.error_code == ERROR_MAX_TARGET_OUT_OF_RANGE
    assert vardiff.difficulty == 1.0
    assert vardiff.max_target == MAX_TARGET


# --- nominal hash rate -------------------------------------------------------------------------


def test_initial_difficulty_for() -> None:
    config = VardiffConfig(min_difficulty=1e-6, max_difficulty=1e9)
    hash_rate = 100e12
    expected = target_to_difficulty(hash_rate_to_target(hash_rate, 6.0))
    assert initial_difficulty_for(hash_rate, 6.0, config) == expected
    assert expected == pytest.approx(hash_rate * 10 / HASHES_PER_DIFFICULTY, rel=1e-4)
    assert initial_difficulty_for(0.0, 6.0, config) == 1e-6
    assert initial_difficulty_for(1e30, 6.0, config) == 1e9


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_invalid_nominal_hash_rate(bad: float) -> None:
    with pytest.raises(ProtocolError) as caught:
        initial_difficulty_for(bad, 6.0, VardiffConfig())
    assert caught.value.error_code == ERROR_INVALID_NOMINAL_HASHRATE
    with pytest.raises(ProtocolError):
        plain().update_nominal_hash_rate(bad, T0)


def test_update_nominal_hash_rate_replaces_estimate_and_window() -> None:
    vardiff = plain(min_difficulty=1e-6)
    vardiff.on_shares(1000, T0 + 5)
    new = vardiff.update_nominal_hash_rate(2.0 * HASHES_PER_DIFFICULTY / 10.0, T0 + 10)
    assert new == pytest.approx(2.0, rel=1e-4)
    assert vardiff.evaluate(T0 + 24) is None  # the window reopened at T0 + 10
    assert vardiff.update_nominal_hash_rate(2.0 * HASHES_PER_DIFFICULTY / 10.0, T0 + 30) is None


def test_clock_stepping_back_reopens_the_window() -> None:
    vardiff = plain(difficulty=3.0)
    vardiff.on_shares(1000, T0 + 5)
    assert vardiff.evaluate(T0 - 100) is None
    assert vardiff.evaluate(T0 - 100 + 16) == pytest.approx(2.0)  # silent window: ÷1.5


def test_negative_share_count() -> None:
    with pytest.raises(ValueError, match="negative"):
        plain().on_shares(-1, T0)


# --- properties --------------------------------------------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[VardiffConfig, float, list[tuple[float, int, float | None]]]:
    min_difficulty = draw(st.floats(1e-6, 10.0))
    max_difficulty = draw(st.one_of(st.none(), st.floats(1.0, 1e6).map(lambda f: min_difficulty * f)))
    config = VardiffConfig(
        shares_per_minute=draw(st.floats(0.5, 60.0)),
        min_difficulty=min_difficulty,
        max_difficulty=max_difficulty,
        min_interval=draw(st.sampled_from([0.0, 5.0, 15.0])),
    )
    initial = draw(st.floats(1e-9, 1e9))
    top = (max_difficulty or 1e9) * 0.999
    steps = draw(
        st.lists(
            st.tuples(
                st.floats(0.0, 400.0),
                st.integers(0, 5000),
                st.one_of(st.none(), st.floats(min_difficulty / 100, top)),
            ),
            max_size=30,
        )
    )
    return config, initial, steps


@given(scenarios())
def test_difficulty_always_within_bounds(
    scenario: tuple[VardiffConfig, float, list[tuple[float, int, float | None]]],
) -> None:
    config, initial, steps = scenario
    vardiff = Vardiff(config, initial, T0)
    now = T0

    def check(returned: float | None) -> None:
        assert config.min_difficulty <= vardiff.difficulty
        if config.max_difficulty is not None:
            assert vardiff.difficulty <= config.max_difficulty
        assert vardiff.target <= vardiff.max_target
        assert 0 < vardiff.estimated_hash_rate < math.inf
        if returned is not None:
            assert returned == vardiff.difficulty

    check(None)
    for advance, shares, floor in steps:
        now += advance
        vardiff.on_shares(shares, now)
        if floor is not None:
            before = vardiff.target
            max_target = difficulty_to_target(floor)
            returned = vardiff.set_max_target(max_target)
            assert (returned is not None) == (before > max_target)
            check(returned)
        check(vardiff.evaluate(now))


def test_shares_count_at_the_difficulty_they_were_judged_by():
    # After a retarget to 100, shares still arriving for the old job (difficulty 1) must not
    # count as difficulty-100 work, or the estimate jumps and retargets again.
    config = VardiffConfig(shares_per_minute=6.0, min_difficulty=0.0001)
    at_old = Vardiff(config, 100.0, 0.0)
    at_new = Vardiff(config, 100.0, 0.0)
    for second in range(0, 60, 10):
        at_old.on_share(float(second), difficulty=1.0)
        at_new.on_share(float(second))
    assert at_old.evaluate(61.0) < 100.0 < 1000.0
    assert at_new.evaluate(61.0) is None or at_new.difficulty >= 100.0


def test_pause_restarts_the_window():
    config = VardiffConfig()
    vardiff = Vardiff(config, 10.0, 0.0)
    vardiff.pause(500.0)
    assert vardiff.evaluate(510.0) is None  # still inside the quiet period of the new window
