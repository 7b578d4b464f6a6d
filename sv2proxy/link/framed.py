"""A Twisted Protocol that speaks whole Stratum V2 frames.

Over plain TCP it cuts the byte stream with :class:`FrameDecoder`; under
:class:`~sv2proxy.link.noise.NoiseProtocol` the wrapper hands it decrypted
frames directly through :meth:`FramedProtocol.frameReceived`.  By default a
frame is decoded with the codec registry and passed to
:meth:`messageReceived`; subclasses override that and send with
:meth:`sendMessage`.  A :class:`ProtocolError` raised while handling a frame
closes this connection, and only this one.
"""

from __future__ import annotations

import contextlib

from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from sv2proxy.codec.framing import MAX_PAYLOAD_LENGTH, Frame, FrameDecoder
from sv2proxy.codec.message import Message
from sv2proxy.codec.registry import decode_frame
from sv2proxy.errors import ProtocolError


def peer_text(transport: object) -> str:
    """``host:port`` of a transport's peer, for log lines."""
    get_peer = getattr(transport, "getPeer", None)
    if get_peer is None:
        return "?"
    address = get_peer()
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is None:
        return str(address)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def send_at_once(transport: object) -> None:
    """Turn off Nagle's algorithm: a share or a job is one small write that must leave now.

    With it on, a small write waits for the peer's ACK of the previous one, and the peer may
    delay that ACK by up to 40 ms: measured, that was the whole latency a proxy added to a
    share and the tail of a new tip's SetNewPrevHash.  Transports without TCP (tests, pipes)
    are left alone.
    """
    set_no_delay = getattr(transport, "setTcpNoDelay", None)
    if set_no_delay is not None:
        with contextlib.suppress(OSError):  # the socket is already gone: nothing to tune
            set_no_delay(True)


class FramedProtocol(Protocol):
    """Base of every SV2 endpoint protocol: frames in, messages out."""

    log = Logger()
    #: The largest payload a peer may announce; a larger one closes the link.
    max_payload: int = MAX_PAYLOAD_LENGTH

    _decoder: FrameDecoder | None = None

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 -- Twisted's name
        """Plaintext stream bytes (no Noise): cut into frames and dispatch them."""
        if self._decoder is None:
            self._decoder = FrameDecoder(self.max_payload)
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as e:
            self.protocolError(e)
            return
        for frame in frames:
            if not self.deliverFrame(frame):
                return

    def deliverFrame(self, frame: Frame) -> bool:  # noqa: N802
        """Hand one frame to :meth:`frameReceived`; False once the link is closing."""
        transport = self.transport
        if transport is None or getattr(transport, "disconnecting", False):
            return False
        try:
            self.frameReceived(frame)
        except ProtocolError as e:
            self.protocolError(e)
            return False
        return True

    def frameReceived(self, frame: Frame) -> None:  # noqa: N802 -- like LineReceiver.lineReceived
        """One whole frame from the peer: decode it and pass it on."""
        self.messageReceived(decode_frame(frame))

    def messageReceived(self, message: Message) -> None:  # noqa: N802
        """One decoded message; an endpoint that does not expect it closes the link."""
        raise ProtocolError(f"unexpected {type(message).__name__} on this connection")

    def sendMessage(self, message: Message) -> None:  # noqa: N802 -- like LineReceiver.sendLine
        """Encode ``message`` as one frame and write it."""
        assert self.transport is not None, "sendMessage before the connection was made"
        self.transport.write(message.to_frame())

    def protocolError(self, error: ProtocolError) -> None:  # noqa: N802
        """The peer broke the wire format or the protocol: log once, drop this link."""
        transport = self.transport
        self.log.warn("closing connection from {peer}: {error}", peer=peer_text(transport), error=str(error))
        if transport is not None:
            transport.abortConnection()
