"""An HTTP server factory the test peers can close completely: every open connection dropped.

A test node's ``stop()`` must leave no connection behind (a daemon's keep-alive client would
otherwise hold one open past the test), and fire only once the last one is gone.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Protocol
from twisted.protocols.policies import WrappingFactory
from twisted.web import server


class ClosableConnections(WrappingFactory):
    """Wraps a Site; :meth:`close_all` aborts every connection it accepted."""

    def __init__(self, wrapped: server.Site) -> None:
        super().__init__(wrapped)
        self._idle: list[Deferred[None]] = []

    def unregisterProtocol(self, p: Protocol) -> None:  # noqa: N802 (Twisted's name)
        super().unregisterProtocol(p)
        if not self.protocols:
            idle, self._idle = self._idle, []
            for waiter in idle:
                waiter.callback(None)

    def close_all(self) -> Deferred[None]:
        """Drop every connection; fires when the last one is gone."""
        if not self.protocols:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle.append(waiter)
        for protocol in list(self.protocols):
            protocol.transport.abortConnection()
        return waiter
