"""The Protocol of one upstream pool connection: frames in, :class:`UpstreamSession` actions out.

Thin by design (STYLE.md): each decoded message goes to the session, and the protocol carries
out the actions it returns -- messages to the pool, work and prev hashes to the mining service
(``new_work``, ``new_prev_hash``), the channel's extranonce space (``set_extranonce_space``,
before any work of the channel) -- and tells its :class:`UpstreamListener` (the service) about
the things that change the connection's life: link up, channel open, Reconnect, lost.

A pool that says nothing for ``stall_timeout`` seconds, or that does not open our channel
within ``open_timeout`` seconds of the link coming up, is dropped (the injected clock times
both).  A :class:`~sv2proxy.upstream.session.Fatal` action drops the link too.
"""

from __future__ import annotations

from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from sv2proxy.bitcoin.hashing import display_hex
from sv2proxy.bitcoin.target import target_to_difficulty
from sv2proxy.codec.message import Message
from sv2proxy.errors import MiningJobError, PoolError
from sv2proxy.link.framed import FramedProtocol
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.server.mining import AcceptedShare, ShareSink
from sv2proxy.upstream.session import (
    Action,
    ChannelOpened,
    ExtranoncePrefixChanged,
    Fatal,
    Ignored,
    NewPrevHash,
    NewWork,
    ReconnectTo,
    SendMessage,
    ShareResult,
    TargetChanged,
    UpstreamSession,
)

log = Logger()

DEFAULT_STALL_TIMEOUT = 120.0
DEFAULT_OPEN_TIMEOUT = 30.0
#: A pool's largest message is a NewExtendedMiningJob: two B0_64K halves of a coinbase and at
#: most 255 merkle nodes, about 140 kB.  Anything far beyond is not a pool talking.
UPSTREAM_MAX_PAYLOAD = 1 << 20


class ProxiedMining(TypingProtocol):
    """What proxy mode needs of the mining service (:class:`~sv2proxy.server.mining.MiningService`)."""

    share_sink: ShareSink | None

    def new_work(self, work: Work) -> int: ...

    def new_prev_hash(self, source_id: int, prev: PrevHash) -> None: ...

    def set_extranonce_space(self, fixed: bytes, total_size: int) -> None: ...

    def drop_work(self) -> None: ...

    def total_hash_rate(self) -> float: ...


class UpstreamListener(TypingProtocol):
    """Who learns about the connection's life (the service, one listener per attempt)."""

    def link_up(self, protocol: UpstreamProtocol) -> None: ...

    def channel_opened(self, protocol: UpstreamProtocol, opened: ChannelOpened) -> None: ...

    def reconnect_requested(self, protocol: UpstreamProtocol, host: str, port: int) -> None: ...

    def link_lost(self, protocol: UpstreamProtocol | None, reason: str) -> None: ...


class UpstreamProtocol(FramedProtocol):
    """One connection to a pool, above Noise (or on plain TCP where that was allowed)."""

    max_payload = UPSTREAM_MAX_PAYLOAD

    def __init__(
        self,
        session: UpstreamSession,
        mining: ProxiedMining,
        clock: IReactorTime,
        listener: UpstreamListener,
        where: str,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT,
    ) -> None:
        if stall_timeout <= 0 or open_timeout <= 0:
            raise ValueError("the stall and open timeouts must be positive")
        self.session = session
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

    # -- Twisted's side --------------------------------------------------------------------

    def connectionMade(self) -> None:  # noqa: N802
        # Under Noise this runs once the handshake completed.
        now = self.clock.seconds()
        self._last_heard = now
        self._stall_call = self.clock.callLater(self.stall_timeout, self._check_stall)
        self._open_call = self.clock.callLater(self.open_timeout, self._open_timed_out)
        self.listener.link_up(self)
        for message in self.session.start():
            self.sendMessage(message)

    def messageReceived(self, message: Message) -> None:  # noqa: N802
        self._last_heard = self.clock.seconds()
        self.execute(self.session.receive(message))

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        self._cancel_timers()
        why = self.close_reason or reason.getErrorMessage()
        self.listener.link_lost(self, why)

    # -- from the service ------------------------------------------------------------------

    def forward_share(self, share: AcceptedShare) -> None:
        """A locally accepted share: on to the pool if it is one for the pool."""
        if not self._writable():
            return
        for message in self.session.submit(share):
            self.sendMessage(message)
            if share.is_block:
                log.info(
                    "block candidate {hash} from {worker} forwarded to upstream {where}",
                    hash=display_hex(share.share_hash),
                    worker=share.worker,
                    where=self.where,
                )

    def update_channel(self, hash_rate: float) -> None:
        """Tell the pool the aggregate hash rate of the local miners."""
        if not self._writable():
            return
        for message in self.session.update_channel(hash_rate):
            self.sendMessage(message)

    def close(self, reason: str, abort: bool = True) -> None:
        """Drop the link, remembering why (the listener hears it in ``link_lost``)."""
        if self.close_reason is None:
            self.close_reason = reason
        self._cancel_timers()
        transport = self.transport
        if transport is None:
            return
        if abort:
            transport.abortConnection()  # type: ignore[attr-defined]  # ITCPTransport, or Noise's wrapper
        else:
            transport.loseConnection()

    # -- actions ---------------------------------------------------------------------------

    def execute(self, actions: list[Action]) -> None:
        """Carry out the session's actions, in order; nothing after the link starts closing."""
        for action in actions:
            if self.close_reason is not None:
                return
            if isinstance(action, SendMessage):
                self.sendMessage(action.message)
            elif isinstance(action, NewWork):
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
            elif isinstance(action, ChannelOpened):
                self._channel_opened(action)
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
                self.listener.reconnect_requested(self, action.host, action.port)
                self.close(f"the pool asked us to reconnect to {action.host}:{action.port}", abort=False)
            elif isinstance(action, Fatal):
                log.error("dropping upstream {where}: {reason}", where=self.where, reason=action.reason)
                self.close(action.reason)

    def _channel_opened(self, opened: ChannelOpened) -> None:
        if self._open_call is not None and self._open_call.active():
            self._open_call.cancel()
        self._open_call = None
        if not self._set_space(opened.extranonce_prefix, opened.total_extranonce_size):
            return
        log.info(
            "upstream {where}: channel {channel_id} open, extranonce prefix {prefix} + {size} bytes,"
            " difficulty {difficulty:.6g}",
            where=self.where,
            channel_id=opened.channel_id,
            prefix=opened.extranonce_prefix.hex() or "(none)",
            size=opened.extranonce_size,
            difficulty=target_to_difficulty(opened.target),
        )
        self.listener.channel_opened(self, opened)

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
            "upstream {where} refused share {sequence} of {worker} (channel {channel_id}, job {job_id}): {code}",
            where=self.where,
            sequence=result.sequence_number,
            worker=result.worker,
            channel_id=result.channel_id,
            job_id=result.job_id,
            code=result.error_code,
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

    def _open_timed_out(self) -> None:
        self._open_call = None
        reason = f"no channel open within {self.open_timeout:g} s ({self.session.phase.value})"
        log.warn("dropping upstream {where}: {reason}", where=self.where, reason=reason)
        self.close(reason)

    def _cancel_timers(self) -> None:
        for call in (self._stall_call, self._open_call):
            if call is not None and call.active():
                call.cancel()
        self._stall_call = self._open_call = None

    def _writable(self) -> bool:
        transport = self.transport
        return transport is not None and not getattr(transport, "disconnecting", False) and self.close_reason is None
