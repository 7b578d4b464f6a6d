"""Batched SubmitShares.Success for one channel (PROTOCOL.md §6 "SubmitShares.Success", SPEC 05 §5.3.13).

A Success acknowledges every share accepted since the previous one: ``last_sequence_number`` is
the sequence number of the most recently accepted share (the spec lets the server take the last
one it received rather than check that they increase), and ``new_submits_accepted_count`` and
``new_shares_sum`` cover only that batch.  Like SRI's pool we send one every ``batch_size``
accepted shares and at once when a share finds a block; unlike it we also bound how long a share
waits, so a slow miner is acknowledged within ``window`` seconds (the server asks :meth:`due` from a
timer and then calls :meth:`flush`).

``new_shares_sum`` is "the sum of difficulty of shares acknowledged within this batch", each share
counted at the difficulty of its job's target.  The field is a U64 but difficulties are fractional
(0.0001 for a hobby miner), and SRI's ``f64 as u64`` would report 0 for any batch worth less than
1.  We report whole difficulty units and carry the fraction into the next Success: each batch's
figure is its truncated sum or one more, and the figures of all Successes add up to the truncated
running total, so a proxy or dashboard summing them measures the same hash rate we do.  A batch
sum beyond the U64 range is reported as ``2**64 - 1`` and the excess is dropped.

The caller must make the accepted shares durable before sending the Success that acknowledges
them (DESIGN.md, "Data the system must never lose").
"""

from __future__ import annotations

import math

from sv2proxy.codec.mining import SubmitSharesSuccess

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1


class ShareAccounting:
    """Counts accepted shares on one channel and says when to acknowledge them."""

    __slots__ = (
        "_channel_id",
        "_batch_size",
        "_window",
        "_last_ack",
        "_last_sequence_number",
        "_pending_count",
        "_pending_sum",
        "_carry",
        "_accepted_total",
        "_shares_sum_total",
    )

    def __init__(self, channel_id: int, batch_size: int, window: float, now: float) -> None:
        if not 0 <= channel_id <= U32_MAX:
            raise ValueError(f"channel_id must fit a U32, got {channel_id}")
        if not 1 <= batch_size <= U32_MAX:
            raise ValueError(f"batch_size must be between 1 and {U32_MAX}, got {batch_size}")
        if not (math.isfinite(window) and window > 0):
            raise ValueError(f"window must be a positive number of seconds, got {window!r}")
        self._channel_id = channel_id
        self._batch_size = batch_size
        self._window = window
        # The window counts from the channel's opening or its last Success, so timer-driven
        # Successes come at most once a window and a share never waits longer than one.
        self._last_ack = now
        self._last_sequence_number = 0
        self._pending_count = 0
        self._pending_sum = 0.0
        self._carry = 0.0
        self._accepted_total = 0
        self._shares_sum_total = 0.0

    @property
    def channel_id(self) -> int:
        return self._channel_id

    @property
    def pending_count(self) -> int:
        """Accepted shares not yet acknowledged."""
        return self._pending_count

    @property
    def accepted_total(self) -> int:
        """Shares accepted on this channel since it opened."""
        return self._accepted_total

    @property
    def shares_sum_total(self) -> float:
        """Sum of the (fractional) difficulties of every accepted share, for the store and metrics."""
        return self._shares_sum_total

    def accept(
        self, sequence_number: int, difficulty: float, now: float, is_block: bool = False
    ) -> SubmitSharesSuccess | None:
        """Record an accepted share; returns the Success to send when its batch is complete.

        ``difficulty`` is that of the target of the share's job, not of its hash (SPEC 05
        §5.3.13); a share that found a block is acknowledged at once with whatever is pending.
        """
        if not 0 <= sequence_number <= U32_MAX:
            raise ValueError(f"sequence_number must fit a U32, got {sequence_number}")
        if not (math.isfinite(difficulty) and difficulty > 0):
            raise ValueError(f"difficulty must be a positive number, got {difficulty!r}")
        self._last_sequence_number = sequence_number
        self._pending_count += 1
        self._pending_sum += difficulty
        self._accepted_total += 1
        self._shares_sum_total += difficulty
        if is_block or self._pending_count >= self._batch_size:
            return self.flush(now)
        return None

    def due(self, now: float) -> bool:
        """Whether shares have waited a whole window since the last Success."""
        return self._pending_count > 0 and now - self._last_ack >= self._window

    def flush(self, now: float) -> SubmitSharesSuccess | None:
        """The Success for everything pending (None if nothing is), starting a new batch."""
        if self._pending_count == 0:
            return None
        exact = self._pending_sum + self._carry
        whole = math.floor(exact)
        if whole > U64_MAX:
            shares_sum, self._carry = U64_MAX, 0.0
        else:
            shares_sum, self._carry = whole, exact - whole
        success = SubmitSharesSuccess(
            channel_id=self._channel_id,
            last_sequence_number=self._last_sequence_number,
            new_submits_accepted_count=self._pending_count,
            new_shares_sum=shares_sum,
        )
        self._pending_count = 0
        self._pending_sum = 0.0
        self._last_ack = now
        return success


__all__ = ["ShareAccounting", "U32_MAX", "U64_MAX"]
