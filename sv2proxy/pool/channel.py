"""Mining channels (PROTOCOL.md §6 "channel kinds"): what the pool knows of each one.

A channel owns its extranonce prefix, its current target, its jobs and the hashes of the shares
it already accepted on the current prev hash.  It turns shared :class:`Work` into its own job
and into the message that announces it.
"""

from __future__ import annotations

import enum

from sv2proxy.codec.mining import NewExtendedMiningJob, NewMiningJob, SetNewPrevHash
from sv2proxy.pool.jobs import DEFAULT_MAX_PAST_JOBS, ChannelJob, JobStore, PrevHash, Work

#: Shares remembered for duplicate detection, per channel and prev hash.  Every share had to
#: meet the channel's target, so reaching this bound takes real work; past it the oldest half
#: is forgotten rather than letting memory grow.
MAX_SEEN_SHARES = 1 << 16


class ChannelKind(enum.Enum):
    STANDARD = "standard"
    EXTENDED = "extended"


class Channel:
    """One standard or extended channel."""

    __slots__ = (
        "channel_id",
        "extranonce_prefix",
        "extranonce_value",
        "group_channel_id",
        "jobs",
        "kind",
        "max_target",
        "nominal_hash_rate",
        "payout",
        "rollable_size",
        "seen",
        "target",
        "user_identity",
    )

    def __init__(
        self,
        channel_id: int,
        kind: ChannelKind,
        user_identity: str,
        nominal_hash_rate: float,
        extranonce_value: int,
        extranonce_prefix: bytes,
        rollable_size: int,
        target: int,
        max_target: int,
        group_channel_id: int = 0,
        max_past_jobs: int = DEFAULT_MAX_PAST_JOBS,
    ) -> None:
        self.channel_id = channel_id
        self.kind = kind
        self.user_identity = user_identity
        self.nominal_hash_rate = nominal_hash_rate
        self.extranonce_value = extranonce_value
        self.extranonce_prefix = extranonce_prefix
        self.rollable_size = rollable_size
        self.target = target
        self.max_target = max_target
        self.group_channel_id = group_channel_id
        self.jobs = JobStore(max_past_jobs)
        self.seen: dict[bytes, None] = {}
        #: Solo-pool channels: the script their own blocks pay in full (None: the pool's payout).
        self.payout: bytes | None = None

    @property
    def standard(self) -> bool:
        return self.kind is ChannelKind.STANDARD

    def add_job(self, job_id: int, work: Work) -> ChannelJob:
        """Make and keep this channel's job for ``work`` (the job id is shared pool-wide)."""
        job = ChannelJob(job_id, work, self.target, self.extranonce_prefix, standard=self.standard)
        self.jobs.add(job)
        return job

    def activate(self, job_id: int, prev: PrevHash) -> ChannelJob:
        """A new prev hash activates ``job_id``; older shares can no longer be duplicates."""
        job = self.jobs.activate(job_id, prev)
        self.seen.clear()
        return job

    def start_job(self, job_id: int, work: Work, prev: PrevHash) -> ChannelJob:
        """A new tip: future ``work`` as job ``job_id``, activated on ``prev`` at once.

        The same as :meth:`add_job` then :meth:`activate`, in one step.
        """
        job = ChannelJob(job_id, work, self.target, self.extranonce_prefix, standard=self.kind is ChannelKind.STANDARD)
        self.jobs.start(job, prev)
        self.seen.clear()
        return job

    def set_target(self, target: int) -> None:
        """A new target: for jobs made from now on and for future jobs not yet active.

        Active and past jobs keep the target they were sent with, so a miner's in-flight shares
        are judged by what it was told (PROTOCOL.md §6 "share target vs channel target").
        """
        self.target = target
        for job in self.jobs.future_jobs():
            job.target = target

    def remember(self, share_hash: bytes) -> bool:
        """Record an accepted share's hash; False if it was already seen (a duplicate)."""
        seen = self.seen
        if share_hash in seen:
            return False
        if len(seen) >= MAX_SEEN_SHARES:
            for old in list(seen)[: MAX_SEEN_SHARES // 2]:
                del seen[old]
        seen[share_hash] = None
        return True

    def job_message(self, job: ChannelJob, to: int | None = None) -> NewMiningJob | NewExtendedMiningJob:
        """The message that gives ``job`` to this channel's miner (extended jobs: or to group ``to``)."""
        work = job.work
        min_ntime = None if work.future else _start_ntime(work, job.prev)
        if job.merkle_root is not None:
            return NewMiningJob(self.channel_id, job.job_id, min_ntime, work.version, job.merkle_root)
        return NewExtendedMiningJob(
            self.channel_id if to is None else to,
            job.job_id,
            min_ntime,
            work.version,
            work.version_rolling_allowed,
            work.merkle_path,
            work.coinbase_prefix,
            work.coinbase_suffix,
        )

    def prev_hash_message(self, job: ChannelJob) -> SetNewPrevHash:
        """The SetNewPrevHash that activates ``job`` (already activated) on this channel."""
        prev = job.prev
        assert prev is not None, "prev_hash_message for a job that is not active"
        return SetNewPrevHash(self.channel_id, job.job_id, prev.prev_hash, prev.min_ntime, prev.nbits)


def _start_ntime(work: Work, prev: PrevHash | None) -> int:
    floor = prev.min_ntime if prev is not None else 0
    return max(floor, work.min_ntime or 0)
