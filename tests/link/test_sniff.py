"""One port, both protocols: the first bytes decide who serves the connection."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from sv2proxy.link.sniff import FIRST_BYTES_TIMEOUT, SniffingFactory, looks_like_json_text


class Recorder(Protocol):
    def __init__(self, name: str, log: list) -> None:
        self.name = name
        self.log = log

    def connectionMade(self) -> None:  # noqa: N802
        self.log.append((self.name, "made"))

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.log.append((self.name, data))

    def connectionLost(self, reason=None) -> None:  # noqa: N802
        self.log.append((self.name, "lost"))


class RecordingFactory(Factory):
    def __init__(self, name: str, log: list) -> None:
        self.name = name
        self.log = log

    def buildProtocol(self, addr):  # noqa: N802
        return Recorder(self.name, self.log)


def connect():
    log: list = []
    clock = Clock()
    factory = SniffingFactory(RecordingFactory("v1", log), RecordingFactory("v2", log), clock)
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport, clock, log


def test_a_json_request_goes_to_stratum_v1_and_everything_after_follows():
    protocol, _, _, log = connect()
    protocol.dataReceived(b'{"id":1,"method":"mining.subscribe","params":[]}\n')
    protocol.dataReceived(b"\x00\xff more")
    protocol.connectionLost(None)
    assert log == [
        ("v1", "made"),
        ("v1", b'{"id":1,"method":"mining.subscribe","params":[]}\n'),
        ("v1", b"\x00\xff more"),
        ("v1", "lost"),
    ]


def test_noise_act_one_goes_to_stratum_v2():
    protocol, _, _, log = connect()
    act1 = b"{" + os.urandom(63)  # even one starting like JSON
    protocol.dataReceived(act1)
    assert log == [("v2", "made"), ("v2", act1)]


def _control(byte: int) -> bool:
    return byte == 0x7F or (byte < 0x20 and byte not in b"\t\r\n")


@given(st.binary(min_size=63, max_size=63).filter(lambda data: any(_control(b) for b in data)))
def test_one_control_byte_makes_it_noise_even_after_a_brace(data):
    assert not looks_like_json_text(b"{" + data)


def test_utf8_names_are_still_json_even_cut_mid_character():
    line = '{"id":2,"method":"mining.authorize","params":["jörg.rig™","x"]}\n'.encode()
    assert looks_like_json_text(line)
    assert looks_like_json_text(line[: line.index(b"\xa2")])  # inside "™"
    assert not looks_like_json_text(b'{"id":1,\xff\xfe}')  # not UTF-8 at all


def test_blank_lines_first_wait_for_the_real_first_bytes():
    protocol, _, _, log = connect()
    protocol.dataReceived(b"\r\n")
    assert log == []
    protocol.dataReceived(b'{"id":1}\n')
    assert log == [("v1", "made"), ("v1", b'\r\n{"id":1}\n')]


def test_random_act_ones_are_noise():
    assert not any(looks_like_json_text(os.urandom(64)) for _ in range(20_000))


def test_leading_whitespace_is_still_json():
    assert looks_like_json_text(b'  \r\n{"id": 1}')
    assert not looks_like_json_text(b"")
    assert not looks_like_json_text(b"GET / HTTP/1.1\r\n")


def test_a_connection_that_says_nothing_is_dropped():
    protocol, transport, clock, log = connect()
    clock.advance(FIRST_BYTES_TIMEOUT + 1)
    assert transport.disconnecting or transport.disconnected
    assert log == []


def test_the_deadline_is_cancelled_once_the_protocol_is_known():
    protocol, transport, clock, log = connect()
    protocol.dataReceived(b"{}\n")
    clock.advance(FIRST_BYTES_TIMEOUT + 1)
    assert not transport.disconnecting
    assert clock.getDelayedCalls() == []


def test_links_send_at_once_where_the_transport_is_tcp():
    from sv2proxy.link.framed import send_at_once

    class Tcp:
        no_delay = False

        def setTcpNoDelay(self, enabled):  # noqa: N802
            self.no_delay = enabled

    class Gone:
        def setTcpNoDelay(self, enabled):  # noqa: N802
            raise OSError("closed")

    tcp = Tcp()
    send_at_once(tcp)
    assert tcp.no_delay is True
    send_at_once(Gone())  # a socket that went away is not an error
    send_at_once(StringTransport())  # nor is a transport without TCP
