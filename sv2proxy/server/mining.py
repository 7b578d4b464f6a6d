"""The mining service: the channel manager at work inside the daemon.

It owns the :class:`~sv2proxy.pool.manager.ChannelManager`, delivers its ``(owner, message)``
pairs to the connections that own the channels, runs the timer that flushes Success batches and
evaluates vardiff (from the injected clock), and publishes the events of SEED-API.md.  Job
sources (a node's templates, an upstream pool) give it work through :meth:`new_work` and
:meth:`new_prev_hash`.
"""

from __future__ import annotations

import dataclasses
import gc
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol as TypingProtocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from sv2proxy.bitcoin.address import Network, script_for_address
from sv2proxy.bitcoin.hashing import display_hex
from sv2proxy.bitcoin.target import target_to_difficulty
from sv2proxy.codec.common import Reconnect
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import (
    CloseChannel,
    OpenExtendedMiningChannel,
    OpenStandardMiningChannel,
    SubmitSharesExtended,
    SubmitSharesStandard,
    SubmitSharesSuccess,
    UpdateChannel,
)
from sv2proxy.config import MiningConfig
from sv2proxy.events import BlockMined, EventBus, MiningDifficultyChanged, MiningJobCreated, ShareSubmitted
from sv2proxy.pool.channel import Channel
from sv2proxy.pool.extranonce import ExtranonceLayout
from sv2proxy.pool.jobs import ChannelJob, PrevHash, Work
from sv2proxy.pool.manager import ChannelManager, ChannelWatcher, Outgoing, PoolSettings, WorkVariant
from sv2proxy.pool.validation import ShareResult
from sv2proxy.pool.vardiff import VardiffConfig

log = Logger()

#: How often Success batches and vardiff are looked at.
TICK_INTERVAL = 0.5
#: Messages written per reactor turn.  Twisted sends what was written only when the reactor
#: runs again, so a fan-out to thousands of channels in one go would hold back even the first
#: miner's new job until the last one's was built; in chunks, the first ones leave at once.
DELIVERY_CHUNK = 256


def solo_payout(network: Network) -> Callable[[str], bytes]:
    """For a solo pool: the script a username (ADDRESS or ADDRESS.WORKER) pays; ValueError if none."""

    def payout_for(user_identity: str) -> bytes:
        address = user_identity.split(".", 1)[0].strip()
        return script_for_address(address, network)

    return payout_for


def pool_settings(
    mining: MiningConfig, payout_for: Callable[[str], bytes] | None = None, extranonce_size: int | None = None
) -> PoolSettings:
    """The pool's settings from the ``mining`` section (``extranonce_size`` overrides its own)."""
    return PoolSettings(
        payout_for=payout_for,
        layout=ExtranonceLayout(extranonce_size or mining.extranonce_size, mining.channel_prefix_size),
        vardiff=VardiffConfig(
            shares_per_minute=mining.shares_per_minute,
            min_difficulty=mining.min_difficulty,
            max_difficulty=mining.max_difficulty,
        ),
        share_batch_size=mining.share_batch_size,
        share_batch_window=mining.share_batch_window,
        max_channels_per_owner=mining.max_channels_per_connection,
    )


@dataclass(frozen=True, slots=True)
class FoundBlock:
    """Everything a job source needs to rebuild and submit a block a miner found."""

    source_id: int  # the Work's source id: a template id or an upstream job id
    extranonce: bytes  # the full extranonce: channel prefix then what the miner rolled
    version: int
    ntime: int
    nonce: int
    block_hash: bytes  # raw SHA256d of the header
    worker: str
    channel_id: int
    payout: bytes | None = None  # the solo script the coinbase pays in full, if not the pool's


@dataclass(frozen=True, slots=True)
class AcceptedShare:
    """A share the pool accepted, as a share sink (an upstream pool) needs it."""

    source_id: int  # the Work's source id: the upstream job id in proxy mode
    extranonce: bytes  # the full extranonce: channel prefix (upstream prefix first) then the rolled bytes
    version: int
    ntime: int
    nonce: int
    share_hash: bytes  # raw SHA256d of the header
    difficulty: float  # of the target the share was judged by
    worker: str
    channel_id: int
    is_block: bool = False


class ShareSink(TypingProtocol):
    """Who else must see accepted shares (the upstream pool in proxy mode)."""

    def share_accepted(self, share: AcceptedShare) -> None: ...


class BlockSink(TypingProtocol):
    """Who submits found blocks (the node job source in pool mode)."""

    def block_found(self, block: FoundBlock) -> None: ...


class ShareLedger(TypingProtocol):
    """Where accepted shares become durable (an :class:`~sv2proxy.store.IShareStore`)."""

    durable: int
    last_ticket: int

    def record_share(
        self, worker: str, channel_id: int, job_id: int, difficulty: float, at: float, is_block: bool
    ) -> int: ...

    def count_rejected(self, worker: str, reason: str) -> None: ...

    def add_durable_listener(self, listener: Callable[[int], object]) -> None: ...


class AuxSink(TypingProtocol):
    """Who turns accepted shares into aux chain blocks (merge mining, pool mode)."""

    def aux_share(
        self, job: ChannelJob, share: SubmitSharesStandard | SubmitSharesExtended, share_hash: bytes
    ) -> None: ...


class MessageSink(TypingProtocol):
    """What a channel owner must offer: somewhere to send messages."""

    def sendMessage(self, message: Message) -> None: ...  # noqa: N802


class MiningService(Service):
    """Channels, work and shares for every miner connection of the daemon."""

    name = "mining"

    def __init__(
        self,
        clock: IReactorTime,
        events: EventBus,
        settings: PoolSettings | None = None,
        keepalive_interval: float = 30.0,
    ) -> None:
        self.clock = clock
        self.events = events
        self.manager = ChannelManager(settings)
        # Proxy mode: our own extranonce space, and the upstream's bytes in front of it.
        self._extranonce_size = self.manager.extranonce_size
        self._fixed_extranonce = b""
        self.keepalive_interval = keepalive_interval
        self.block_sink: BlockSink | None = None
        self.share_sink: ShareSink | None = None
        self.aux_sink: AuxSink | None = None
        self.ledger: ShareLedger | None = None
        # Acknowledgements waiting for the ledger: (ticket, message to deliver or callback).
        self._held: deque[tuple[int, Outgoing | Callable[[], object]]] = deque()
        self._last_work_at = 0.0
        self._unsubscribe: Callable[[], None] = lambda: None
        # Everything goes out through one FIFO, so a later message never overtakes an earlier one.
        self._outbox: deque[Outgoing] = deque()
        self._flush_call: IDelayedCall | None = None
        self._flushing = False
        self._ticker = LoopingCall(self._tick)
        self._ticker.clock = clock
        #: Called with the seconds from a new tip to the last of its jobs handed to the connections.
        self.tip_observers: list[Callable[[float], object]] = []
        self._tip_at: float | None = None
        # Whether we turned Python's cyclic garbage collector off for a tip's fan-out.
        self._collector_held = False
        self._held_since = 0.0
        self._release_call: IDelayedCall | None = None
        # Messages ever queued and ever handed over, and when_delivered's waiters: each fires
        # once the handed-over count reaches what was queued when it was asked for.
        self._queued = 0
        self._handed = 0
        self._waiters: deque[tuple[int, Deferred[None]]] = deque()

    def startService(self) -> None:  # noqa: N802
        super().startService()
        self._last_work_at = self.clock.seconds()
        self._unsubscribe = self.events.subscribe(MiningDifficultyChanged, self._difficulty_changed)
        self._ticker.start(TICK_INTERVAL, now=False).addErrback(
            lambda failure: log.failure("the mining timer stopped", failure)
        )

    def stopService(self) -> None:  # noqa: N802
        if self._ticker.running:
            self._ticker.stop()
        self._unsubscribe()
        # Acknowledge what miners are owed before the connections go: everything queued leaves now
        # (what is not durable yet leaves when the store's last commit lands).
        self._deliver(self._flush_all())
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        while self._outbox:
            self._flush(schedule=False)
        self._release_collector()
        super().stopService()

    # -- from connections ----------------------------------------------------------------

    def open_channel(
        self,
        owner: MessageSink,
        request: OpenStandardMiningChannel | OpenExtendedMiningChannel,
        grouped: bool = True,
        rollable_size: int | None = None,
        reserved: int | None = None,
        difficulty: float | None = None,
    ) -> None:
        """Open a channel; ``grouped`` False for a connection that takes standard jobs only.

        Extended channels: ``rollable_size`` bytes for the miner to roll (default: all there
        are), ``reserved`` an extranonce value from :meth:`reserve_extranonce`, ``difficulty``
        the one to start at (default: from the nominal hash rate).
        """
        now = self.clock.seconds()
        if isinstance(request, OpenStandardMiningChannel):
            out = self.manager.open_standard(owner, request, now, grouped)
        else:
            out = self.manager.open_extended(owner, request, now, grouped, rollable_size, reserved, difficulty)
        self._deliver(out)

    def reserve_extranonce(self, owner: MessageSink) -> int:
        """An extranonce value set aside for ``owner``'s channel-to-be; PoolError when none is left."""
        return self.manager.reserve(owner)

    def suggest_difficulty(self, owner: MessageSink, channel_id: int, difficulty: float) -> None:
        """A miner's own difficulty wish for its channel (Stratum V1 ``mining.suggest_difficulty``)."""
        if self.manager.owner_of(channel_id) == owner:
            self._deliver(self.manager.set_difficulty(difficulty, self.clock.seconds(), channel_id))

    def refresh_channel(self, owner: MessageSink, channel_id: int) -> None:
        """Send one channel the current work as a new job (after its target changed)."""
        self._deliver(self.manager.refresh_channel(owner, channel_id, self.clock.seconds()))

    def update_channel(self, owner: MessageSink, request: UpdateChannel) -> None:
        self._deliver(self.manager.update_channel(owner, request, self.clock.seconds()))

    def close_channel(self, owner: MessageSink, channel_id: int) -> None:
        """CloseChannel from a miner: one of its channels, or its group (all the members)."""
        if self.manager.channels.get(channel_id) is not None and self.manager.owner_of(channel_id) == owner:
            self.manager.close(channel_id)
        else:
            self.manager.close_group(owner, channel_id)

    def connection_lost(self, owner: MessageSink) -> None:
        self.manager.close_owner(owner)

    def same_payout(self, channel_id: int, user_identity: str) -> bool:
        """Whether ``user_identity`` mines for what ``channel_id`` pays (always, unless a solo pool)."""
        channel = self.manager.channels.get(channel_id)
        payout_for = self.manager.settings.payout_for
        if channel is None or payout_for is None:
            return channel is not None
        try:
            return payout_for(user_identity) == channel.payout
        except ValueError:
            return False

    def submit(
        self, owner: MessageSink, share: SubmitSharesStandard | SubmitSharesExtended, worker: str | None = None
    ) -> ShareResult | None:
        """Judge a share and answer it; the result (None: not a channel of ``owner``).

        ``worker`` names who found it when several workers share a channel (Stratum V1).
        """
        now = self.clock.seconds()
        out, result = self.manager.submit(owner, share, now)
        if result is None:
            self._deliver(out)
            return None
        channel = self.manager.channels[share.channel_id]
        worker = worker or channel.user_identity
        job = result.job
        difficulty = target_to_difficulty(job.target) if job is not None else 0.0
        ledger = self.ledger
        if ledger is not None:
            # Before the Success that may be in ``out``: it is held until this share is durable.
            if result.accepted:
                ledger.record_share(worker, share.channel_id, share.job_id, difficulty, now, result.is_block)
            else:
                ledger.count_rejected(worker, result.error_code or "rejected")
        self._deliver(out)
        self.events.publish(
            ShareSubmitted(
                channel_id=share.channel_id,
                job_id=share.job_id,
                worker=worker,
                difficulty=difficulty,
                accepted=result.accepted,
                error_code=result.error_code,
                is_block=result.is_block,
            )
        )
        if result.accepted and job is not None and self.share_sink is not None:
            rolled = share.extranonce if isinstance(share, SubmitSharesExtended) else b""
            accepted = AcceptedShare(
                job.work.source_id,
                job.work.fixed_extranonce + job.extranonce_prefix + rolled,
                share.version,
                share.ntime,
                share.nonce,
                result.hash,
                difficulty,
                worker,
                share.channel_id,
                result.is_block,
            )
            try:
                self.share_sink.share_accepted(accepted)
            except Exception:
                log.failure("the share sink failed on a share of channel {channel_id}", channel_id=share.channel_id)
        if result.accepted and job is not None and self.aux_sink is not None:
            try:
                self.aux_sink.aux_share(job, share, result.hash)
            except Exception:
                log.failure("merge mining failed on a share of channel {channel_id}", channel_id=share.channel_id)
        if result.is_block and job is not None:
            self._block_found(worker, share, job.extranonce_prefix, result.hash, job.work.source_id, job.work.payout)
        return result

    def _block_found(
        self,
        worker: str,
        share: SubmitSharesStandard | SubmitSharesExtended,
        prefix: bytes,
        block_hash: bytes,
        source_id: int,
        payout: bytes | None = None,
    ) -> None:
        rolled = share.extranonce if isinstance(share, SubmitSharesExtended) else b""
        found = FoundBlock(
            source_id,
            prefix + rolled,
            share.version,
            share.ntime,
            share.nonce,
            block_hash,
            worker,
            share.channel_id,
            payout,
        )
        log.info(
            "BLOCK found by {worker} on channel {channel_id}: {hash}",
            worker=worker,
            channel_id=share.channel_id,
            hash=display_hex(block_hash),
        )
        if self.block_sink is None and self.share_sink is not None:
            log.info("block {hash} goes to the upstream pool with the share", hash=display_hex(block_hash))
        elif self.block_sink is None:
            log.error(
                "no block sink to submit block {hash} to: nothing in this daemon talks to a node",
                hash=display_hex(block_hash),
            )
        else:
            try:
                self.block_sink.block_found(found)
            except Exception:
                log.failure("the block sink failed on block {hash}", hash=display_hex(block_hash))
        self.events.publish(BlockMined(display_hex(block_hash), worker=worker, channel_id=share.channel_id))

    def _difficulty_changed(self, event: MiningDifficultyChanged) -> None:
        """SEED-API.md's MiningDifficultyChanged: retarget the channel named, or all of them."""
        self._deliver(self.manager.set_difficulty(event.difficulty, self.clock.seconds(), event.channel_id))

    # -- from job sources -----------------------------------------------------------------

    def new_work(self, work: Work, variant: WorkVariant | None = None) -> int:
        """Send ``work`` to every channel (``variant`` for solo channels); returns its job id."""
        work = self._with_fixed_extranonce(work)
        job_id, out = self.manager.new_work(work, variant)
        self._last_work_at = self.clock.seconds()
        self._deliver(out)
        self.events.publish(
            MiningJobCreated(
                job_id=job_id,
                channel_ids=tuple(self.manager.channels),  # every channel gets every job
                template_id=work.source_id,
                future=work.future,
            )
        )
        return job_id

    def new_tip(self, work: Work, prev: PrevHash, variant: WorkVariant | None = None) -> int:
        """A new chain tip: each channel gets its job and SetNewPrevHash together."""
        self._tip_at = self.clock.seconds()
        self._hold_collector()
        work = self._with_fixed_extranonce(work)
        try:
            job_id, out = self.manager.new_tip(work, prev, variant)
        except BaseException:
            self._release_collector()
            raise
        self._last_work_at = self.clock.seconds()
        self._deliver(out)
        self.events.publish(
            MiningJobCreated(
                job_id=job_id,
                channel_ids=tuple(self.manager.channels),
                template_id=work.source_id,
                future=True,
            )
        )
        return job_id

    def new_prev_hash(self, source_id: int, prev: PrevHash) -> None:
        """A new chain tip activating the future work ``source_id``."""
        self._tip_at = self.clock.seconds()
        self._hold_collector()
        try:
            out = self.manager.new_prev_hash(source_id, prev)
        except BaseException:
            self._release_collector()
            raise
        self._deliver(out)
        self._last_work_at = self.clock.seconds()

    def set_extranonce_space(self, fixed: bytes, total_size: int) -> None:
        """The extranonce space of the work to come (proxy mode: the upstream channel's).

        ``fixed`` (the pool's prefix) and any bytes the pool grants beyond our own space go
        into the coinbase prefix of its work (:attr:`Work.fixed_extranonce`), so local channels
        keep their prefixes whatever pool they mine for: failing over to a pool with another
        prefix needs no message to any miner, and V1 miners that cannot be told a new
        extranonce stay connected.  Only a space smaller than ours re-prefixes channels (or
        closes those whose miner rolls more than is left).  Call before giving out any work of
        the new space; PoolError if it cannot even hold the per-channel bytes.
        """
        available = total_size - len(fixed)
        local = min(self._extranonce_size, available)
        if local != self.manager.extranonce_size:
            # The current work's coinbase was cut for the old size: nothing may be built from it
            # (keepalives, new channels) until the new space's work arrives.
            self.manager.drop_work()
            self._deliver(self.manager.rebase(b"", local))
        self._fixed_extranonce = fixed + bytes(available - local)

    def _with_fixed_extranonce(self, work: Work) -> Work:
        fixed = self._fixed_extranonce
        if not fixed:
            return work
        return dataclasses.replace(work, coinbase_prefix=work.coinbase_prefix + fixed, fixed_extranonce=fixed)

    def drop_work(self) -> None:
        """The job source lost its work (the upstream went away): every job is stale now."""
        self.manager.drop_work()

    def total_hash_rate(self) -> float:
        """H/s all channels together do, as their shares say."""
        return self.manager.total_hash_rate()

    # -- per-miner proxy mode: each channel's work is its own ------------------------------

    def watch_channels(self, watcher: ChannelWatcher | None) -> None:
        """Tell ``watcher`` of every channel opened and closed from now on (None: stop)."""
        self.manager.watcher = watcher

    def miner_channels(self) -> list[Channel]:
        """Every open channel."""
        return list(self.manager.channels.values())

    def new_channel_work(self, channel_id: int, work: Work) -> int:
        """Send ``work`` to channel ``channel_id`` alone; its job id (MiningJobError if it cannot)."""
        job_id, out = self.manager.new_channel_work(channel_id, work)
        self._last_work_at = self.clock.seconds()
        self._deliver(out)
        self.events.publish(
            MiningJobCreated(job_id=job_id, channel_ids=(channel_id,), template_id=work.source_id, future=work.future)
        )
        return job_id

    def new_channel_prev_hash(self, channel_id: int, source_id: int, prev: PrevHash) -> None:
        """A new chain tip activating channel ``channel_id``'s future work ``source_id``."""
        self._deliver(self.manager.new_channel_prev_hash(channel_id, source_id, prev))
        self._last_work_at = self.clock.seconds()

    def drop_channel_work(self, channel_id: int) -> None:
        """Channel ``channel_id`` lost its own work: its jobs are stale now."""
        self.manager.drop_channel_work(channel_id)

    def close_miner_channel(self, channel_id: int, reason: str) -> None:
        """Close a channel that can no longer mine (its upstream channel is gone), telling its miner."""
        owner = self.manager.owner_of(channel_id)
        if owner is None:
            return
        self.manager.close(channel_id)
        self._deliver([(owner, CloseChannel(channel_id, reason))])

    def reconnect_miners(self, host: str = "", port: int = 0) -> tuple[int, bool]:
        """Ask every miner with a channel to move to ``host:port`` (empty/0: reconnect here).

        The operator's move (maintenance, another daemon): the Reconnect message, or
        ``client.reconnect`` for Stratum V1, goes once every share accepted so far is durable
        and after the batched acknowledgements, so a miner that obeys at once has been told
        of every share it is credited with.  Returns how many connections are told, and
        whether the message waits for the share store (True: shares are not durable yet).
        """
        message = Reconnect(host, port)
        owners = self.manager.owners()

        def tell() -> None:
            # The Successes owed now are held if any share (anyone's) accepted since the request
            # is not durable yet: the Reconnect then waits behind them, for that commit too.
            self._deliver(self._flush_all())
            out = [(owner, message) for owner in owners]
            ledger = self.ledger
            if ledger is not None and ledger.durable < ledger.last_ticket:
                self._held.extend((ledger.last_ticket, item) for item in out)
            else:
                self._deliver(out, hold=False)

        ledger = self.ledger
        pending = ledger is not None and ledger.durable < ledger.last_ticket
        self.when_durable(tell)
        log.info(
            "asked {count} miner connections to reconnect to {where}{pending}",
            count=len(owners),
            where=f"{host or 'this daemon'}:{port or 'same port'}",
            pending=" (once the share store has made their shares durable)" if pending else "",
        )
        return len(owners), pending

    def channel_hash_rate(self, channel_id: int) -> float:
        """H/s one channel does, as its shares say."""
        return self.manager.hash_rate_of(channel_id)

    def when_delivered(self) -> Deferred[None]:
        """Fires once every message queued so far has been handed to its connection.

        At once when nothing is queued.  A job source waits on it after a new tip before it
        asks its node for more, so that the asking takes no reactor time from the fan-out.
        Messages queued later do not hold it back, so a steady stream of them cannot stall
        the waiter; acknowledgements held for the share store do not count (not queued yet).
        """
        if not self._outbox:
            return succeed(None)
        waiters = self._waiters

        def cancel(waiter: Deferred[None]) -> None:
            for entry in waiters:
                if entry[1] is waiter:
                    waiters.remove(entry)
                    break

        waiter: Deferred[None] = Deferred(cancel)
        waiters.append((self._queued, waiter))
        return waiter

    # -- internals ------------------------------------------------------------------------

    def _tick(self) -> None:
        now = self.clock.seconds()
        if self._collector_held and now - self._held_since >= TICK_INTERVAL:
            # However busy delivery stays, the collector is never off for long.
            self._release_collector()
        self._deliver(self.manager.tick(now))
        if self.keepalive_interval and now - self._last_work_at >= self.keepalive_interval:
            self._last_work_at = now
            refreshed = self.manager.refresh_work(now)
            if refreshed is not None:
                log.debug("keepalive job {job_id} with ntime {ntime}", job_id=refreshed[0], ntime=int(now))
                self._deliver(refreshed[1])

    def _flush_all(self) -> list[Outgoing]:
        return self.manager.flush_all(self.clock.seconds())

    def attach_ledger(self, ledger: ShareLedger) -> None:
        """Acknowledge accepted shares only once ``ledger`` has made them durable."""
        self.ledger = ledger
        ledger.add_durable_listener(self._durable)

    def when_durable(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` once every share accepted so far is durable (at once if it is)."""
        ledger = self.ledger
        if ledger is None or ledger.durable >= ledger.last_ticket:
            callback()
        else:
            self._held.append((ledger.last_ticket, callback))

    def _durable(self, ticket: int) -> None:
        held = self._held
        release: list[Outgoing] = []
        while held and held[0][0] <= ticket:
            item = held.popleft()[1]
            if isinstance(item, tuple):
                release.append(item)
                continue
            if release:
                # What was held before the callback goes first: it may send more (a Reconnect).
                self._deliver(release, hold=False)
                release = []
            try:
                item()
            except Exception:
                log.failure("acknowledging a durable share failed")
        if release:
            self._deliver(release, hold=False)

    def _hold_acknowledgements(self, out: Iterable[Outgoing], ticket: int) -> list[Outgoing]:
        """``out`` less its SubmitShares.Success messages, which wait for ``ticket`` to be durable."""
        passed = []
        for item in out:
            if isinstance(item[1], SubmitSharesSuccess):
                self._held.append((ticket, item))
            else:
                passed.append(item)
        return passed

    def _deliver(self, out: Iterable[Outgoing], hold: bool = True) -> None:
        ledger = self.ledger
        if hold and ledger is not None and ledger.durable < ledger.last_ticket:
            out = self._hold_acknowledgements(out, ledger.last_ticket)
        outbox = self._outbox
        before = len(outbox)
        outbox.extend(out)
        self._queued += len(outbox) - before
        if self._flush_call is None and not self._flushing:
            self._flush()

    @staticmethod
    def _send_many(owner: object, messages: list[Message]) -> None:
        send_messages = getattr(owner, "sendMessages", None)
        try:
            if send_messages is not None:
                send_messages(messages)
                return
            for message in messages:
                owner.sendMessage(message)  # type: ignore[attr-defined]
        except Exception:
            log.failure(
                "cannot send {messages} to {owner!r}",
                messages=", ".join(type(m).__name__ for m in messages),
                owner=owner,
            )

    def _hold_collector(self) -> None:
        """Keep Python's cyclic garbage collector from running until a tip's messages are out.

        A full collection in a daemon holding a thousand connections takes tens of
        milliseconds; landing in the middle of a fan-out it would hold back every miner not
        served yet.  Reference counting still frees nearly everything at once, and what the
        collector was owed runs once the last message was handed to its transport (one reactor
        turn later when delivery went out in chunks, so that the last chunk is sent first), or
        at the next tick at the latest.  A collector someone else turned off is left off.
        """
        if self._collector_held:
            self._cancel_release()  # the release waits for this tip's messages too
        elif gc.isenabled():
            gc.disable()
            self._collector_held = True
            self._held_since = self.clock.seconds()

    def _cancel_release(self) -> None:
        call, self._release_call = self._release_call, None
        if call is not None and call.active():
            call.cancel()

    def _release_collector(self) -> None:
        self._cancel_release()
        if self._collector_held:
            self._collector_held = False
            gc.enable()

    def _flush(self, schedule: bool = True) -> None:
        # Called by the clock for a later chunk, or straight from _deliver for the first one.
        later_chunk = self._flush_call is not None
        self._flush_call = None
        outbox = self._outbox
        # An owner may call back into the service while we deliver to it (a Stratum V1 miner
        # asks for a fresh job when told a new target): its messages join the queue, in order.
        self._flushing = True
        try:
            budget = DELIVERY_CHUNK
            while outbox and budget > 0:
                owner, message = outbox.popleft()
                budget -= 1
                if outbox and outbox[0][0] is owner:
                    # Consecutive messages to one connection leave together (a new tip's job
                    # and SetNewPrevHash): one encrypted write, one send.
                    messages = [message]
                    while outbox and outbox[0][0] is owner and budget > 0:
                        messages.append(outbox.popleft()[1])
                        budget -= 1
                    self._send_many(owner, messages)
                    continue
                try:
                    owner.sendMessage(message)  # type: ignore[attr-defined]
                except Exception:
                    # One broken connection must not stop delivery to the others.
                    log.failure("cannot send {message} to {owner!r}", message=type(message).__name__, owner=owner)
        finally:
            self._flushing = False
            self._handed += DELIVERY_CHUNK - budget
        if outbox and schedule and self._flush_call is None:
            self._flush_call = self.clock.callLater(0, self._flush)
        elif not outbox:
            if self._tip_at is not None:
                latency, self._tip_at = self.clock.seconds() - self._tip_at, None
                for observer in self.tip_observers:
                    observer(latency)
            if self._collector_held and self._release_call is None:
                if later_chunk and schedule:
                    self._release_call = self.clock.callLater(0, self._release_collector)
                else:
                    self._release_collector()
        waiters = self._waiters
        while waiters and waiters[0][0] <= self._handed:
            waiters.popleft()[1].callback(None)
