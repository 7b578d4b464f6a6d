"""Noise NX around any framed protocol, as a Twisted protocol wrapper.

:class:`NoiseProtocol` sits between the TCP transport and a
:class:`~sv2proxy.link.framed.FramedProtocol`.  It runs the handshake (act 1
and act 2 are raw bytes, PROTOCOL.md §5.2) under a deadline from the injected
clock, and only then connects the wrapped protocol, which from there on reads
decrypted frames and writes plaintext frames.  A handshake or decryption
failure aborts that one connection and logs one line; nothing else is touched.

:class:`ServerCredentials` keeps one static key and its certificate and
renews them before they expire, so accepting a connection costs no signature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from coincurve import PrivateKey
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure

from sv2proxy.codec.framing import (
    FRAME_HEADER_SIZE,
    MAX_PAYLOAD_LENGTH,
    Frame,
    encode_frame,
    parse_header,
)
from sv2proxy.errors import ProtocolError
from sv2proxy.events import EventBus, HandshakeFailed
from sv2proxy.link.direct import direct_writer
from sv2proxy.link.framed import peer_text, send_at_once
from sv2proxy.noise.certificate import SignatureNoiseMessage
from sv2proxy.noise.handshake import ACT1_SIZE, ACT2_SIZE, Initiator, Responder
from sv2proxy.noise.keys import AuthorityKey
from sv2proxy.noise.transport import NoiseSession

DEFAULT_HANDSHAKE_TIMEOUT = 10.0
DEFAULT_CERTIFICATE_VALIDITY = 3600
# A certificate starts this long before it is signed, so that a peer whose clock
# lags ours still accepts it (sv2-tp does the same).
CERTIFICATE_BACKDATE = 3600

log = Logger()


class ServerCredentials:
    """The server's static key and certificate, renewed at half their lifetime."""

    def __init__(
        self,
        authority: AuthorityKey,
        clock: IReactorTime,
        validity: int = DEFAULT_CERTIFICATE_VALIDITY,
    ) -> None:
        if validity <= 0:
            raise ValueError(f"certificate validity must be positive, got {validity}")
        self.authority = authority
        self.validity = validity
        self._clock = clock
        self._static_secret = b""
        self._certificate: SignatureNoiseMessage | None = None
        self._renew_at = 0.0

    def responder(self, max_payload: int = MAX_PAYLOAD_LENGTH) -> Responder:
        """A fresh responder (new ephemeral key) for one incoming connection."""
        now = self._clock.seconds()
        if self._certificate is None or now >= self._renew_at:
            self._renew(int(now))
            self._renew_at = now + self.validity / 2
        assert self._certificate is not None
        return Responder(self._static_secret, self._certificate, max_payload=max_payload)

    def _renew(self, now: int) -> None:
        static = PrivateKey()
        self._static_secret = static.secret
        self._certificate = SignatureNoiseMessage.sign(
            self.authority.secret,
            static.public_key_xonly.format(),
            max(0, now - CERTIFICATE_BACKDATE),
            min(0xFFFFFFFF, now + self.validity),
        )


class NoiseProtocol(ProtocolWrapper):
    """One encrypted connection: handshake first, then frames both ways."""

    factory: NoiseServerFactory | NoiseClientFactory

    def __init__(self, factory: WrappingFactory, wrappedProtocol: Protocol) -> None:  # noqa: N803
        super().__init__(factory, wrappedProtocol)
        self._handshake: Initiator | Responder | None = None
        self._session: NoiseSession | None = None
        self._inbound = bytearray()
        self._outbound = bytearray()
        self._deadline: IDelayedCall | None = None
        self._wrapped_connected = False
        self._decrypted_any = False
        # Where encrypted frames go: the transport's write, or one that sends at once.
        self._send: Callable[[bytes], None] = self._write_unconnected

    # -- the transport side (Twisted calls these) ---------------------------

    def makeConnection(self, transport: object) -> None:  # noqa: N802
        # ProtocolWrapper would connect the wrapped protocol now; we wait for
        # the handshake, so it never sees a connection it cannot use.
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)

    def connectionMade(self) -> None:  # noqa: N802
        send_at_once(self.transport)
        factory = self.factory
        self._deadline = factory.clock.callLater(factory.handshake_timeout, self._handshake_timed_out)
        try:
            self._handshake = factory.new_handshake()
        except Exception:
            log.failure("cannot start a Noise handshake")
            self.transport.abortConnection()
            return
        if isinstance(self._handshake, Initiator):
            self.transport.write(self._handshake.write_act1())

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        session = self._session
        if session is None:
            self._inbound += data
            self._continue_handshake()
            return
        try:
            frames = session.feed(data)
        except ProtocolError as e:
            if not self._decrypted_any:
                # Act 1 is any 64 bytes, so a peer without our keys (a Stratum V1 miner on a V2
                # port, a client that refused our certificate) shows here: a failed handshake.
                self._publish_failure(f"first frame undecryptable: {e}")
            self._fail("cannot decrypt", e)
            return
        if frames:
            self._decrypted_any = True
        self._deliver(frames)

    def connectionLost(self, reason: Failure) -> None:  # noqa: N802
        self._cancel_deadline()
        self.factory.unregisterProtocol(self)
        if self._wrapped_connected:
            self.wrappedProtocol.connectionLost(reason)

    # -- the wrapped protocol's transport ---------------------------------

    def write(self, data: bytes) -> None:
        """Plaintext frames from the wrapped protocol: encrypt each whole frame."""
        self.writeSequence((data,))

    def writeSequence(self, data: Sequence[bytes]) -> None:  # noqa: N802
        """Plaintext frames, several at once: encrypted, they leave in one write."""
        session = self._session
        if session is None:
            raise RuntimeError("write before the Noise handshake completed")
        if self._outbound:
            self._outbound += b"".join(data)
            self._flush_outbound(session)
            return
        # The usual case: each piece is exactly one frame (encrypt_frame refuses anything
        # else before it uses a nonce).  From the first piece that is not, bytes are buffered
        # until they make whole frames.
        encrypt = session.encrypt_frame
        encrypted = []
        for index, piece in enumerate(data):
            try:
                encrypted.append(encrypt(piece))
            except ValueError:
                if encrypted:
                    self._send(b"".join(encrypted))
                self._outbound += b"".join(data[index:])
                self._flush_outbound(session)
                return
        if encrypted:
            self._send(encrypted[0] if len(encrypted) == 1 else b"".join(encrypted))

    # -- internals -----------------------------------------------------------

    @staticmethod
    def _write_unconnected(data: bytes) -> None:
        raise RuntimeError("write before the Noise handshake completed")

    def _flush_outbound(self, session: NoiseSession) -> None:
        buf = self._outbound
        out = []
        while len(buf) >= FRAME_HEADER_SIZE:
            end = FRAME_HEADER_SIZE + parse_header(bytes(buf[:FRAME_HEADER_SIZE]))[2]
            if len(buf) < end:
                break
            out.append(session.encrypt_frame(bytes(buf[:end])))
            del buf[:end]
        if out:
            self._send(b"".join(out))

    def _continue_handshake(self) -> None:
        handshake = self._handshake
        if handshake is None:
            return
        need = ACT1_SIZE if isinstance(handshake, Responder) else ACT2_SIZE
        if len(self._inbound) < need:
            return
        act = bytes(self._inbound[:need])
        rest = bytes(self._inbound[need:])
        self._inbound.clear()
        self._handshake = None
        try:
            if isinstance(handshake, Responder):
                act2, session = handshake.read_act1(act)
                self.transport.write(act2)
            else:
                session = handshake.read_act2(act, int(self.factory.clock.seconds()))
        except ProtocolError as e:
            self._publish_failure(str(e))
            self._fail("Noise handshake failed", e)
            return
        self._cancel_deadline()
        self._session = session
        transport = self.transport
        self._send = direct_writer(transport) if self.factory.direct_writes else transport.write
        self._wrapped_connected = True
        self.wrappedProtocol.makeConnection(self)
        if rest and not self.disconnecting:
            self.dataReceived(rest)

    def _deliver(self, frames: list[Frame]) -> None:
        wrapped = self.wrappedProtocol
        deliver: Callable[[Frame], bool] | None = getattr(wrapped, "deliverFrame", None)
        for frame in frames:
            if self.disconnecting:
                return
            if deliver is not None:
                if not deliver(frame):
                    return
            else:
                wrapped.dataReceived(
                    encode_frame(frame.extension_type, frame.msg_type, frame.payload, frame.channel_msg)
                )

    def _handshake_timed_out(self) -> None:
        self._deadline = None
        log.warn(
            "Noise handshake with {peer} timed out after {timeout} s",
            peer=peer_text(self.transport),
            timeout=self.factory.handshake_timeout,
        )
        self._publish_failure("timeout")
        self.transport.abortConnection()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _publish_failure(self, reason: str) -> None:
        # For /metrics: a burst of these is a misconfigured miner or someone probing the port.
        events = self.factory.events
        if events is not None:
            events.publish(HandshakeFailed(peer_text(self.transport), reason))

    def _fail(self, what: str, error: ProtocolError) -> None:
        log.warn("{what} with {peer}: {error}", what=what, peer=peer_text(self.transport), error=str(error))
        self._cancel_deadline()
        self.transport.abortConnection()


class _NoiseFactory(WrappingFactory):
    protocol = NoiseProtocol
    noisy = False  # "Starting factory" per client connection is noise, not news
    #: Whether encrypted frames are sent at once when the connection has nothing queued
    #: (:mod:`sv2proxy.link.direct`) rather than at the reactor's next turn.
    direct_writes = False

    def __init__(
        self,
        wrapped_factory: Factory,
        clock: IReactorTime,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        events: EventBus | None = None,
    ) -> None:
        if handshake_timeout <= 0:
            raise ValueError(f"handshake timeout must be positive, got {handshake_timeout}")
        super().__init__(wrapped_factory)
        self.clock = clock
        self.handshake_timeout = handshake_timeout
        #: Where failed handshakes are published (HandshakeFailed), if anywhere.
        self.events = events

    def new_handshake(self) -> Initiator | Responder:
        raise TypeError(f"{type(self).__name__} must say which side of the handshake it plays")


class NoiseServerFactory(_NoiseFactory):
    """Accepts Noise connections as the responder, certified by ``credentials``."""

    # A server writes to many connections a turn, usually once each (a new tip's job to every
    # miner): sending at once saves each its trip through the reactor.  A client is the
    # opposite -- many writes a turn into one connection (a proxy's shares upstream) -- where
    # the reactor's one send per turn is the cheaper way.
    direct_writes = True

    def __init__(
        self,
        wrapped_factory: Factory,
        credentials: ServerCredentials,
        clock: IReactorTime,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        events: EventBus | None = None,
    ) -> None:
        super().__init__(wrapped_factory, clock, handshake_timeout, events)
        self.credentials = credentials

    def new_handshake(self) -> Responder:
        max_payload = getattr(self.wrappedFactory.protocol, "max_payload", MAX_PAYLOAD_LENGTH)
        return self.credentials.responder(max_payload)


class NoiseClientFactory(_NoiseFactory):
    """Opens Noise connections as the initiator, pinning ``authority_key`` (None: unauthenticated)."""

    def __init__(
        self,
        wrapped_factory: Factory,
        authority_key: bytes | None,
        clock: IReactorTime,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        leeway: int = 10,
    ) -> None:
        super().__init__(wrapped_factory, clock, handshake_timeout)
        self.authority_key = authority_key
        self.leeway = leeway

    def new_handshake(self) -> Initiator:
        max_payload = getattr(self.wrappedFactory.protocol, "max_payload", MAX_PAYLOAD_LENGTH)
        return Initiator(self.authority_key, leeway=self.leeway, max_payload=max_payload)
