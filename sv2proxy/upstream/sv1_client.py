"""The Protocol of one Stratum V1 upstream connection: bytes in, :class:`Sv1UpstreamSession` actions out.

Plain TCP (Stratum V1 has no encryption to pin).  Thin like its Stratum V2 sibling
(:mod:`.client`): the bytes go to the session, and the protocol carries out what it returns --
lines to the pool, the extranonce space once authorized (``set_extranonce_space``, before any
work), new tips and work to the mining service (``new_tip``, ``new_work``) -- and tells its
:class:`~sv2proxy.upstream.link.UpstreamListener` (the service) about the link's life.  The
deadlines and the rest are :class:`~sv2proxy.upstream.link.UpstreamLink`'s: a pool silent for
``stall_timeout`` seconds, or that has not authorized us ``open_timeout`` seconds after the
link came up, is dropped.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from sv2proxy.bitcoin.target import target_to_difficulty
from sv2proxy.link.framed import send_at_once
from sv2proxy.server.mining import AcceptedShare
from sv2proxy.upstream.link import (
    DEFAULT_OPEN_TIMEOUT,
    DEFAULT_STALL_TIMEOUT,
    ProxiedMining,
    UpstreamLink,
    UpstreamListener,
)
from sv2proxy.upstream.sv1_session import Authorized, NewTip, SendLine, Sv1Action, Sv1UpstreamSession

log = Logger()


class Sv1UpstreamProtocol(UpstreamLink, Protocol):
    """One connection to a Stratum V1 pool."""

    session: Sv1UpstreamSession

    def __init__(
        self,
        session: Sv1UpstreamSession,
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
        send_at_once(self.transport)
        self._link_up()
        for line in self.session.start():
            self.transport.write(line)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        if not self._writable():
            return
        understood = self.session.messages
        actions = self.session.receive(data)
        # Only a message we understood shows the pool is alive: garbage does not hold off the
        # stall deadline.
        if self.session.messages != understood:
            self._heard()
        self.execute(actions)

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        self._link_lost(reason.getErrorMessage())

    # -- from the service ------------------------------------------------------------------

    def forward_share(self, share: AcceptedShare) -> bool:
        """A locally accepted share: on to the pool if it is one for the pool (False: closing)."""
        if not self._writable():
            return False
        for line in self.session.submit(share, self.clock.seconds()):
            self.transport.write(line)
            self._share_sent()
            if share.is_block:
                self._block_forwarded(share)
        return True

    # -- actions ---------------------------------------------------------------------------

    def execute(self, actions: list[Sv1Action]) -> None:
        """Carry out the session's actions, in order; nothing after the link starts closing."""
        for action in actions:
            if self.close_reason is not None:
                return
            if isinstance(action, SendLine):
                self.transport.write(action.line)
            elif isinstance(action, NewTip):
                self._new_tip(action.work, action.prev)
            elif isinstance(action, Authorized):
                self._authorized(action)
            else:
                self._common_action(action)

    def _authorized(self, authorized: Authorized) -> None:
        self._ready()
        if not self._set_space(authorized.extranonce1, authorized.total_extranonce_size):
            return
        mask = authorized.version_mask
        log.info(
            "upstream {where}: authorized as {user!r}, extranonce1 {extranonce1} + {size} bytes,"
            " difficulty {difficulty:.6g}, version rolling {mask}",
            where=self.where,
            user=self.session.user_identity,
            extranonce1=authorized.extranonce1.hex() or "(none)",
            size=authorized.extranonce2_size,
            difficulty=target_to_difficulty(authorized.target),
            mask=f"{mask:08x}" if mask else "not allowed",
        )
        self.listener.channel_opened(self, authorized)

    def _not_ready(self) -> str:
        return "not authorized"

    def _waiting_for(self) -> str:
        return self.session.phase.value
