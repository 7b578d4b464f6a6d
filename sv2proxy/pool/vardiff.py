"""Per-channel variable difficulty (PROTOCOL.md §6 "UpdateChannel / vardiff", "targets/difficulty").

The algorithm is SRI's classic vardiff (``channels-sv2/src/vardiff/classic.rs``), restated over
difficulties instead of targets and with time passed in as ``now`` (seconds, float):

- Nothing is evaluated until more than ``min_interval`` seconds (SRI: 15) have passed since the
  window opened.
- The realized hash rate of the window is ``work × 2**32 / elapsed``, where ``work`` is the sum of
  the difficulties the counted shares were accepted at; the expected hash rate is the current
  estimate.  ``delta`` is ``|realized - expected| / expected`` in percent.
- A retarget is due when ``delta >= 100``, or ``>= 60`` after 60 s, ``>= 50`` after 120 s,
  ``>= 45`` after 180 s, ``>= 30`` after 240 s, ``>= 15`` after 300 s (each "after" inclusive).
- The new estimate is the realized hash rate, except: with no shares at all (delta is then
  exactly 100 %, so this fires at the first evaluation) the estimate is divided by 1.5 when
  ``elapsed <= 30``, by 2 when ``elapsed < 60`` and by 3 otherwise; and when ``delta > 1000``
  the rise is capped at ×10 (``elapsed <= 30``), ×5 (``< 60``) or ×3 (otherwise), so one lucky
  burst cannot push a miner out of reach.
- A retarget opens a new window; a window whose delta is not yet significant keeps growing, so
  later, stricter tiers see more shares.

What we add to SRI: the estimate never falls below the hash rate of ``min_difficulty`` (SRI's
``min_allowed_hashrate`` in difficulty units, so tiny miners at 0.0001 work); the difficulty
handed out is clamped to ``[min_difficulty, max_difficulty]`` and to the channel's ``max_target``
(the easiest target the miner accepts, a minimum difficulty the spec obliges us to honour, SPEC 05
§5.3.7); and a difficulty held away from the estimate by a bound that has since relaxed follows
the estimate at the next evaluation rather than staying stuck.

Counting ``work`` rather than shares keeps the window honest when ``set_max_target`` raises the
difficulty in the middle of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sv2proxy.bitcoin.target import (
    MAX_TARGET,
    difficulty_to_target,
    hash_rate_to_target,
    target_to_difficulty,
)
from sv2proxy.codec.constants import ERROR_INVALID_NOMINAL_HASHRATE, ERROR_MAX_TARGET_OUT_OF_RANGE
from sv2proxy.errors import ProtocolError

#: Expected hashes per share at difficulty 1: the convention pools and dashboards share.  The exact
#: figure is ``2**256 / DIFF1_TARGET`` (2**32 × 65536/65535); the 0.0015 % between them is far
#: below every threshold here and keeps our hash rates equal to everyone else's.
HASHES_PER_DIFFICULTY = 2**32

#: ``(minimum elapsed seconds, minimum delta percent)``: a retarget is due when any row holds.
RETARGET_TIERS: tuple[tuple[float, float], ...] = (
    (0.0, 100.0),
    (60.0, 60.0),
    (120.0, 50.0),
    (180.0, 45.0),
    (240.0, 30.0),
    (300.0, 15.0),
)

#: Above this delta the rise of the estimate is capped (SRI classic.rs).
SURGE_DELTA_PERCENT = 1000.0


@dataclass(frozen=True, slots=True)
class VardiffConfig:
    """Vardiff settings shared by every channel of a listener.

    ``shares_per_minute`` defaults to 6, the figure SRI's reference pool and translator configs
    ship: one share every 10 s keeps a thousand miners at about a hundred shares a second, while
    the 300 s tier still judges a window of some 30 shares.  ``min_difficulty`` defaults to
    0.0001 so a 50 kH/s hobby miner still gets a share every few seconds; ``max_difficulty`` is
    unbounded unless set.  ``min_interval`` is SRI's 15 s quiet period before the first
    evaluation of a window.
    """

    shares_per_minute: float = 6.0
    min_difficulty: float = 0.0001
    max_difficulty: float | None = None
    min_interval: float = 15.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.shares_per_minute) and self.shares_per_minute > 0):
            raise ValueError(f"shares_per_minute must be a positive number, got {self.shares_per_minute!r}")
        if not (math.isfinite(self.min_difficulty) and self.min_difficulty > 0):
            raise ValueError(f"min_difficulty must be a positive number, got {self.min_difficulty!r}")
        if self.max_difficulty is not None:
            if not math.isfinite(self.max_difficulty):
                raise ValueError(f"max_difficulty must be a finite number, got {self.max_difficulty!r}")
            if self.max_difficulty < self.min_difficulty:
                raise ValueError(
                    f"max_difficulty ({self.max_difficulty}) is below min_difficulty ({self.min_difficulty})"
                )
        if not (math.isfinite(self.min_interval) and self.min_interval >= 0):
            raise ValueError(f"min_interval must be zero or more seconds, got {self.min_interval!r}")


def _check_nominal_hash_rate(nominal_hash_rate: float) -> None:
    # The figure comes off the wire as an F32: NaN and infinities are possible and meaningless.
    if not (math.isfinite(nominal_hash_rate) and nominal_hash_rate >= 0):
        raise ProtocolError(
            f"nominal hash rate must be a finite non-negative number, got {nominal_hash_rate!r}",
            ERROR_INVALID_NOMINAL_HASHRATE,
        )


def _difficulty_for_hash_rate(nominal_hash_rate: float, shares_per_minute: float) -> float:
    """Unclamped difficulty at which ``nominal_hash_rate`` yields ``shares_per_minute`` (SRI formula)."""
    return target_to_difficulty(hash_rate_to_target(nominal_hash_rate, shares_per_minute))


def initial_difficulty_for(nominal_hash_rate: float, shares_per_minute: float, config: VardiffConfig) -> float:
    """The opening difficulty for a channel announcing ``nominal_hash_rate`` H/s.

    Uses SRI's ``hash_rate_to_target`` so a miner sees the same first target from us as from the
    reference pool, then clamps to the configured bounds; a zero hash rate gets ``min_difficulty``.
    The channel's own ``max_target`` is applied by :class:`Vardiff`, not here.
    """
    _check_nominal_hash_rate(nominal_hash_rate)
    difficulty = max(_difficulty_for_hash_rate(nominal_hash_rate, shares_per_minute), config.min_difficulty)
    if config.max_difficulty is not None:
        difficulty = min(difficulty, config.max_difficulty)
    return difficulty


def _silent_divisor(elapsed: float) -> float:
    if elapsed <= 30:
        return 1.5
    if elapsed < 60:
        return 2.0
    return 3.0


def _surge_factor(elapsed: float) -> float:
    if elapsed <= 30:
        return 10.0
    if elapsed < 60:
        return 5.0
    return 3.0


def retarget_due(delta_percent: float, elapsed: float) -> bool:
    """Whether a window ``elapsed`` seconds long with this delta calls for a new difficulty."""
    return any(elapsed >= after and delta_percent >= threshold for after, threshold in RETARGET_TIERS)


class Vardiff:
    """The difficulty of one channel and the share window that steers it.

    The estimate (:attr:`estimated_hash_rate`) is what the shares say the miner does; the
    difficulty is that estimate at ``shares_per_minute``, clamped to the configuration's bounds
    and the channel's ``max_target``.  Methods that change the difficulty return the new value
    (the caller then sends SetTarget with :attr:`target`); ``None`` means nothing to send.
    """

    __slots__ = ("_config", "_wanted", "_difficulty", "_target", "_max_target", "_floor", "_start", "_shares", "_work")

    def __init__(
        self, config: VardiffConfig, initial_difficulty: float, now: float, *, max_target: int = MAX_TARGET
    ) -> None:
        """Start at ``initial_difficulty`` (clamped) with a window opening at ``now``.

        ``max_target`` is the one OpenMiningChannel carried; it is checked as by
        :meth:`set_max_target`, so an impossible one raises the same ProtocolError.
        """
        if not (math.isfinite(initial_difficulty) and initial_difficulty > 0):
            raise ValueError(f"initial difficulty must be a positive number, got {initial_difficulty!r}")
        self._config = config
        self._max_target = MAX_TARGET
        self._floor = config.min_difficulty
        self._wanted = max(initial_difficulty, config.min_difficulty)
        self._difficulty, self._target = self._bounded()
        self._start = now
        self._shares = 0
        self._work = 0.0
        self.set_max_target(max_target)

    @property
    def config(self) -> VardiffConfig:
        return self._config

    @property
    def difficulty(self) -> float:
        """The difficulty shares are currently asked for."""
        return self._difficulty

    @property
    def target(self) -> int:
        """The target for :attr:`difficulty`, never easier than the channel's ``max_target``."""
        return self._target

    @property
    def max_target(self) -> int:
        return self._max_target

    @property
    def estimated_hash_rate(self) -> float:
        """H/s the current estimate believes the miner produces (before any clamping)."""
        return self._wanted * HASHES_PER_DIFFICULTY * self._config.shares_per_minute / 60.0

    def on_share(self, now: float, difficulty: float | None = None) -> None:
        """Count one accepted share, worth ``difficulty`` (default: the current one).

        Pass the difficulty of the target the share was judged against: after a retarget the
        miner keeps submitting at its job's old target until its next job, and counting those
        shares at the new difficulty would overstate its hash rate and retarget again.
        """
        self.on_shares(1, now, difficulty)

    def on_shares(self, count: int, now: float, difficulty: float | None = None) -> None:
        """Count ``count`` accepted shares, each worth ``difficulty`` (default: the current one)."""
        if count < 0:
            raise ValueError(f"share count must not be negative, got {count}")
        if now < self._start:
            # The clock stepped back: the window's length is unknowable, so start it afresh here.
            self._open_window(now)
        self._shares += count
        self._work += count * (self._difficulty if difficulty is None else difficulty)

    def pause(self, now: float) -> None:
        """Nothing to mine right now: restart the window instead of reading silence as slowness."""
        self._open_window(now)

    def evaluate(self, now: float) -> float | None:
        """A new difficulty if the window says one is due (see the module docstring), else None."""
        elapsed = now - self._start
        if elapsed < 0:
            self._open_window(now)
            return None
        if elapsed <= self._config.min_interval:
            return None
        expected = self.estimated_hash_rate
        realized = self._work * HASHES_PER_DIFFICULTY / elapsed
        delta_percent = abs(realized - expected) / expected * 100.0
        if retarget_due(delta_percent, elapsed):
            if self._shares == 0:
                estimate = expected / _silent_divisor(elapsed)
            elif delta_percent > SURGE_DELTA_PERCENT:
                estimate = expected * _surge_factor(elapsed)
            else:
                estimate = realized
            per_difficulty = HASHES_PER_DIFFICULTY * self._config.shares_per_minute / 60.0
            self._wanted = max(estimate / per_difficulty, self._config.min_difficulty)
            self._open_window(now)
        return self._apply()

    def set_max_target(self, max_target: int) -> float | None:
        """Adopt the miner's ``max_target`` (OpenMiningChannel or UpdateChannel).

        A ``max_target`` below the current target is honoured at once, as SPEC 05 §5.3.7 demands:
        the new difficulty is returned for an immediate SetTarget.  A higher one only relaxes the
        bound; the difficulty follows the estimate at the next evaluation.  A ``max_target`` that
        would need more than ``max_difficulty`` is refused with the spec's error code.
        """
        if not 0 < max_target <= MAX_TARGET:
            raise ProtocolError("max_target must be a positive 256-bit integer", ERROR_MAX_TARGET_OUT_OF_RANGE)
        floor = max(target_to_difficulty(max_target), self._config.min_difficulty)
        ceiling = self._config.max_difficulty
        if ceiling is not None and floor > ceiling:
            raise ProtocolError(
                f"max_target asks for difficulty {floor:g}, above this pool's maximum {ceiling:g}",
                ERROR_MAX_TARGET_OUT_OF_RANGE,
            )
        self._max_target = max_target
        self._floor = floor
        if self._target <= max_target:
            return None
        difficulty, target = self._bounded()
        self._difficulty, self._target = difficulty, target
        return difficulty

    def update_nominal_hash_rate(self, nominal_hash_rate: float, now: float) -> float | None:
        """Replace the estimate with the hash rate an UpdateChannel announces.

        SRI's pool trusts the announced figure; an aggregating proxy whose miners come and go
        knows its total long before a window could measure it.  A new window opens.
        """
        _check_nominal_hash_rate(nominal_hash_rate)
        wanted = _difficulty_for_hash_rate(nominal_hash_rate, self._config.shares_per_minute)
        self._wanted = max(wanted, self._config.min_difficulty)
        self._open_window(now)
        return self._apply()

    def set_difficulty(self, difficulty: float, now: float) -> float | None:
        """Start from ``difficulty`` (within the bounds); vardiff steers on from there.

        For a difficulty set from outside (a MiningDifficultyChanged event).  Returns the new
        difficulty when the target changes, like the other setters; a new window opens.
        """
        if not (math.isfinite(difficulty) and difficulty > 0):
            raise ValueError(f"difficulty must be a positive number, got {difficulty!r}")
        self._wanted = max(difficulty, self._config.min_difficulty)
        self._open_window(now)
        return self._apply()

    def _open_window(self, now: float) -> None:
        self._start = now
        self._shares = 0
        self._work = 0.0

    def _bounded(self) -> tuple[float, int]:
        difficulty = max(self._wanted, self._floor)
        if self._config.max_difficulty is not None:
            difficulty = min(difficulty, self._config.max_difficulty)
        # difficulty_to_target rounds through a float; the min keeps max_target a hard ceiling.
        return difficulty, min(difficulty_to_target(difficulty), self._max_target)

    def _apply(self) -> float | None:
        difficulty, target = self._bounded()
        if target == self._target:
            return None
        self._difficulty, self._target = difficulty, target
        return difficulty


__all__ = [
    "HASHES_PER_DIFFICULTY",
    "RETARGET_TIERS",
    "SURGE_DELTA_PERCENT",
    "Vardiff",
    "VardiffConfig",
    "initial_difficulty_for",
    "retarget_due",
]
