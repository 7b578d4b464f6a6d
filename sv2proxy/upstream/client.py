"""The Protocol of one Stratum V2 upstream connection: frames in, :class:`UpstreamSession` actions out.

Thin by design (STYLE.md): each decoded message goes to the session, and the protocol carries
out the actions it returns -- messages to the pool, work and prev hashes to the mining service
(``new_work``, ``new_prev_hash``), the channel's extranonce space (``set_extranonce_space``,
before any work of the channel) -- and tells its
:class:`~sv2proxy.upstream.link.UpstreamListener` (the service) about the things that change
the connection's life: link up, channel open, Reconnect, lost.

A pool that says nothing for ``stall_timeout`` seconds, or that does not open our channel
within ``open_timeout`` seconds of the link coming up, is dropped (the injected clock times
both, :class:`~sv2proxy.upstream.link.UpstreamLink`).  A
:class:`~sv2proxy.upstream.session.Fatal` action drops the link too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from sv2proxy.bitcoin.target import target_to_difficulty
from sv2proxy.codec.message import Message
from sv2proxy.link.framed import FramedProtocol
from sv2proxy.server.mining import AcceptedShare
from sv2proxy.upstream.link import (
    DEFAULT_OPEN_TIMEOUT,
    DEFAULT_STALL_TIMEOUT,
    ProxiedMining,
    UpstreamLink,
    UpstreamListener,
)
from sv2proxy.upstream.session import Action, ChannelOpened, SendMessage, UpstreamSession

log = Logger()

#: A pool's largest message is a NewExtendedMiningJob: two B0_64K halves of a coinbase and at
#: most 255 merkle nodes, about 140 kB.  Anything far beyond is not a pool talking.
UPSTREAM_MAX_PAYLOAD = 1 << 20

__all__ = [
    "DEFAULT_OPEN_TIMEOUT",
    "DEFAULT_STALL_TIMEOUT",
    "UPSTREAM_MAX_PAYLOAD",
    "ProxiedMining",
    "UpstreamListener",
    "Sv2UpstreamProtocol",
    "UpstreamProtocol",
]


class SessionSource(TypingProtocol):
    """What a Stratum V2 upstream protocol drives: a sans-IO session of either mode."""

    def start(self) -> list[Message]: ...

    def receive(self, message: Message) -> list[Any]: ...

    def submit(self, share: AcceptedShare, now: float) -> list[Message]: ...


class Sv2UpstreamProtocol(UpstreamLink, FramedProtocol):
    """What both Stratum V2 upstream modes do alike: feed the session, forward shares.

    ``execute`` (the session's actions) and ``update_channel`` are each mode's own.
    """

    max_payload = UPSTREAM_MAX_PAYLOAD
    session: SessionSource
    #: Carries out the session's actions, in order: each mode's own.
    execute: Callable[[list[Any]], None]

    def __init__(
        self,
        session: SessionSource,
        mining: ProxiedMining,
        clock: IReactorTime,
        listener: UpstreamListener,
        where: str,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT,
    ) -> None:
        super().__init__(mining, clock, listener, where, stall_timeout, open_timeout)
        self.session = session

    # -- Twisted's side --------------------------------------------------------------------

    def connectionMade(self) -> None:  # noqa: N802
        # Under Noise this runs once the handshake completed.
        self._link_up()
        for message in self.session.start():
            self.sendMessage(message)

    def messageReceived(self, message: Message) -> None:  # noqa: N802
        self._heard()
        self.execute(self.session.receive(message))

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        self._link_lost(reason.getErrorMessage())

    # -- from the service ------------------------------------------------------------------

    def forward_share(self, share: AcceptedShare) -> bool:
        """A locally accepted share: on to the pool if it is one for the pool (False: closing)."""
        if not self._writable():
            return False
        for message in self.session.submit(share, self.clock.seconds()):
            self.sendMessage(message)
            self._share_sent()
            if share.is_block:
                self._block_forwarded(share)
        return True


class UpstreamProtocol(Sv2UpstreamProtocol):
    """One connection to a Stratum V2 pool, above Noise (or on plain TCP where that was allowed)."""

    session: UpstreamSession

    def update_channel(self, hash_rate: float) -> None:
        """Tell the pool the aggregate hash rate of the local miners."""
        if not self._writable():
            return
        for message in self.session.update_channel(hash_rate):
            self.sendMessage(message)

    # -- actions ---------------------------------------------------------------------------

    def execute(self, actions: list[Action]) -> None:
        """Carry out the session's actions, in order; nothing after the link starts closing."""
        for action in actions:
            if self.close_reason is not None:
                return
            if isinstance(action, SendMessage):
                self.sendMessage(action.message)
            elif isinstance(action, ChannelOpened):
                self._channel_opened(action)
            else:
                self._common_action(action)

    def _channel_opened(self, opened: ChannelOpened) -> None:
        self._ready()
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

    def _not_ready(self) -> str:
        return "no channel open"

    def _waiting_for(self) -> str:
        return self.session.phase.value
