"""The Noise wrapper over Twisted: units with Clock/StringTransport, then real loopback sockets."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.error import ConnectionAborted
from twisted.internet.protocol import ClientFactory, Factory
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from sv2proxy.codec import SetupConnection, SetupConnectionSuccess
from sv2proxy.codec.message import Message
from sv2proxy.link import FramedProtocol, NoiseClientFactory, NoiseServerFactory, ServerCredentials
from sv2proxy.noise.handshake import Initiator
from sv2proxy.noise.keys import AuthorityKey

AUTHORITY = AuthorityKey(bytes.fromhex("65995eb19631f478a46ffa5cf1e545091efe950eaeac7482ffdc06eb6a89f697"))
SETUP = SetupConnection(0, 2, 2, 0b100, "127.0.0.1", 3333, "test", "hw", "fw", "dev")


class EchoServer(FramedProtocol):
    """Answers SetupConnection with Success; records what it saw."""

    def connectionMade(self) -> None:  # noqa: N802
        self.factory.connected.append(self)

    def messageReceived(self, message: Message) -> None:  # noqa: N802
        if not isinstance(message, SetupConnection):
            super().messageReceived(message)
            return
        self.sendMessage(SetupConnectionSuccess(used_version=2, flags=0))


class RecordingClient(FramedProtocol):
    def connectionMade(self) -> None:  # noqa: N802
        self.factory.ready.callback(self)

    def messageReceived(self, message: Message) -> None:  # noqa: N802
        self.factory.received.append(message)
        if self.factory.answered is not None and not self.factory.answered.called:
            self.factory.answered.callback(message)


def server_factory(clock, timeout=10.0) -> NoiseServerFactory:
    inner = Factory.forProtocol(EchoServer)
    inner.connected = []
    return NoiseServerFactory(inner, ServerCredentials(AUTHORITY, clock), clock, timeout)


def client_inner() -> ClientFactory:
    inner = ClientFactory.forProtocol(RecordingClient)
    inner.ready = defer.Deferred()
    inner.received = []
    inner.answered = defer.Deferred()
    return inner


# -- units: no reactor -------------------------------------------------------


def connect_unit(factory, clock):
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def test_stalled_handshake_is_dropped_at_the_timeout():
    clock = Clock()
    factory = server_factory(clock, timeout=10.0)
    protocol, transport = connect_unit(factory, clock)
    protocol.dataReceived(b"\x00" * 20)  # part of act 1, then nothing
    clock.advance(9.9)
    assert not transport.disconnecting
    clock.advance(0.2)
    assert transport.disconnecting
    assert clock.getDelayedCalls() == []


def test_completed_handshake_cancels_the_timeout_and_connects_the_wrapped_protocol():
    clock = Clock()
    factory = server_factory(clock)
    protocol, transport = connect_unit(factory, clock)
    initiator = Initiator(AUTHORITY.public)
    protocol.dataReceived(initiator.write_act1())
    act2 = transport.value()
    assert len(act2) == 234
    session = initiator.read_act2(act2, int(clock.seconds()))
    assert clock.getDelayedCalls() == []
    assert factory.wrappedFactory.connected, "wrapped protocol connected after the handshake"
    transport.clear()
    protocol.dataReceived(session.encrypt_frame(SETUP.to_frame()))
    (frame,) = session.feed(transport.value())
    assert SetupConnectionSuccess.decode(frame.payload) == SetupConnectionSuccess(2, 0)


def test_corrupt_ciphertext_closes_only_that_connection():
    clock = Clock()
    factory = server_factory(clock)
    connections = []
    for _ in range(2):
        protocol, transport = connect_unit(factory, clock)
        initiator = Initiator(AUTHORITY.public)
        protocol.dataReceived(initiator.write_act1())
        session = initiator.read_act2(transport.value(), int(clock.seconds()))
        transport.clear()
        connections.append((protocol, transport, session))
    (bad, bad_transport, bad_session), (good, good_transport, good_session) = connections
    wire = bytearray(bad_session.encrypt_frame(SETUP.to_frame()))
    wire[3] ^= 0x01
    bad.dataReceived(bytes(wire))
    assert bad_transport.disconnecting
    good.dataReceived(good_session.encrypt_frame(SETUP.to_frame()))
    assert not good_transport.disconnecting
    assert good_session.feed(good_transport.value())


def test_unexpected_message_closes_the_link():
    clock = Clock()
    factory = server_factory(clock)
    protocol, transport = connect_unit(factory, clock)
    initiator = Initiator(AUTHORITY.public)
    protocol.dataReceived(initiator.write_act1())
    session = initiator.read_act2(transport.value(), int(clock.seconds()))
    protocol.dataReceived(session.encrypt_frame(SetupConnectionSuccess(2, 0).to_frame()))
    assert transport.disconnecting


class CountingTransport(StringTransport):
    """A StringTransport that counts the writes it was given."""

    writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)


def established(clock):
    """A server link past the handshake: its wrapped protocol, its transport, the peer's session."""
    factory = server_factory(clock)
    protocol = factory.buildProtocol(None)
    transport = CountingTransport()
    protocol.makeConnection(transport)
    initiator = Initiator(AUTHORITY.public)
    protocol.dataReceived(initiator.write_act1())
    session = initiator.read_act2(transport.value(), int(clock.seconds()))
    transport.clear()
    transport.writes = 0
    return factory.wrappedFactory.connected[0], transport, session


def test_whole_frames_written_together_leave_in_one_encrypted_write():
    inner, transport, session = established(Clock())
    frames = [SETUP.to_frame(), SetupConnectionSuccess(2, 0).to_frame()]
    inner.transport.writeSequence(frames)
    assert transport.writes == 1
    assert [frame.payload for frame in session.feed(transport.value())] == [f[6:] for f in frames]


def test_frames_written_in_pieces_are_encrypted_once_whole_and_in_order():
    inner, transport, session = established(Clock())
    first, second, third = SETUP.to_frame(), SetupConnectionSuccess(2, 0).to_frame(), SETUP.to_frame()
    inner.transport.writeSequence([first, second[:3]])  # a whole frame, then a piece
    assert [frame.payload for frame in session.feed(transport.value())] == [first[6:]]
    transport.clear()
    inner.transport.write(second[3:9])
    inner.transport.writeSequence([second[9:] + third[:7], third[7:]])
    assert [frame.payload for frame in session.feed(transport.value())] == [second[6:], third[6:]]
    transport.clear()
    inner.transport.write(first)  # nothing buffered any more: the direct path again
    assert transport.writes and [frame.payload for frame in session.feed(transport.value())] == [first[6:]]


def test_credentials_are_reused_then_renewed_at_half_life():
    clock = Clock()
    clock.advance(1_800_000_000)
    credentials = ServerCredentials(AUTHORITY, clock, validity=3600)
    first = credentials.responder().certificate
    assert credentials.responder().certificate == first
    clock.advance(1801)
    renewed = credentials.responder().certificate
    assert renewed != first
    assert renewed.not_valid_after == 1_800_000_000 + 1801 + 3600


# -- real loopback sockets ---------------------------------------------------


def listen(reactor, factory):
    return reactor.listenTCP(0, factory, backlog=2048, interface="127.0.0.1")


@pytest_twisted.ensureDeferred
async def test_initiator_and_responder_talk_over_loopback():
    from twisted.internet import reactor

    port = listen(reactor, server_factory(reactor))
    inner = client_inner()
    reactor.connectTCP("127.0.0.1", port.getHost().port, NoiseClientFactory(inner, AUTHORITY.public, reactor))
    client = await inner.ready
    client.sendMessage(SETUP)
    answer = await inner.answered
    assert answer == SetupConnectionSuccess(used_version=2, flags=0)
    client.transport.loseConnection()
    await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_wrong_authority_is_refused_and_the_server_keeps_serving():
    from twisted.internet import reactor

    port = listen(reactor, server_factory(reactor))
    other = AuthorityKey(bytes.fromhex("8327a919dfa7772950ea6e15f035d0cc2eaf21a3a33bc2f595c1dec1cca31a9b"))
    lost = defer.Deferred()

    class Watch(ClientFactory):
        def clientConnectionLost(self, connector, reason):  # noqa: N802
            lost.callback(reason.type)

    wrong = client_inner()
    factory = NoiseClientFactory(wrong, other.public, reactor)
    watch = Watch()
    watch.buildProtocol = factory.buildProtocol
    reactor.connectTCP("127.0.0.1", port.getHost().port, watch)
    assert await lost is ConnectionAborted
    assert not wrong.ready.called

    good = client_inner()
    reactor.connectTCP("127.0.0.1", port.getHost().port, NoiseClientFactory(good, AUTHORITY.public, reactor))
    client = await good.ready
    client.sendMessage(SETUP)
    assert await good.answered == SetupConnectionSuccess(2, 0)
    client.transport.loseConnection()
    await port.stopListening()


@pytest.mark.parametrize("count", [1000])
@pytest_twisted.ensureDeferred
async def test_a_thousand_concurrent_handshakes(count):
    from twisted.internet import reactor

    port = listen(reactor, server_factory(reactor, timeout=60.0))
    clients = []
    for _ in range(count):
        inner = client_inner()
        clients.append(inner)
        reactor.connectTCP(
            "127.0.0.1", port.getHost().port, NoiseClientFactory(inner, AUTHORITY.public, reactor, 60.0)
        )
    protocols = await defer.gatherResults([c.ready for c in clients])
    for p in protocols:
        p.sendMessage(SETUP)
    answers = await defer.gatherResults([c.answered for c in clients])
    assert answers == [SetupConnectionSuccess(2, 0)] * count
    for p in protocols:
        p.transport.loseConnection()
    await port.stopListening()
