"""Writes that leave at once: a socket send now instead of at the reactor's next turn.

Twisted's TCP transport queues every ``write`` and sends it when the reactor next finds the
socket writable: per write, a dispatch and two epoll modifications (watch for writability,
then stop) besides the send itself.  A server handing one new tip to a thousand connections
pays that a thousand times, and the last miner waits for all of it.

:func:`direct_writer` gives a ``write`` that sends at once when nothing of the connection's
is queued, and otherwise -- or for what the kernel does not take -- falls back to the
transport's own ``write``.  So bytes never overtake queued ones, a streaming producer is
paused exactly as before (only queued bytes count towards ``bufferSize``, and only the
transport queues), and a send error is left for the transport to find and report.
Transports it does not know (tests, TLS, other reactors) just get their own ``write``.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.tcp import Connection

#: What the check reads of Twisted's TCP connection, some of it private: a Twisted that no
#: longer has all of it gets the transport's own ``write``, never an AttributeError per write.
_READ = (
    "dataBuffer",
    "_tempDataLen",
    "connected",
    "disconnecting",
    "_aborting",
    "_writeDisconnecting",
    "_writeDisconnected",
    "TLS",
    "writeSomeData",
)


def direct_writer(transport: object) -> Callable[[bytes], None]:
    """``transport``'s ``write``, sending at once when nothing is queued ahead (TCP only)."""
    write: Callable[[bytes], None] = transport.write  # type: ignore[attr-defined]
    if not isinstance(transport, Connection) or not all(hasattr(transport, name) for name in _READ):
        return write
    send = transport.writeSomeData

    def write_now(data: bytes) -> None:
        t = transport
        # Only an idle, open, plain TCP connection: nothing queued (so no order to keep and no
        # producer paused on our account), not closing, not aborted, no TLS layer in between.
        if (
            t.dataBuffer
            or t._tempDataLen
            or not t.connected
            or t.disconnecting
            or t._aborting
            or t._writeDisconnecting
            or t._writeDisconnected
            or t.TLS
            or not data
        ):
            write(data)
            return
        sent = send(data)
        if isinstance(sent, Exception):
            # The socket failed: queue it all, and the reactor's next write on it reports the
            # loss the usual way (connectionLost).
            write(data)
        elif sent < len(data):
            write(data[sent:])

    return write_now
