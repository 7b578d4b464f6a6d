"""Share accounting: when a SubmitShares.Success goes out and what it says."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.codec.mining import SubmitSharesSuccess
from sv2proxy.pool.accounting import U32_MAX, U64_MAX, ShareAccounting

T0 = 500.0


def accounting(batch_size: int = 10, window: float = 1.0) -> ShareAccounting:
    return ShareAccounting(channel_id=7, batch_size=batch_size, window=window, now=T0)


def test_batch_of_n() -> None:
    acct = accounting(batch_size=3)
    assert acct.accept(1, 2.0, T0) is None
    assert acct.accept(2, 2.0, T0) is None
    assert acct.pending_count == 2
    assert acct.accept(3, 2.0, T0) == SubmitSharesSuccess(
        channel_id=7, last_sequence_number=3, new_submits_accepted_count=3, new_shares_sum=6
    )
    assert acct.pending_count == 0


def test_counts_reset_per_success() -> None:
    acct = accounting(batch_size=2)
    acct.accept(1, 1.0, T0)
    acct.accept(2, 1.0, T0)
    assert acct.accept(3, 5.0, T0) is None
    assert acct.accept(4, 5.0, T0) == SubmitSharesSuccess(7, 4, 2, 10)
    assert (acct.accepted_total, acct.shares_sum_total) == (4, 12.0)


def test_block_is_acknowledged_at_once() -> None:
    acct = accounting()
    acct.accept(1, 1.0, T0)
    acct.accept(2, 1.0, T0)
    assert acct.accept(3, 1.0, T0, is_block=True) == SubmitSharesSuccess(7, 3, 3, 3)
    assert acct.accept(4, 1.0, T0, is_block=True) == SubmitSharesSuccess(7, 4, 1, 1)
    assert acct.flush(T0) is None


def test_window_flush() -> None:
    acct = accounting(window=1.0)
    assert not acct.due(T0 + 5)  # nothing pending, however long
    acct.accept(1, 4.0, T0 + 0.25)
    assert not acct.due(T0 + 0.999)
    assert acct.due(T0 + 1.0)
    assert acct.flush(T0 + 1.0) == SubmitSharesSuccess(7, 1, 1, 4)
    assert not acct.due(T0 + 10)
    assert acct.flush(T0 + 10) is None


def test_window_counts_from_last_success() -> None:
    acct = accounting(batch_size=2, window=1.0)
    acct.accept(1, 1.0, T0 + 3)
    assert acct.due(T0 + 3)  # a share after a quiet spell is acknowledged at the next tick
    acct.accept(2, 1.0, T0 + 3)  # the batch fills: a Success at T0 + 3
    acct.accept(3, 1.0, T0 + 3.5)
    assert not acct.due(T0 + 3.9)
    assert acct.due(T0 + 4.0)


def test_flush_with_nothing_pending() -> None:
    assert accounting().flush(T0 + 100) is None


def test_last_sequence_number_is_latest_accepted() -> None:
    # The spec lets a server take the last one received rather than check that they increase.
    acct = accounting(batch_size=3)
    acct.accept(9, 1.0, T0)
    acct.accept(12, 1.0, T0)
    success = acct.accept(10, 1.0, T0)
    assert success is not None
    assert success.last_sequence_number == 10


def test_fractional_difficulties_carry_into_later_batches() -> None:
    acct = accounting(batch_size=2)
    sums = []
    for seq in range(8):
        success = acct.accept(seq, 0.25, T0)
        if success is not None:
            sums.append(success.new_shares_sum)
    assert sums == [0, 1, 0, 1]
    assert acct.shares_sum_total == 2.0


def test_fraction_and_whole_parts() -> None:
    acct = accounting(batch_size=3)
    for seq in range(2):
        acct.accept(seq, 1.5, T0)
    first = acct.accept(2, 1.5, T0)
    for seq in range(3, 5):
        acct.accept(seq, 1.5, T0)
    second = acct.accept(5, 1.5, T0)
    assert first is not None and second is not None
    assert (first.new_shares_sum, second.new_shares_sum) == (4, 5)  # 4.5, then 4.5 + 0.5


def test_new_shares_sum_saturates_at_u64() -> None:
    acct = accounting(batch_size=2)
    acct.accept(1, 1e19, T0)
    success = acct.accept(2, 1e19, T0)
    assert success is not None
    assert success.new_shares_sum == U64_MAX
    assert SubmitSharesSuccess.decode(success.encode()) == success
    follow = acct.accept(3, 2.0, T0, is_block=True)
    assert follow is not None
    assert follow.new_shares_sum == 2  # the excess is dropped, not carried
    assert acct.shares_sum_total == 2e19 + 2.0


def test_single_share_beyond_u64() -> None:
    success = accounting().accept(1, float(2**64), T0, is_block=True)
    assert success is not None
    assert success.new_shares_sum == U64_MAX


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channel_id": -1}, "channel_id"),
        ({"channel_id": U32_MAX + 1}, "channel_id"),
        ({"batch_size": 0}, "batch_size"),
        ({"window": 0.0}, "window"),
        ({"window": math.nan}, "window"),
    ],
)
def test_constructor_rejects(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"channel_id": 1, "batch_size": 10, "window": 1.0, "now": T0}
    with pytest.raises(ValueError, match=message):
        ShareAccounting(**(arguments | kwargs))


@pytest.mark.parametrize(
    ("sequence_number", "difficulty", "message"),
    [
        (-1, 1.0, "sequence_number"),
        (U32_MAX + 1, 1.0, "sequence_number"),
        (1, 0.0, "difficulty"),
        (1, math.inf, "difficulty"),
        (1, math.nan, "difficulty"),
    ],
)
def test_accept_rejects(sequence_number: int, difficulty: float, message: str) -> None:
    acct = accounting()
    with pytest.raises(ValueError, match=message):
        acct.accept(sequence_number, difficulty, T0)
    assert (acct.pending_count, acct.accepted_total) == (0, 0)


@given(
    batch_size=st.integers(1, 20),
    shares=st.lists(
        st.tuples(st.integers(0, U32_MAX), st.floats(1e-4, 1e6), st.booleans(), st.booleans()),
        max_size=200,
    ),
)
def test_successes_account_for_every_share(batch_size: int, shares: list[tuple[int, float, bool, bool]]) -> None:
    acct = accounting(batch_size=batch_size)
    now = T0
    successes = []
    for sequence_number, difficulty, is_block, tick in shares:
        now += 0.4
        success = acct.accept(sequence_number, difficulty, now, is_block=is_block)
        if success is not None:
            successes.append(success)
        if tick and acct.due(now):
            late = acct.flush(now)
            assert late is not None
            successes.append(late)
    final = acct.flush(now)
    if final is not None:
        successes.append(final)

    assert sum(s.new_submits_accepted_count for s in successes) == len(shares) == acct.accepted_total
    assert all(1 <= s.new_submits_accepted_count <= batch_size for s in successes)
    exact = math.fsum(d for _, d, _, _ in shares)
    assert abs(sum(s.new_shares_sum for s in successes) - math.floor(exact)) <= 1
    assert acct.shares_sum_total == pytest.approx(exact)
    if shares:
        assert successes[-1].last_sequence_number == shares[-1][0]
    for success in successes:
        assert SubmitSharesSuccess.decode(success.encode()) == success
