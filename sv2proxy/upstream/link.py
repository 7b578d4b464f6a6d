"""What every upstream link does alike, whatever protocol it speaks to its pool.

A link is one connection to one pool: Stratum V2 (:mod:`.client`) or Stratum V1
(:mod:`.sv1_client`).  Each feeds a sans-IO session and carries out the actions it returns;
:class:`UpstreamLink` holds the part that does not depend on the protocol: the two deadlines
(a pool that says nothing for ``stall_timeout`` seconds, or that does not get ready within
``open_timeout`` seconds of the link coming up, is dropped, both timed by the injected clock),
closing with a remembered reason, and handing work, prev hashes, tips and the extranonce space
to the mining service.  The service (:mod:`.service`) hears about each link's life through
:class:`UpstreamListener`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from sv2proxy.bitcoin.hashing import display_hex
from sv2proxy.bitcoin.target import target_to_difficulty
from sv2proxy.errors import MiningJobError, PoolError
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.server.mining import AcceptedShare, ShareSink
from sv2proxy.upstream.session import (
    ExtranoncePrefixChanged,
    Fatal,
    Ignored,
    NewPrevHash,
    NewWork,
    ReconnectTo,
    ShareResult,
    TargetChanged,
)

log = Logger()

DEFAULT_STALL_TIMEOUT = 120.0
DEFAULT_OPEN_TIMEOUT = 30.0
#: How long a graceful close may wait for a peer that does not read before the link is aborted.
CLOSE_TIMEOUT = 5.0
#: How long a forwarded share may wait for the pool's answer: a pool that takes shares and
#: answers none (blackholed) loses them all until the stall deadline, which its jobs hold off.
ANSWER_TIMEOUT = 30.0


class ProxiedMining(TypingProtocol):
    """What proxy mode needs of the mining service (:class:`~sv2proxy.server.mining.MiningService`)."""

    share_sink: ShareSink | None

    def new_work(self, work: Work) -> int: ...

    def new_prev_hash(self, source_id: int, prev: PrevHash) -> None: ...

    def new_tip(self, work: Work, prev: PrevHash) -> int: ...

    def set_extranonce_space(self, fixed: bytes, total_size: int) -> None: ...

    def drop_work(self) -> None: ...

    def total_hash_rate(self) -> float: ...


class HeldMining:
    """What a link probing a pool (fail-back) gives the mining service, held until it is chosen.

    Work and the extranonce space are recorded in order, to be handed over by
    :meth:`UpstreamLink.promote`; until then the miners keep mining the current pool's work.
    """

    share_sink: ShareSink | None = None

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def new_work(self, work: Work) -> int:
        self.calls.append(("work", (work,)))
        return 0

    def new_prev_hash(self, source_id: int, prev: PrevHash) -> None:
        self.calls.append(("prev", (source_id, prev)))

    def new_tip(self, work: Work, prev: PrevHash) -> int:
        self.calls.append(("tip", (work, prev)))
        return 0

    def set_extranonce_space(self, fixed: bytes, total_size: int) -> None:
        self.calls.append(("space", (fixed, total_size)))

    def drop_work(self) -> None:
        self.calls.clear()

    def total_hash_rate(self) -> float:
        return 0.0

    def miner_channels(self) -> list[Any]:
        """None: a per-miner link opens the miners' channels once it is chosen."""
        return []


class UpstreamListener(TypingProtocol):
    """Who learns about a link's life (the service, one listener per attempt)."""

    def link_up(self, protocol: UpstreamLink) -> None: ...

    def channel_opened(self, protocol: UpstreamLink, opened: object) -> None: ...

    def reconnect_requested(self, protocol: UpstreamLink, host: str, port: int, wait: float = 0.0) -> None: ...

    def link_lost(self, protocol: UpstreamLink | None, reason: str) -> None: ...


class UpstreamLink(ABC):
    """The protocol-independent half of an upstream Protocol (mixed in before Twisted's)."""

    transport: Any  # Twisted's Protocol sets it; ITCPTransport, or Noise's wrapper
    session: Any  # the link's sans-IO session, for the service's counters

    def __init__(
        self,
        mining: ProxiedMining,
        clock: IReactorTime,
        listener: UpstreamListener,
        where: str,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT,
    ) -> None:
        if stall_timeout <= 0 or open_timeout <= 0:
            raise ValueError("the stall and open timeouts must be positive")
        self.mining = mining
        self.clock = clock
        self.listener = listener
        self.where = where
        self.stall_timeout = stall_timeout
        self.open_timeout = open_timeout
        #: Why we closed the link, when we did (None: the pool or the network did).
        self.close_reason: str | None = None
        self._last_heard = 0.0
        self._stall_call: IDelayedCall | None = None
        self._open_call: IDelayedCall | None = None
        self._close_call: IDelayedCall | None = None
        self._answer_call: IDelayedCall | None = None

    # -- what the service calls ------------------------------------------------------------

    @abstractmethod
    def forward_share(self, share: AcceptedShare) -> bool:
        """A locally accepted share: on to the pool if it is one for the pool.

        False if the link can no longer take it (it is closing): the share is lost upstream.
        """

    def update_channel(self, hash_rate: float) -> None:
        """Tell the pool the aggregate hash rate of the local miners (where it can be told).

        Stratum V1 has no message for it, so by default nothing is sent; the V2 link overrides.
        """
        return None

    def promote(self, mining: ProxiedMining) -> None:
        """From now on work goes to ``mining``, starting with what a :class:`HeldMining` kept."""
        held = self.mining
        self.mining = mining
        if not isinstance(held, HeldMining):
            return
        for kind, args in held.calls:
            if self.close_reason is not None:
                return
            if kind == "space":
                self._set_space(*args)
            elif kind == "work":
                self._new_work(*args)
            elif kind == "tip":
                self._new_tip(*args)
            else:
                self._new_prev_hash(NewPrevHash(*args))
        held.calls.clear()

    def close(self, reason: str, abort: bool = True) -> None:
        """Drop the link, remembering why (the listener hears it in ``link_lost``)."""
        if self.close_reason is None:
            self.close_reason = reason
        self._cancel_timers()
        transport = self.transport
        if transport is None:
            return
        if abort:
            transport.abortConnection()
        else:
            transport.loseConnection()
            # loseConnection waits until everything written is sent: a peer that does not read
            # would hold the link (and a stopping daemon) forever.
            self._close_call = self.clock.callLater(CLOSE_TIMEOUT, transport.abortConnection)

    # -- for the subclasses ----------------------------------------------------------------

    def _link_up(self) -> None:
        """The link is up (under Noise: its handshake is done): start both deadlines."""
        self._last_heard = self.clock.seconds()
        self._stall_call = self.clock.callLater(self.stall_timeout, self._check_stall)
        self._open_call = self.clock.callLater(self.open_timeout, self._open_timed_out)
        self.listener.link_up(self)

    def _heard(self) -> None:
        self._last_heard = self.clock.seconds()

    def _ready(self) -> None:
        """The pool gave us what we mine with: the open deadline is met."""
        if self._open_call is not None and self._open_call.active():
            self._open_call.cancel()
        self._open_call = None

    def _share_sent(self) -> None:
        """A share went to the pool: make sure its answer is waited for no longer than ANSWER_TIMEOUT."""
        if self._answer_call is None:
            self._answer_call = self.clock.callLater(ANSWER_TIMEOUT, self._check_answers)

    def _link_lost(self, why: str) -> None:
        self._cancel_timers()
        self.listener.link_lost(self, self.close_reason or why)

    def _waiting_for(self) -> str:
        """What the link still waits for, when the open deadline passes."""
        return "the pool"

    def _not_ready(self) -> str:
        """How the open deadline's reason starts: what did not happen in time."""
        return "not ready"

    def _common_action(self, action: object) -> bool:
        """Carry out an action both protocols' sessions return; False if it is none of those."""
        if isinstance(action, NewWork):
            self._new_work(action.work)
        elif isinstance(action, NewPrevHash):
            self._new_prev_hash(action)
        elif isinstance(action, ShareResult):
            self._share_result(action)
        elif isinstance(action, TargetChanged):
            log.info(
                "upstream {where} set our target to difficulty {difficulty:.6g}",
                where=self.where,
                difficulty=target_to_difficulty(action.target),
            )
        elif isinstance(action, ExtranoncePrefixChanged):
            log.info(
                "upstream {where} changed our extranonce prefix to {prefix} ({size} bytes after it)",
                where=self.where,
                prefix=action.extranonce_prefix.hex(),
                size=action.extranonce_size,
            )
            self._set_space(action.extranonce_prefix, action.total_extranonce_size)
        elif isinstance(action, Ignored):
            log.info("upstream {where}: ignored {reason}", where=self.where, reason=action.reason)
        elif isinstance(action, ReconnectTo):
            self.listener.reconnect_requested(self, action.host, action.port, action.wait)
            self.close(f"the pool asked us to reconnect to {action.host}:{action.port}", abort=False)
        elif isinstance(action, Fatal):
            log.error("dropping upstream {where}: {reason}", where=self.where, reason=action.reason)
            self.close(action.reason)
        else:
            return False
        return True

    def _set_space(self, prefix: bytes, total_size: int) -> bool:
        try:
            self.mining.set_extranonce_space(prefix, total_size)
        except (PoolError, ValueError) as e:
            reason = f"its extranonce space does not fit our miners: {e}"
            log.error("dropping upstream {where}: {reason}", where=self.where, reason=reason)
            self.close(reason)
            return False
        return True

    def _new_work(self, work: Work) -> None:
        try:
            self.mining.new_work(work)
        except MiningJobError as e:
            log.warn(
                "upstream {where}: job {job_id} not given out: {error}",
                where=self.where,
                job_id=work.source_id,
                error=e,
            )

    def _new_tip(self, work: Work, prev: PrevHash) -> None:
        try:
            self.mining.new_tip(work, prev)
        except MiningJobError as e:
            log.warn(
                "upstream {where}: new tip with job {job_id} not given out: {error}",
                where=self.where,
                job_id=work.source_id,
                error=e,
            )
            return
        log.info(
            "upstream {where}: new prev hash {prev} with job {job_id}",
            where=self.where,
            prev=display_hex(prev.prev_hash),
            job_id=work.source_id,
        )

    def _new_prev_hash(self, action: NewPrevHash) -> None:
        try:
            self.mining.new_prev_hash(action.job_id, action.prev)
        except MiningJobError as e:
            log.warn(
                "upstream {where}: prev hash for job {job_id} not applied: {error}",
                where=self.where,
                job_id=action.job_id,
                error=e,
            )
            return
        log.info(
            "upstream {where}: new prev hash {prev} with job {job_id}",
            where=self.where,
            prev=display_hex(action.prev.prev_hash),
            job_id=action.job_id,
        )

    def _share_result(self, result: ShareResult) -> None:
        if result.accepted and result.is_block:
            log.info(
                "upstream {where} accepted the block candidate of {worker} (share {sequence})",
                where=self.where,
                worker=result.worker,
                sequence=result.sequence_number,
            )
            return
        if result.accepted:
            log.debug(
                "upstream {where} accepted share {sequence} of {worker}",
                where=self.where,
                sequence=result.sequence_number,
                worker=result.worker,
            )
            return
        log.warn(
            "upstream {where} refused share {sequence} of {worker} (channel {channel_id}, job {job_id}):"
            " {code}{detail}",
            where=self.where,
            sequence=result.sequence_number,
            worker=result.worker,
            channel_id=result.channel_id,
            job_id=result.job_id,
            code=result.error_code,
            detail=f" ({result.detail})" if result.detail else "",
        )

    def _block_forwarded(self, share: AcceptedShare) -> None:
        log.info(
            "block candidate {hash} from {worker} forwarded to upstream {where}",
            hash=display_hex(share.share_hash),
            worker=share.worker,
            where=self.where,
        )

    # -- timers ----------------------------------------------------------------------------

    def _check_stall(self) -> None:
        self._stall_call = None
        silent = self.clock.seconds() - self._last_heard
        if silent >= self.stall_timeout:
            reason = f"no message for {silent:.0f} s"
            log.warn("dropping upstream {where}: {reason}", where=self.where, reason=reason)
            self.close(reason)
            return
        # Rescheduled only when it fires, not per message: a message costs one assignment.
        self._stall_call = self.clock.callLater(self.stall_timeout - silent, self._check_stall)

    def _check_answers(self) -> None:
        self._answer_call = None
        sent_at = self.session.oldest_in_flight_at
        if sent_at is None:
            return
        waited = self.clock.seconds() - sent_at
        if waited >= ANSWER_TIMEOUT:
            reason = f"no answer to a share for {waited:.0f} s"
            log.warn("dropping upstream {where}: {reason}", where=self.where, reason=reason)
            self.close(reason)
            return
        self._answer_call = self.clock.callLater(ANSWER_TIMEOUT - waited, self._check_answers)

    def _open_timed_out(self) -> None:
        self._open_call = None
        reason = f"{self._not_ready()} within {self.open_timeout:g} s ({self._waiting_for()})"
        log.warn("dropping upstream {where}: {reason}", where=self.where, reason=reason)
        self.close(reason)

    def _cancel_timers(self) -> None:
        for call in (self._stall_call, self._open_call, self._close_call, self._answer_call):
            if call is not None and call.active():
                call.cancel()
        self._stall_call = self._open_call = self._close_call = self._answer_call = None

    def _writable(self) -> bool:
        transport = self.transport
        return transport is not None and not getattr(transport, "disconnecting", False) and self.close_reason is None
