"""What the store holds and what its queries answer, as plain values."""

from __future__ import annotations

from dataclasses import dataclass

#: Hash rate windows reported per worker, in seconds: 1 m, 15 m, 1 h and 24 h.
WINDOWS = (60, 900, 3600, 86400)

#: Hashes one unit of difficulty stands for (difficulty 1 is a target of 0xffff * 2**208).
HASHES_PER_DIFFICULTY = 2**32


@dataclass(frozen=True, slots=True)
class ShareRow:
    """One accepted share as it is stored (``at`` in Unix seconds)."""

    worker: str
    channel_id: int
    job_id: int
    difficulty: float
    at: float
    is_block: bool


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """A block one of our miners found, and what became of it.

    ``status`` is ``found`` when the share was judged, then ``accepted`` or ``rejected`` (with
    the node's ``reason``) once the node has answered.  ``hash`` is the display hex.
    """

    hash: str
    status: str
    at: float
    worker: str | None = None
    height: int | None = None
    reward: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class UpstreamEventRecord:
    """The proxy connected to (``connected``) or lost (``disconnected``) a remote pool."""

    url: str
    event: str
    at: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """One worker's accepted work: hash rate per window of :data:`WINDOWS`, shares, blocks."""

    worker: str
    hash_rates: tuple[float, ...]  # H/s over each window of WINDOWS
    shares_24h: int
    difficulty_24h: float
    blocks: int
    last_share_at: float | None
    rejected: dict[str, int]  # reason -> count, since the store began


def hash_rate(difficulty_sum: float, window: float) -> float:
    """H/s that ``difficulty_sum`` worth of shares over ``window`` seconds stands for."""
    return difficulty_sum * HASHES_PER_DIFFICULTY / window if window > 0 else 0.0
