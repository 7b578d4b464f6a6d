"""Writes sent at once: a real TCP transport object over a socket pair, its reactor a MemoryReactor.

Nothing runs a reactor: a test plays its part by calling the transport's ``doWrite`` when it
wants queued bytes sent, as the reactor would once the socket is writable.
"""

from __future__ import annotations

import socket

import pytest
from twisted.internet import tcp
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from zope.interface import implementer

from sv2proxy.link.direct import direct_writer

# More than a transport sends in one go (tcp.Connection.SEND_LIMIT, 128 KiB) and more than its
# bufferSize (64 KiB): part of it must be queued, and a streaming producer paused.
BIG = bytes(range(256)) * 2048  # 512 KiB


@implementer(IPushProducer)
class Producer:
    def __init__(self) -> None:
        self.paused = 0
        self.resumed = 0

    def pauseProducing(self) -> None:  # noqa: N802
        self.paused += 1

    def resumeProducing(self) -> None:  # noqa: N802
        self.resumed += 1

    def stopProducing(self) -> None:  # noqa: N802
        pass


@pytest.fixture
def link():
    ours, peer = socket.socketpair()
    reactor = MemoryReactorClock()
    transport = tcp.Connection(ours, Protocol(), reactor)
    transport.connected = True
    peer.setblocking(False)
    yield transport, peer, reactor
    ours.close()
    peer.close()


def received(peer: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def drain(transport: tcp.Connection, peer: socket.socket, reactor: MemoryReactorClock) -> bytes:
    """Play the reactor: send what is queued while the peer reads, until nothing is."""
    got = []
    while transport in reactor.getWriters():
        got.append(received(peer))
        assert transport.doWrite() is None
    got.append(received(peer))
    return b"".join(got)


def test_an_idle_connection_sends_at_once_without_the_reactor(link):
    transport, peer, reactor = link
    write = direct_writer(transport)
    write(b"job")
    write(b"prev hash")
    assert received(peer) == b"jobprev hash"
    assert reactor.getWriters() == []


def test_what_the_socket_does_not_take_is_queued_and_later_writes_keep_their_place(link):
    transport, peer, reactor = link
    producer = Producer()
    transport.registerProducer(producer, True)
    write = direct_writer(transport)
    write(BIG)
    assert transport in reactor.getWriters()  # the rest waits for the reactor
    assert producer.paused == 1  # and the producer hears of it as with any queued write
    write(b"after")  # must not overtake the queued bytes
    assert drain(transport, peer, reactor) == BIG + b"after"
    assert producer.resumed == 1
    write(b"idle again")
    assert received(peer) == b"idle again" and reactor.getWriters() == []


def test_a_closing_connection_queues_its_last_writes(link):
    transport, peer, reactor = link
    write = direct_writer(transport)
    transport.loseConnection()
    write(b"goodbye")
    assert received(peer) == b""  # queued: the reactor sends it, then closes
    assert isinstance(transport.doWrite(), ConnectionDone)
    assert received(peer) == b"goodbye"


def test_an_aborted_connection_sends_nothing_more(link):
    transport, peer, reactor = link
    write = direct_writer(transport)
    transport.abortConnection()
    write(b"too late")
    assert received(peer) == b""


def test_a_failed_send_is_left_for_the_reactor_to_report(link):
    transport, peer, reactor = link
    write = direct_writer(transport)
    peer.close()
    write(b"nobody listens")
    assert transport in reactor.getWriters()
    assert isinstance(transport.doWrite(), ConnectionLost)


def test_other_transports_get_their_own_write():
    transport = StringTransport()
    assert direct_writer(transport) == transport.write


def test_a_twisted_without_what_the_check_reads_gets_the_plain_write(link, monkeypatch):
    transport, peer, reactor = link
    from sv2proxy.link import direct

    # As if a later Twisted had renamed one of the private attributes the check reads.
    monkeypatch.setattr(direct, "_READ", (*direct._READ, "_renamed_in_a_later_twisted"))
    write = direct_writer(transport)
    assert write == transport.write
    write(b"queued")
    assert received(peer) == b"" and transport in reactor.getWriters()
