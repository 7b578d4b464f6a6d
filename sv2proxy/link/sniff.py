"""One port for both protocols: tell a Stratum V1 miner from a Stratum V2 one by its first bytes.

A V1 miner opens with a JSON request (``{"id": ...``: printable ASCII); a V2 miner opens with
the 64 bytes of Noise act 1, an ElligatorSwift encoding that looks random.  A first chunk that
starts with ``{`` and is UTF-8 text without control bytes is V1; the 64 random bytes of act 1
(one TCP segment in practice) essentially never are.  So
operators publish one port and every firmware finds its way.
"""

from __future__ import annotations

from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from sv2proxy.link.framed import peer_text

log = Logger()

#: Seconds for a new connection to say anything at all.
FIRST_BYTES_TIMEOUT = 10.0
_CONTROL = frozenset(range(0x20)) - frozenset(b"\t\r\n") | {0x7F}


def looks_like_json_text(data: bytes) -> bool:
    """Whether the first bytes of a connection are a Stratum V1 (JSON text) miner's.

    JSON text: a ``{`` first (after whitespace), then UTF-8 (a worker name or an agent string
    may hold any character) without control bytes.  A chunk cut inside a multi-byte character
    still counts.
    """
    if data.lstrip(b" \t\r\n")[:1] != b"{":
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.reason != "unexpected end of data":
            return False
        text = data[: e.start].decode("utf-8")
    return not any(ord(char) in _CONTROL for char in text)


class SniffingProtocol(Protocol):
    """Waits for the first bytes, then hands the connection to the protocol they belong to."""

    factory: SniffingFactory

    def __init__(self, address: IAddress) -> None:
        self._address = address
        self.chosen: Protocol | None = None
        self._deadline: IDelayedCall | None = None
        self._seen = b""  # whitespace only, so far

    def connectionMade(self) -> None:  # noqa: N802
        self._deadline = self.factory.clock.callLater(FIRST_BYTES_TIMEOUT, self._silent)

    def _silent(self) -> None:
        self._deadline = None
        log.info("dropping {peer}: it sent nothing", peer=peer_text(self.transport))
        self.transport.abortConnection()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        chosen = self.chosen
        if chosen is None:
            data = self._seen + data
            if not data.strip():
                # Blank lines say nothing yet (a V1 miner's keepalive); wait for real bytes.
                self._seen = data[-64:]
                return
            self._seen = b""
            if self._deadline is not None and self._deadline.active():
                self._deadline.cancel()
            self._deadline = None
            factory = self.factory.sv1 if looks_like_json_text(data) else self.factory.sv2
            chosen = factory.buildProtocol(self._address)
            if chosen is None:
                self.transport.loseConnection()
                return
            self.chosen = chosen
            chosen.makeConnection(self.transport)
        chosen.dataReceived(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        if self.chosen is not None:
            self.chosen.connectionLost(reason)


class SniffingFactory(Factory):
    """Serves Stratum V1 and V2 miners on one listening port."""

    noisy = False

    def __init__(self, sv1: Factory, sv2: Factory, clock: IReactorTime) -> None:
        self.sv1 = sv1
        self.sv2 = sv2
        self.clock = clock

    def doStart(self) -> None:  # noqa: N802
        super().doStart()
        self.sv1.doStart()
        self.sv2.doStart()

    def doStop(self) -> None:  # noqa: N802
        self.sv1.doStop()
        self.sv2.doStop()
        super().doStop()

    def buildProtocol(self, addr: IAddress) -> SniffingProtocol:  # noqa: N802
        protocol = SniffingProtocol(addr)
        protocol.factory = self
        return protocol
