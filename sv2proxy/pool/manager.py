"""The channel manager: every live channel, the current work, and what to tell whom.

Sans-IO: each call takes the request and ``now`` and returns the messages to send as
``(owner, message)`` pairs, where ``owner`` is whatever the caller uses for a connection.  The
miner server (Stratum V2 and, later, V1) and the job sources only move these messages.

Lifecycle rules (PROTOCOL.md §6): a channel opened while work exists first gets that work as a
future job and then the SetNewPrevHash that activates it; new work goes to every channel; a new
prev hash activates the matching future job everywhere; a share is checked by
:func:`~sv2proxy.pool.validation.validate_share`, counted by the channel's
:class:`~sv2proxy.pool.accounting.ShareAccounting` and steers its
:class:`~sv2proxy.pool.vardiff.Vardiff`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Protocol as TypingProtocol

from sv2proxy.bitcoin.target import target_to_difficulty, target_to_u256, u256_to_target
from sv2proxy.codec.constants import (
    ERROR_INVALID_CHANNEL_ID,
    ERROR_INVALID_NOMINAL_HASHRATE,
    ERROR_INVALID_USER_IDENTITY,
    ERROR_MAX_TARGET_OUT_OF_RANGE,
    ERROR_MIN_EXTRANONCE_SIZE_TOO_LARGE,
)
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import (
    CloseChannel,
    NewExtendedMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
    SetExtranoncePrefix,
    SetNewPrevHash,
    SetTarget,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSharesStandard,
    UpdateChannel,
    UpdateChannelError,
)
from sv2proxy.errors import MiningJobError, PoolError, ProtocolError
from sv2proxy.pool.accounting import ShareAccounting
from sv2proxy.pool.channel import Channel, ChannelKind
from sv2proxy.pool.extranonce import ERROR_CAPACITY_EXHAUSTED, ExtranonceAllocator, ExtranonceLayout
from sv2proxy.pool.jobs import DEFAULT_MAX_PAST_JOBS, PrevHash, Work
from sv2proxy.pool.validation import ShareResult, validate_share
from sv2proxy.pool.vardiff import Vardiff, VardiffConfig, initial_difficulty_for

Owner = Hashable
#: Future work waiting for its prev hash, at most (the oldest is forgotten first).
MAX_PENDING_FUTURE_WORK = 64
#: CloseChannel reason when a new upstream's extranonce space leaves a miner too few bytes.
ERROR_EXTRANONCE_SPACE_CHANGED = "extranonce-space-changed"
#: What a user_identity may not hold: C0 controls and DEL (answered invalid-user-identity).
_CONTROL = re.compile("[\x00-\x1f\x7f]")
Outgoing = tuple[Owner, Message]
#: Builds the variant of a unit of work whose coinbase pays ``payout`` in full (solo pools).
WorkVariant = Callable[[bytes], Work]


class ChannelWatcher(TypingProtocol):
    """Who must hear of every channel opened and closed (per-miner proxy mode's upstream)."""

    def miner_channel_opened(self, channel: Channel) -> None: ...

    def miner_channel_closed(self, channel_id: int) -> None: ...


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """How the pool treats channels; one instance per daemon."""

    layout: ExtranonceLayout = field(default_factory=lambda: ExtranonceLayout(total_size=16, local_size=4))
    vardiff: VardiffConfig = field(default_factory=VardiffConfig)
    max_past_jobs: int = DEFAULT_MAX_PAST_JOBS
    share_batch_size: int = 10
    share_batch_window: float = 1.0
    max_channels_per_owner: int = 256
    #: Solo pool: the script a username pays (ValueError: not an acceptable address), or None
    #: when every channel mines for the pool's payout.
    payout_for: Callable[[str], bytes] | None = None


@dataclass(slots=True)
class _Current:
    """The work every newly opened channel must start from."""

    job_id: int
    work: Work
    prev: PrevHash | None
    variant: WorkVariant | None = None


class ChannelManager:
    """All channels of the process and the work they mine."""

    def __init__(self, settings: PoolSettings | None = None) -> None:
        self.settings = settings or PoolSettings()
        self.channels: dict[int, Channel] = {}
        self._extranonce = ExtranonceAllocator(self.settings.layout)
        self._owners: dict[int, Owner] = {}
        self._by_owner: dict[Owner, set[int]] = {}
        # Extranonce values set aside for connections whose channel is not open yet.
        self._reserved: dict[Owner, set[int]] = {}
        # Each connection that can take extended jobs has one group holding all its channels.
        self._groups: dict[Owner, int] = {}
        self._vardiff: dict[int, Vardiff] = {}
        self._accounting: dict[int, ShareAccounting] = {}
        self._next_channel_id = 1
        self._next_job_id = 1
        # source id (template id / upstream job id) -> pool job id, for prev-hash activation.
        self._jobs_by_source: dict[int, tuple[int, Work, WorkVariant | None]] = {}
        self._current: _Current | None = None
        self._prev: PrevHash | None = None
        # Channels whose work is their own (per-miner proxy mode): source id -> job id of the
        # future work waiting for that channel's prev hash.
        self._channel_work: dict[int, dict[int, int]] = {}
        self.watcher: ChannelWatcher | None = None

    # -- channels ---------------------------------------------------------------------------

    def open_standard(
        self, owner: Owner, request: OpenStandardMiningChannel, now: float, grouped: bool = True
    ) -> list[Outgoing]:
        """OpenStandardMiningChannel: Success then the current job, or OpenMiningChannel.Error.

        ``grouped`` False for a connection that asked for standard jobs only (no group channel
        may be used with it).
        """
        return self._open(owner, request, ChannelKind.STANDARD, now, grouped)

    def open_extended(
        self,
        owner: Owner,
        request: OpenExtendedMiningChannel,
        now: float,
        grouped: bool = True,
        rollable_size: int | None = None,
        reserved: int | None = None,
        difficulty: float | None = None,
    ) -> list[Outgoing]:
        """OpenExtendedMiningChannel: Success then the current job, or OpenMiningChannel.Error.

        The miner rolls ``rollable_size`` bytes (default: all the layout leaves after the
        prefix; a Stratum V1 miner: its extranonce2 size).  ``reserved`` is an extranonce value
        :meth:`reserve` set aside for ``owner`` earlier; ``difficulty`` the one to start at
        (default: from the nominal hash rate).
        """
        available = self._extranonce.layout.rollable_size
        size = available if rollable_size is None else rollable_size
        if request.min_extranonce_size > size or size > available:
            return [(owner, OpenMiningChannelError(request.request_id, ERROR_MIN_EXTRANONCE_SIZE_TOO_LARGE))]
        return self._open(owner, request, ChannelKind.EXTENDED, now, grouped, size, reserved, difficulty)

    def reserve(self, owner: Owner) -> int:
        """Set an extranonce value aside for ``owner`` before its channel opens; PoolError when full.

        A Stratum V1 miner learns its extranonce1 at ``mining.subscribe`` but names its user
        (and so, in a solo pool, its payout) only at ``mining.authorize``.
        """
        value = self._extranonce.allocate()
        self._reserved.setdefault(owner, set()).add(value)
        return value

    def prefix_for(self, value: int, rollable_size: int) -> bytes:
        """The extranonce prefix a channel with ``value`` gets when its miner rolls ``rollable_size`` bytes."""
        return self._extranonce.prefix(value, rollable_size)

    def _open(
        self,
        owner: Owner,
        request: OpenStandardMiningChannel | OpenExtendedMiningChannel,
        kind: ChannelKind,
        now: float,
        grouped: bool = True,
        rollable_size: int = 0,
        reserved: int | None = None,
        difficulty: float | None = None,
    ) -> list[Outgoing]:
        refuse = request.request_id
        if reserved is not None and reserved not in self._reserved.get(owner, ()):
            raise PoolError(f"extranonce value {reserved} is not reserved for this connection")
        if len(self._by_owner.get(owner, ())) >= self.settings.max_channels_per_owner:
            return [(owner, OpenMiningChannelError(refuse, ERROR_CAPACITY_EXHAUSTED))]
        if _CONTROL.search(request.user_identity):
            # It names the worker in logs, the API and the store (whose PostgreSQL text takes no NUL).
            return [(owner, OpenMiningChannelError(refuse, ERROR_INVALID_USER_IDENTITY))]
        payout = None
        if self.settings.payout_for is not None:
            try:
                payout = self.settings.payout_for(request.user_identity)
            except ValueError:
                return [(owner, OpenMiningChannelError(refuse, ERROR_INVALID_USER_IDENTITY))]
        hash_rate = request.nominal_hash_rate
        if not (math.isfinite(hash_rate) and hash_rate >= 0):
            return [(owner, OpenMiningChannelError(refuse, ERROR_INVALID_NOMINAL_HASHRATE))]
        max_target = u256_to_target(request.max_target)
        config = self.settings.vardiff
        if max_target == 0:
            return [(owner, OpenMiningChannelError(refuse, ERROR_MAX_TARGET_OUT_OF_RANGE))]
        try:
            # Raises max-target-out-of-range when the miner's easiest acceptable target is
            # harder than any difficulty we would set.
            vardiff = Vardiff(
                config,
                difficulty or initial_difficulty_for(hash_rate, config.shares_per_minute, config),
                now,
                max_target=max_target,
            )
        except ProtocolError as e:
            return [(owner, OpenMiningChannelError(refuse, e.error_code or ERROR_MAX_TARGET_OUT_OF_RANGE))]
        if reserved is not None:
            value = reserved
            self._unreserve(owner, value)
        else:
            try:
                value = self._extranonce.allocate()
            except PoolError:
                return [(owner, OpenMiningChannelError(refuse, ERROR_CAPACITY_EXHAUSTED))]

        standard = kind is ChannelKind.STANDARD
        # Groups hold a connection's extended channels: a group broadcast of an extended job
        # applies to every member, and a standard member already has its own NewMiningJob
        # (announcing one job id twice on a channel is not allowed), so standard channels and
        # channels of standard-jobs-only connections stay out of groups.
        # A solo channel's coinbase is its own, so its jobs can never be a group's either.
        in_group = grouped and not standard and payout is None
        if in_group and owner not in self._groups:
            # Group ids share the channel id space (SPEC 05 §5.2), so they come from the same counter.
            self._groups[owner] = self._new_channel_id()
        channel_id = self._new_channel_id()
        allocator = self._extranonce
        prefix = allocator.prefix(value, rollable_size)
        channel = Channel(
            channel_id,
            kind,
            request.user_identity,
            hash_rate,
            value,
            prefix,
            rollable_size,
            vardiff.target,
            max_target,
            group_channel_id=self._groups[owner] if in_group else 0,
            max_past_jobs=self.settings.max_past_jobs,
        )
        channel.payout = payout
        self.channels[channel_id] = channel
        self._owners[channel_id] = owner
        self._by_owner.setdefault(owner, set()).add(channel_id)
        self._vardiff[channel_id] = vardiff
        self._accounting[channel_id] = ShareAccounting(
            channel_id, self.settings.share_batch_size, self.settings.share_batch_window, now
        )
        if self.watcher is not None:
            self.watcher.miner_channel_opened(channel)
        target = target_to_u256(channel.target)
        success: Message
        if standard:
            success = OpenStandardMiningChannelSuccess(refuse, channel_id, target, prefix, channel.group_channel_id)
        else:
            success = OpenExtendedMiningChannelSuccess(
                refuse, channel_id, target, channel.rollable_size, prefix, channel.group_channel_id
            )
        return [(owner, success), *self._catch_up(channel, owner)]

    def _catch_up(self, channel: Channel, owner: Owner) -> Iterator[Outgoing]:
        """A new channel's first job: the current work as a future job, then its prev hash."""
        current = self._current
        if current is None or current.prev is None:
            return
        work = self._work_of(channel, current.work, current.variant, {})
        job = channel.add_job(current.job_id, dataclasses.replace(work, future=True))
        yield owner, channel.job_message(job)
        channel.activate(current.job_id, current.prev)
        yield owner, channel.prev_hash_message(job)

    def close(self, channel_id: int) -> None:
        """Forget a channel and free its extranonce prefix."""
        channel = self.channels.pop(channel_id, None)
        if channel is None:
            return
        self._extranonce.release(channel.extranonce_value)
        owner = self._owners.pop(channel_id)
        owned = self._by_owner.get(owner)
        if owned is not None:
            owned.discard(channel_id)
            if not owned:
                del self._by_owner[owner]
            if not any(self.channels[cid].group_channel_id for cid in owned or ()):
                self._groups.pop(owner, None)
        del self._vardiff[channel_id], self._accounting[channel_id]
        self._channel_work.pop(channel_id, None)
        if self.watcher is not None:
            self.watcher.miner_channel_closed(channel_id)

    def close_group(self, owner: Owner, group_channel_id: int) -> list[int]:
        """CloseChannel on a group id closes every member channel (SPEC 05 §5.3.9); their ids."""
        members = sorted(
            cid for cid in self._by_owner.get(owner, ()) if self.channels[cid].group_channel_id == group_channel_id
        )
        for channel_id in members:
            self.close(channel_id)
        return members

    def _unreserve(self, owner: Owner, value: int) -> None:
        reserved = self._reserved.get(owner)
        if reserved is not None:
            reserved.discard(value)
            if not reserved:
                del self._reserved[owner]

    def owners(self) -> list[Owner]:
        """Every connection with at least one open channel, in the order they first opened one."""
        return [owner for owner, channels in self._by_owner.items() if channels]

    def close_owner(self, owner: Owner) -> list[int]:
        """Close every channel of a connection that went away (and free its reservations); their ids."""
        for value in self._reserved.pop(owner, ()):
            self._extranonce.release(value)
        gone = sorted(self._by_owner.get(owner, ()))
        for channel_id in gone:
            self.close(channel_id)
        return gone

    def rebase(self, fixed: bytes, total_size: int) -> list[Outgoing]:
        """A new extranonce space: ``fixed`` bytes first, ``total_size`` bytes in all.

        In proxy mode these come from the upstream channel, and change when the daemon fails
        over to another pool.  Every channel keeps its local bytes and the number of bytes its
        miner rolls and is told its new prefix with SetExtranoncePrefix (it applies to jobs sent
        after it); a channel whose miner rolls more than the new space leaves is closed.
        PoolError when the space cannot even hold the per-channel bytes.
        """
        local_size = self._extranonce.layout.local_size
        try:
            layout = ExtranonceLayout(total_size, local_size, fixed)
        except ValueError as e:
            raise PoolError(
                f"cannot use an extranonce space of {total_size} bytes after a {len(fixed)}-byte prefix: {e}"
            ) from None
        self._extranonce.rebase(layout)
        out: list[Outgoing] = []
        for channel_id, channel in list(self.channels.items()):
            owner = self._owners[channel_id]
            try:
                prefix = self._extranonce.prefix(channel.extranonce_value, channel.rollable_size)
            except ValueError:
                self.close(channel_id)
                out.append((owner, CloseChannel(channel_id, ERROR_EXTRANONCE_SPACE_CHANGED)))
                continue
            if prefix != channel.extranonce_prefix:
                channel.extranonce_prefix = prefix
                out.append((owner, SetExtranoncePrefix(channel_id, prefix)))
        return out

    @property
    def extranonce_size(self) -> int:
        """Bytes of extranonce the channels share out (prefixes plus what miners roll)."""
        return self._extranonce.layout.total_size

    def total_hash_rate(self) -> float:
        """H/s all channels together do, as their shares say (what an upstream is told)."""
        return sum(vardiff.estimated_hash_rate for vardiff in self._vardiff.values())

    def update_channel(self, owner: Owner, request: UpdateChannel, now: float) -> list[Outgoing]:
        """UpdateChannel: a lower maximum_target is honoured at once; answered with SetTarget."""
        channel = self._owned(owner, request.channel_id)
        if channel is None:
            return [(owner, UpdateChannelError(request.channel_id, ERROR_INVALID_CHANNEL_ID))]
        max_target = u256_to_target(request.maximum_target)
        if max_target == 0:
            return [(owner, UpdateChannelError(request.channel_id, ERROR_MAX_TARGET_OUT_OF_RANGE))]
        if not (math.isfinite(request.nominal_hash_rate) and request.nominal_hash_rate >= 0):
            return [(owner, UpdateChannelError(request.channel_id, ERROR_INVALID_NOMINAL_HASHRATE))]
        vardiff = self._vardiff[channel.channel_id]
        try:
            vardiff.set_max_target(max_target)
            vardiff.update_nominal_hash_rate(request.nominal_hash_rate, now)
        except ProtocolError as e:
            return [(owner, UpdateChannelError(request.channel_id, e.error_code or ERROR_INVALID_NOMINAL_HASHRATE))]
        channel.max_target = max_target
        channel.set_target(vardiff.target)
        return [(owner, SetTarget(channel.channel_id, target_to_u256(vardiff.target)))]

    def owner_of(self, channel_id: int) -> Owner | None:
        """The connection a channel belongs to."""
        return self._owners.get(channel_id)

    def _owned(self, owner: Owner, channel_id: int) -> Channel | None:
        if self._owners.get(channel_id) != owner:
            return None
        return self.channels.get(channel_id)

    def _new_channel_id(self) -> int:
        # Ids are never reused while the process lives (a U32 lasts far longer than any uptime).
        channel_id = self._next_channel_id
        self._next_channel_id += 1
        return channel_id

    # -- work -------------------------------------------------------------------------------

    def new_work(self, work: Work, variant: WorkVariant | None = None) -> tuple[int, list[Outgoing]]:
        """Give ``work`` to every channel; its pool-wide job id and the job messages.

        ``variant(payout)`` builds the same work paying a solo-pool channel's own script.
        """
        return self._new_work(work, variant, variant)

    def _new_work(
        self, work: Work, variant: WorkVariant | None, origin: WorkVariant | None
    ) -> tuple[int, list[Outgoing]]:
        # ``origin`` is the template's own variant, kept as the current one: keepalives wrap it,
        # never a previous keepalive's wrapper (which would nest without end on a quiet chain).
        if not work.future and self._prev is None:
            raise MiningJobError("work that is not future needs a prev hash first")
        job_id = self._next_job_id
        self._next_job_id += 1
        if work.future:
            # Only future work is ever activated by source id; a source announcing future work
            # without ever activating it must not grow this without end.
            pending = self._jobs_by_source
            pending[work.source_id] = (job_id, work, origin)
            while len(pending) > MAX_PENDING_FUTURE_WORK:
                del pending[next(iter(pending))]
        if not work.future:
            self._current = _Current(job_id, work, self._prev, origin)
        out: list[Outgoing] = []
        variants: dict[bytes, Work] = {}
        for owner, channels in self._owned_channels():
            out += self._jobs_for(owner, channels, job_id, work, variant, variants)
        return job_id, out

    def new_tip(self, work: Work, prev: PrevHash, variant: WorkVariant | None = None) -> tuple[int, list[Outgoing]]:
        """Future ``work`` and the prev hash that activates it, connection by connection.

        The same messages as :meth:`new_work` then :meth:`new_prev_hash`, but each connection
        gets its jobs and its SetNewPrevHash together: the first miner starts on the new block
        after one connection's worth of work, not after every connection's jobs went out.
        """
        if not work.future:
            raise MiningJobError("a new tip needs future work")
        job_id = self._next_job_id
        self._next_job_id += 1
        self._jobs_by_source = {work.source_id: (job_id, work, variant)}
        self._prev = prev
        self._current = _Current(job_id, work, prev, variant)
        out: list[Outgoing] = []
        append = out.append
        variants: dict[bytes, Work] = {}
        # Every group's job and SetNewPrevHash differ only in the group id.
        job_fields = (
            job_id,
            None,
            work.version,
            work.version_rolling_allowed,
            work.merkle_path,
            work.coinbase_prefix,
            work.coinbase_suffix,
        )
        prev_fields = (job_id, prev.prev_hash, prev.min_ntime, prev.nbits)
        by_id = self.channels
        for owner, channel_ids in self._by_owner.items():
            if len(channel_ids) == 1:
                (channel_id,) = channel_ids
                channel = by_id[channel_id]
                group = channel.group_channel_id
                if group and channel.payout is None:
                    # The usual connection: one extended channel, alone in its group.
                    channel.start_job(job_id, work, prev)
                    append((owner, NewExtendedMiningJob(group, *job_fields)))
                    append((owner, SetNewPrevHash(group, *prev_fields)))
                    continue
            channels = [by_id[channel_id] for channel_id in sorted(channel_ids)]
            # Jobs first (a group's once), then the SetNewPrevHash of each channel not in the
            # group, then the group's: the order of new_work followed by new_prev_hash.
            group = 0
            activations: list[Outgoing] = []
            for channel in channels:
                job = channel.start_job(job_id, self._work_of(channel, work, variant, variants), prev)
                if not channel.group_channel_id:
                    append((owner, channel.job_message(job)))
                    activations.append((owner, channel.prev_hash_message(job)))
                elif not group:
                    group = channel.group_channel_id
                    append((owner, NewExtendedMiningJob(group, *job_fields)))
            out += activations
            if group:
                append((owner, SetNewPrevHash(group, *prev_fields)))
        return job_id, out

    def refresh_work(self, now: float) -> tuple[int, list[Outgoing]] | None:
        """Re-issue the current work as a new job with a fresh ntime (a keepalive), if any.

        Miners that see no new job for a couple of minutes assume the pool is gone and
        reconnect; on a quiet chain with an unchanged mempool that is exactly what happens
        unless the pool sends fresh work (FIELD-NOTES.md).  Channels with work of their own
        (per-miner proxy mode) each get theirs again.
        """
        current = self._current
        if current is None or current.prev is None:
            return self._refresh_own_works(now)
        ntime = max(int(now), current.prev.min_ntime)
        variant = current.variant
        fresh_variant: WorkVariant | None = None
        if variant is not None:

            def fresh_variant(payout: bytes) -> Work:
                return dataclasses.replace(variant(payout), future=False, min_ntime=ntime)

        return self._new_work(dataclasses.replace(current.work, future=False, min_ntime=ntime), fresh_variant, variant)

    def refresh_channel(self, owner: Owner, channel_id: int, now: float) -> list[Outgoing]:
        """The current work again, for one channel only, as a new job with a fresh ntime.

        A Stratum V1 miner applies a new difficulty to the next job it gets; this is that job,
        made with the channel's new target (its older jobs keep theirs, so shares in flight are
        judged by what the miner was told).
        """
        channel = self._owned(owner, channel_id)
        if channel is not None and channel_id in self._channel_work:
            return self._refresh_own_work(owner, channel, now)
        current = self._current
        if channel is None or current is None or current.prev is None or channel.jobs.active is None:
            return []
        job_id = self._next_job_id
        self._next_job_id += 1
        ntime = max(int(now), current.prev.min_ntime)
        work = self._work_of(channel, current.work, current.variant, {})
        job = channel.add_job(job_id, dataclasses.replace(work, future=False, min_ntime=ntime))
        return [(owner, channel.job_message(job))]

    def drop_work(self) -> None:
        """The job source lost its work (an upstream pool went away): every job is stale now.

        Shares for those jobs are answered ``stale-share``; channels opened from now on get no
        job until the next work and prev hash arrive.
        """
        self._current = None
        self._prev = None
        self._jobs_by_source = {}
        self._channel_work.clear()
        for channel in self.channels.values():
            channel.jobs.retire_all()
            channel.seen.clear()

    def new_prev_hash(self, source_id: int, prev: PrevHash) -> list[Outgoing]:
        """A new chain tip activating the future work ``source_id`` on every channel."""
        entry = self._jobs_by_source.get(source_id)
        if entry is None or not entry[1].future:
            raise MiningJobError(f"no future work {source_id} to activate")
        job_id, work, variant = entry
        self._prev = prev
        self._current = _Current(job_id, work, prev, variant)
        # Work for older tips can never be activated again.
        self._jobs_by_source = {source_id: entry}
        out: list[Outgoing] = []
        variants: dict[bytes, Work] = {}
        for owner, channels in self._owned_channels():
            # Channels opened after the work was announced get their job first.
            missing = [channel for channel in channels if not channel.jobs.has_future(job_id)]
            out += self._jobs_for(owner, missing, job_id, work, variant, variants, grouped=False)
            out += self._activate(owner, channels, job_id, prev)
        return out

    # -- work of one channel (per-miner proxy mode: each miner's comes from its own upstream) --

    def new_channel_work(self, channel_id: int, work: Work) -> tuple[int, list[Outgoing]]:
        """Give ``work`` to channel ``channel_id`` alone; its job id and the job message.

        Future work waits for :meth:`new_channel_prev_hash`; other work needs the channel's
        prev hash.  MiningJobError for an unknown channel or work it cannot take.
        """
        channel = self.channels.get(channel_id)
        if channel is None:
            raise MiningJobError(f"no channel {channel_id} for its own work")
        job_id = self._next_job_id
        self._next_job_id += 1
        job = channel.add_job(job_id, work)
        pending = self._channel_work.setdefault(channel_id, {})
        if work.future:
            pending[work.source_id] = job_id
            while len(pending) > MAX_PENDING_FUTURE_WORK:
                del pending[next(iter(pending))]
        # To the channel itself, never to its group: the other members' work is their own.
        return job_id, [(self._owners[channel_id], channel.job_message(job))]

    def new_channel_prev_hash(self, channel_id: int, source_id: int, prev: PrevHash) -> list[Outgoing]:
        """A new chain tip activating channel ``channel_id``'s future work ``source_id``."""
        channel = self.channels.get(channel_id)
        job_id = self._channel_work.get(channel_id, {}).get(source_id)
        if channel is None or job_id is None or not channel.jobs.has_future(job_id):
            raise MiningJobError(f"no future work {source_id} to activate on channel {channel_id}")
        self._channel_work[channel_id] = {}
        job = channel.activate(job_id, prev)
        return [(self._owners[channel_id], channel.prev_hash_message(job))]

    def drop_channel_work(self, channel_id: int) -> None:
        """Channel ``channel_id``'s own work is gone: its jobs are stale (shares answered so)."""
        channel = self.channels.get(channel_id)
        if channel is None:
            return
        self._channel_work[channel_id] = {}
        channel.jobs.retire_all()
        channel.seen.clear()

    def _refresh_own_work(self, owner: Owner, channel: Channel, now: float) -> list[Outgoing]:
        active = channel.jobs.active
        if active is None or active.prev is None:
            return []
        job_id = self._next_job_id
        self._next_job_id += 1
        ntime = max(int(now), active.prev.min_ntime)
        job = channel.add_job(job_id, dataclasses.replace(active.work, future=False, min_ntime=ntime))
        return [(owner, channel.job_message(job))]

    def _refresh_own_works(self, now: float) -> tuple[int, list[Outgoing]] | None:
        """Keepalives for the channels with work of their own; the last job id, if any."""
        out: list[Outgoing] = []
        for channel_id in self._channel_work:
            out += self._refresh_own_work(self._owners[channel_id], self.channels[channel_id], now)
        # Each refreshed channel took the next job id: the last one is the newest.
        return (self._next_job_id - 1, out) if out else None

    def hash_rate_of(self, channel_id: int) -> float:
        """H/s one channel does, as its shares say (0 for an unknown channel)."""
        vardiff = self._vardiff.get(channel_id)
        return vardiff.estimated_hash_rate if vardiff is not None else 0.0

    def _owned_channels(self) -> Iterator[tuple[Owner, list[Channel]]]:
        for owner, channel_ids in self._by_owner.items():
            yield owner, [self.channels[cid] for cid in sorted(channel_ids)]

    @staticmethod
    def _work_of(channel: Channel, work: Work, variant: WorkVariant | None, variants: dict[bytes, Work]) -> Work:
        """The work ``channel`` mines: ``work``, or its variant paying the channel's own script."""
        payout = channel.payout
        if payout is None or variant is None:
            return work
        mine = variants.get(payout)
        if mine is None:
            mine = variants[payout] = variant(payout)
        return mine

    def _jobs_for(
        self,
        owner: Owner,
        channels: list[Channel],
        job_id: int,
        work: Work,
        variant: WorkVariant | None,
        variants: dict[bytes, Work],
        grouped: bool = True,
    ) -> list[Outgoing]:
        """Add the job to ``channels``; the messages announcing it to their connection.

        Standard and solo channels get their own job message (their coinbase or merkle root is
        their own).  The extended channels of a group, which all mine the pool's work, share one
        NewExtendedMiningJob sent to the group id.
        """
        out: list[Outgoing] = []
        group_sent = False
        for channel in channels:
            job = channel.add_job(job_id, self._work_of(channel, work, variant, variants))
            group = channel.group_channel_id if grouped else 0
            if not group:
                out.append((owner, channel.job_message(job)))
            elif not group_sent:
                out.append((owner, channel.job_message(job, to=group)))
                group_sent = True
        return out

    def _activate(self, owner: Owner, channels: list[Channel], job_id: int, prev: PrevHash) -> list[Outgoing]:
        """Activate ``job_id`` on ``channels``: one SetNewPrevHash to their group, or one each."""
        out: list[Outgoing] = []
        group = 0
        for channel in channels:
            job = channel.activate(job_id, prev)
            if channel.group_channel_id:
                group = channel.group_channel_id
            else:
                out.append((owner, channel.prev_hash_message(job)))
        if group:
            out.append((owner, SetNewPrevHash(group, job_id, prev.prev_hash, prev.min_ntime, prev.nbits)))
        return out

    # -- shares -----------------------------------------------------------------------------

    def submit(
        self, owner: Owner, share: SubmitSharesStandard | SubmitSharesExtended, now: float
    ) -> tuple[list[Outgoing], ShareResult | None]:
        """Judge a share; the answer to send (if any now) and the result (None: unknown channel)."""
        channel = self._owned(owner, share.channel_id)
        if channel is None:
            return [(owner, SubmitSharesError(share.channel_id, share.sequence_number, ERROR_INVALID_CHANNEL_ID))], None
        extranonce = share.extranonce if isinstance(share, SubmitSharesExtended) else None
        result = validate_share(channel, share.job_id, share.nonce, share.ntime, share.version, extranonce, now)
        if result.error_code is not None:
            return [(owner, SubmitSharesError(share.channel_id, share.sequence_number, result.error_code))], result
        job = result.job
        assert job is not None
        difficulty = target_to_difficulty(job.target)
        self._vardiff[channel.channel_id].on_share(now, difficulty)
        success = self._accounting[channel.channel_id].accept(
            share.sequence_number, difficulty, now, is_block=result.is_block
        )
        return ([(owner, success)] if success is not None else []), result

    def set_difficulty(self, difficulty: float, now: float, channel_id: int | None = None) -> list[Outgoing]:
        """Retarget one channel (or every channel) to ``difficulty``; the SetTargets to send."""
        out: list[Outgoing] = []
        for cid in (channel_id,) if channel_id is not None else tuple(self.channels):
            channel = self.channels.get(cid)
            if channel is None:
                continue
            vardiff = self._vardiff[cid]
            if vardiff.set_difficulty(difficulty, now) is not None:
                channel.set_target(vardiff.target)
                out.append((self._owners[cid], SetTarget(cid, target_to_u256(vardiff.target))))
        return out

    def flush_all(self, now: float) -> list[Outgoing]:
        """Every pending Success now, whatever the window (shutdown, connection close)."""
        out: list[Outgoing] = []
        for channel_id, accounting in self._accounting.items():
            success = accounting.flush(now)
            if success is not None:
                out.append((self._owners[channel_id], success))
        return out

    def tick(self, now: float) -> list[Outgoing]:
        """Timer work: Success batches whose window closed, and vardiff retargets."""
        out: list[Outgoing] = []
        for channel_id, channel in self.channels.items():
            owner = self._owners[channel_id]
            accounting = self._accounting[channel_id]
            if accounting.due(now):
                success = accounting.flush(now)
                if success is not None:
                    out.append((owner, success))
            vardiff = self._vardiff[channel_id]
            if channel.jobs.active is None:
                # No work to mine (the node is warming up or unreachable): silence says nothing
                # about the miner's speed.
                vardiff.pause(now)
                continue
            if vardiff.evaluate(now) is not None:
                channel.set_target(vardiff.target)
                out.append((owner, SetTarget(channel_id, target_to_u256(vardiff.target))))
        return out
