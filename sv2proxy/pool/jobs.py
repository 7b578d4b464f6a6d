"""Work, per-channel jobs and their lifecycle (PROTOCOL.md §6 "future jobs", "job lifecycle").

:class:`Work` is what one template (pool mode) or one upstream job (proxy mode) gives every
channel alike; the pool assigns it a ``job_id`` that every channel shares, so one group
broadcast can carry it.  :class:`ChannelJob` is that work as one channel sees it: the target the
channel had when the job was made and, for a standard channel, the merkle root built from its
own extranonce prefix.

:class:`JobStore` keeps a channel's jobs: future jobs wait for their SetNewPrevHash, the active
job and a bounded number of past jobs accept shares, and jobs overtaken by a new prev hash are
remembered (boundedly) as stale so their shares are answered ``stale-share``, not
``invalid-job-id``.
"""

from __future__ import annotations

import enum
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

from sv2proxy.bitcoin.hashing import merkle_root_from_path, sha256d
from sv2proxy.bitcoin.target import target_from_nbits
from sv2proxy.errors import MiningJobError

DEFAULT_MAX_PAST_JOBS = 16
DEFAULT_MAX_STALE_JOBS = 64


@dataclass(frozen=True, slots=True)
class Work:
    """One unit of work for all channels.

    ``coinbase_prefix``/``coinbase_suffix`` are the coinbase without BIP141 data, split where the
    full extranonce goes.  ``future`` work waits for a :class:`PrevHash`; other work applies to
    the current one at once.  ``source_id`` is the template id or upstream job id that lets the
    share sink find what it needs to build a block.
    """

    source_id: int
    version: int
    version_rolling_allowed: bool
    coinbase_prefix: bytes
    coinbase_suffix: bytes
    merkle_path: tuple[bytes, ...]
    future: bool
    #: For work that is not future: the ntime it starts at (a fresher one for keepalive jobs).
    min_ntime: int | None = None
    #: The script this work's coinbase pays in full (solo-pool channels), or None for the
    #: configured payout; the block sink needs it to rebuild the block.
    payout: bytes | None = None
    #: The start of the full extranonce that ``coinbase_prefix`` already ends with: in proxy
    #: mode the upstream pool's prefix (and bytes it granted beyond our space), so that local
    #: channels keep their prefixes whatever pool they mine for.
    fixed_extranonce: bytes = b""


@dataclass(frozen=True, slots=True)
class PrevHash:
    """A new chain tip: what SetNewPrevHash carries, plus the network target it implies."""

    prev_hash: bytes
    min_ntime: int
    nbits: int
    # The target nbits encodes, worked out once: every channel's job on this tip needs it.
    _network_target: int | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def network_target(self) -> int:
        """The target ``nbits`` encodes (ValueError if it encodes none)."""
        target = self._network_target
        if target is None:
            target = target_from_nbits(self.nbits)
            object.__setattr__(self, "_network_target", target)
        return target


class JobState(enum.Enum):
    FUTURE = "future"
    ACTIVE = "active"
    PAST = "past"


class ChannelJob:
    """A job as one channel sees it; mutable only in its lifecycle state and prev hash."""

    __slots__ = (
        "coinbase_head",
        "extranonce_prefix",
        "job_id",
        "merkle_root",
        "network_target",
        "prev",
        "state",
        "target",
        "work",
    )

    def __init__(self, job_id: int, work: Work, target: int, extranonce_prefix: bytes, standard: bool) -> None:
        self.job_id = job_id
        self.work = work
        self.target = target
        self.extranonce_prefix = extranonce_prefix
        self.state = JobState.FUTURE if work.future else JobState.ACTIVE
        self.prev: PrevHash | None = None
        self.network_target = 0
        if standard:
            # A standard channel's prefix is the whole extranonce: the coinbase, and so the merkle
            # root, is fixed per job and channel; compute it once here, not per share.
            coinbase = work.coinbase_prefix + extranonce_prefix + work.coinbase_suffix
            self.merkle_root: bytes | None = merkle_root_from_path(sha256d(coinbase), work.merkle_path)
            self.coinbase_head = None
        else:
            # An extended channel's shares differ only after this point: keep the SHA256 state of
            # everything before the miner's extranonce and copy it per share.
            self.merkle_root = None
            self.coinbase_head = hashlib.sha256(work.coinbase_prefix + extranonce_prefix)

    def bind(self, prev: PrevHash) -> None:
        """Attach the chain tip this job is mined on."""
        self.prev = prev
        self.network_target = prev.network_target


class JobStore:
    """One channel's jobs: future, active, past (accepted) and stale (answered stale-share)."""

    __slots__ = ("_future", "_max_past", "_max_stale", "_past", "_stale", "active", "prev")

    def __init__(self, max_past: int = DEFAULT_MAX_PAST_JOBS, max_stale: int = DEFAULT_MAX_STALE_JOBS) -> None:
        self._future: dict[int, ChannelJob] = {}
        self._past: OrderedDict[int, ChannelJob] = OrderedDict()
        self._stale: OrderedDict[int, None] = OrderedDict()
        self._max_past = max_past
        self._max_stale = max_stale
        self.active: ChannelJob | None = None
        self.prev: PrevHash | None = None

    def add(self, job: ChannelJob) -> None:
        """A new job: future ones wait; others become active on the current prev hash."""
        if job.work.future:
            future = self._future
            future[job.job_id] = job
            while len(future) > self._max_past:
                # Never activated: a source that keeps announcing future work without a prev
                # hash must not grow this without end (the oldest goes first).
                self._mark_stale(future.pop(next(iter(future))).job_id)
            return
        if self.prev is None:
            raise MiningJobError(f"job {job.job_id} is not a future job, but there is no prev hash to mine it on")
        job.bind(self.prev)
        job.state = JobState.ACTIVE
        self._retire_active()
        self.active = job

    def activate(self, job_id: int, prev: PrevHash) -> ChannelJob:
        """SetNewPrevHash: the future job becomes active; everything before it is stale."""
        job = self._future.pop(job_id, None)
        if job is None:
            raise MiningJobError(f"no future job {job_id} to activate on this channel")
        self._switch(job, prev)
        return job

    def start(self, job: ChannelJob, prev: PrevHash) -> None:
        """A future job and the prev hash that activates it at once (a new tip): :meth:`add`
        then :meth:`activate`, without parking the job among the future ones in between."""
        if not job.work.future:
            raise MiningJobError(f"job {job.job_id} is not a future job: a new prev hash cannot start it")
        self._switch(job, prev)

    def _switch(self, job: ChannelJob, prev: PrevHash) -> None:
        """``job`` becomes active on ``prev``; every other job is stale."""
        active = self.active
        if active is not None:
            self._mark_stale(active.job_id)
        if self._past:
            for old_id in self._past:
                self._mark_stale(old_id)
            self._past.clear()
        if self._future:
            for old_id in self._future:
                self._mark_stale(old_id)
            self._future.clear()
        job.prev = prev
        job.network_target = prev.network_target
        job.state = JobState.ACTIVE
        self.prev = prev
        self.active = job

    def retire_all(self) -> None:
        """Every job is stale and there is no prev hash: the work's source is gone."""
        for old in (self.active, *self._past.values(), *self._future.values()):
            if old is not None:
                self._mark_stale(old.job_id)
        self._past.clear()
        self._future.clear()
        self.active = None
        self.prev = None

    def lookup(self, job_id: int) -> ChannelJob | _Marker | None:
        """What a share for ``job_id`` meets.

        The job itself when it accepts shares (active or past), :data:`STALE` when a new prev
        hash overtook it, :data:`NOT_ACTIVE` when it is a future job not activated yet, and
        None when this channel never had it (or forgot it long ago).
        """
        active = self.active
        if active is not None and active.job_id == job_id:
            return active
        job = self._past.get(job_id)
        if job is not None:
            return job
        if job_id in self._stale:
            return STALE
        if job_id in self._future:
            return NOT_ACTIVE
        return None

    def has_future(self, job_id: int) -> bool:
        """Whether ``job_id`` waits here for its SetNewPrevHash."""
        return job_id in self._future

    def future_jobs(self) -> list[ChannelJob]:
        """Jobs still waiting for their prev hash (SetTarget applies to them too)."""
        return list(self._future.values())

    def _retire_active(self) -> None:
        active = self.active
        if active is None:
            return
        active.state = JobState.PAST
        self._past[active.job_id] = active
        while len(self._past) > self._max_past:
            job_id, _ = self._past.popitem(last=False)
            self._mark_stale(job_id)

    def _mark_stale(self, job_id: int) -> None:
        self._stale[job_id] = None
        while len(self._stale) > self._max_stale:
            self._stale.popitem(last=False)


class _Marker:
    """A named marker returned by :meth:`JobStore.lookup` instead of a job."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


STALE = _Marker("STALE")
NOT_ACTIVE = _Marker("NOT_ACTIVE")
