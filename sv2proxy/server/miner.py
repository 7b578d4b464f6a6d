"""The protocol spoken with one Stratum V2 miner, above the Noise layer.

Thin by design (STYLE.md): it tracks the connection's phase and hands each
message to pure code.  Phases: awaiting SetupConnection -> set up -> closing.
The first message must be SetupConnection; a refused setup is answered with
SetupConnection.Error and the connection is closed once that is written.

After setup, channel and share messages go to the
:class:`~sv2proxy.server.mining.MiningService`, which answers through
:meth:`sendMessage`; the connection's channels close with it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from sv2proxy.codec.common import SetupConnection, SetupConnectionSuccess
from sv2proxy.codec.constants import ERROR_EXTENDED_CHANNELS_NOT_SUPPORTED_FOR_STANDARD_JOBS, REQUIRES_STANDARD_JOBS
from sv2proxy.codec.extensions import RequestExtensions, RequestExtensionsError, RequestExtensionsSuccess
from sv2proxy.codec.framing import Frame
from sv2proxy.codec.message import FrameEncoder, Message
from sv2proxy.codec.mining import (
    CloseChannel,
    OpenExtendedMiningChannel,
    OpenMiningChannelError,
    OpenStandardMiningChannel,
    SetCustomMiningJob,
    SetCustomMiningJobError,
    SubmitSharesExtended,
    SubmitSharesStandard,
    UpdateChannel,
)
from sv2proxy.codec.tlv import EXTENSION_WORKER_HASHRATE_TRACKING
from sv2proxy.errors import ProtocolError
from sv2proxy.link.framed import FramedProtocol, peer_text
from sv2proxy.link.ratelimit import TokenBucket
from sv2proxy.server.mining import MiningService
from sv2proxy.server.setup import negotiate_mining_setup

#: Extensions this server negotiates (PROTOCOL.md §3.5): worker names with shares.
SUPPORTED_EXTENSIONS = frozenset({EXTENSION_WORKER_HASHRATE_TRACKING})
# Work selection is refused at setup; a client that sends a custom job anyway is told so.
ERROR_JD_NOT_SUPPORTED = "jd-not-supported"
# A miner's messages are small; anything near this is hostile or broken.
MINER_MAX_PAYLOAD = 64 * 1024
#: Seconds after the handshake for SetupConnection to arrive.
SETUP_TIMEOUT = 10.0
#: Seconds a miner may leave our writes unread (the transport paused us) before it is dropped:
#: jobs keep coming, and buffering them without end would let one reader-less peer eat memory.
STALLED_READER_TIMEOUT = 30.0

log = Logger()


class Phase(enum.Enum):
    AWAITING_SETUP = "awaiting SetupConnection"
    SET_UP = "set up"
    CLOSING = "closing"


class MinerProtocol(FramedProtocol):
    """One miner connection: SetupConnection first, then mining messages."""

    max_payload = MINER_MAX_PAYLOAD
    factory: MinerFactory

    def __init__(self) -> None:
        self.phase = Phase.AWAITING_SETUP
        self.setup: SetupConnection | None = None
        self.worker_names = False  # extension 0x0002 negotiated: shares name their worker
        self._bucket: TokenBucket | None = None
        self._setup_deadline: IDelayedCall | None = None
        self._stall_deadline: IDelayedCall | None = None

    def connectionMade(self) -> None:  # noqa: N802
        clock = self.factory.mining.clock
        self._setup_deadline = clock.callLater(SETUP_TIMEOUT, self._give_up, "no SetupConnection")
        # As a streaming producer we learn when the peer stops reading what we write.
        self.transport.registerProducer(self, True)

    def sendMessage(self, message: Message) -> None:  # noqa: N802
        # Through the factory's encoder: a job sent to every connection is encoded once.
        self.transport.write(self.factory.frames.frame(message))

    def sendMessages(self, messages: Sequence[Message]) -> None:  # noqa: N802
        """Several messages in one write (a new tip's job and SetNewPrevHash)."""
        frame = self.factory.frames.frame
        self.transport.writeSequence([frame(message) for message in messages])

    def pauseProducing(self) -> None:  # noqa: N802
        if self._stall_deadline is None:
            clock = self.factory.mining.clock
            self._stall_deadline = clock.callLater(
                STALLED_READER_TIMEOUT, self._give_up, "it stopped reading what we send"
            )

    def resumeProducing(self) -> None:  # noqa: N802
        self._cancel(self._stall_deadline)
        self._stall_deadline = None

    def stopProducing(self) -> None:  # noqa: N802
        self.resumeProducing()

    def _give_up(self, why: str) -> None:
        self._setup_deadline = self._stall_deadline = None
        log.warn("dropping miner {peer}: {why}", peer=peer_text(self.transport), why=why)
        self.transport.abortConnection()

    @staticmethod
    def _cancel(call: IDelayedCall | None) -> None:
        if call is not None and call.active():
            call.cancel()

    def frameReceived(self, frame: Frame) -> None:  # noqa: N802
        now = self.factory.mining.clock.seconds()
        bucket = self._bucket
        if bucket is None:
            rate = self.factory.max_messages_per_second
            bucket = self._bucket = TokenBucket(rate, 2 * rate, now)
        if not bucket.take(now):
            raise ProtocolError(f"more than {bucket.rate:g} messages per second")
        super().frameReceived(frame)

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        self.phase = Phase.CLOSING
        self._cancel(self._setup_deadline)
        self._cancel(self._stall_deadline)
        self.factory.mining.connection_lost(self)

    def messageReceived(self, message: Message) -> None:  # noqa: N802
        if self.phase is Phase.AWAITING_SETUP:
            self._setup_received(message)
        elif self.phase is Phase.SET_UP:
            self._mining_message(message)

    def _extensions(self, request: RequestExtensions) -> None:
        """Extension negotiation (0x0001): we support worker names with shares (0x0002)."""
        supported = tuple(e for e in request.requested_extensions if e in SUPPORTED_EXTENSIONS)
        if request.requested_extensions and not supported:
            self.sendMessage(RequestExtensionsError(request.request_id, request.requested_extensions, ()))
            return
        self.worker_names = EXTENSION_WORKER_HASHRATE_TRACKING in supported
        self.sendMessage(RequestExtensionsSuccess(request.request_id, supported))

    def _setup_received(self, message: Message) -> None:
        if not isinstance(message, SetupConnection):
            raise ProtocolError(f"expected SetupConnection first, got {type(message).__name__}")
        self._cancel(self._setup_deadline)
        answer = negotiate_mining_setup(message)
        self.sendMessage(answer)
        peer = peer_text(self.transport)
        if isinstance(answer, SetupConnectionSuccess):
            self.phase = Phase.SET_UP
            self.setup = message
            log.info(
                "miner {peer} set up: vendor={vendor!r} hardware={hardware!r} firmware={firmware!r}"
                " device={device!r} flags={flags:#x}",
                peer=peer,
                vendor=message.vendor,
                hardware=message.hardware_version,
                firmware=message.firmware,
                device=message.device_id,
                flags=message.flags,
            )
            return
        self.phase = Phase.CLOSING
        log.info(
            "miner {peer} refused at setup: {code} (protocol={protocol} versions={low}..{high}"
            " flags={flags:#x})",
            peer=peer,
            code=answer.error_code,
            protocol=message.protocol,
            low=message.min_version,
            high=message.max_version,
            flags=message.flags,
        )
        self.transport.loseConnection()

    def _mining_message(self, message: Message) -> None:
        mining = self.factory.mining
        if isinstance(message, SubmitSharesExtended):
            # A proxy in front of many workers names each share's worker (extension 0x0002).
            worker = message.worker_name if self.worker_names else None
            mining.submit(self, message, worker=worker)
        elif isinstance(message, SubmitSharesStandard):
            mining.submit(self, message)
        elif isinstance(message, RequestExtensions):
            self._extensions(message)
        elif isinstance(message, OpenExtendedMiningChannel):
            assert self.setup is not None
            if self.setup.flags & REQUIRES_STANDARD_JOBS:
                # The device said it can only handle standard jobs.
                self.sendMessage(
                    OpenMiningChannelError(message.request_id, ERROR_EXTENDED_CHANNELS_NOT_SUPPORTED_FOR_STANDARD_JOBS)
                )
                return
            mining.open_channel(self, message)
        elif isinstance(message, OpenStandardMiningChannel):
            assert self.setup is not None
            # A standard-jobs-only device may not be sent anything addressed to a group.
            mining.open_channel(self, message, grouped=not self.setup.flags & REQUIRES_STANDARD_JOBS)
        elif isinstance(message, UpdateChannel):
            mining.update_channel(self, message)
        elif isinstance(message, CloseChannel):
            mining.close_channel(self, message.channel_id)
        elif isinstance(message, SetCustomMiningJob):
            self.sendMessage(SetCustomMiningJobError(message.channel_id, message.request_id, ERROR_JD_NOT_SUPPORTED))
        else:
            raise ProtocolError(f"unexpected {type(message).__name__} from a miner")


class MinerFactory(Factory):
    """Builds a :class:`MinerProtocol` per accepted (and decrypted) connection."""

    protocol = MinerProtocol

    def __init__(self, mining: MiningService, max_messages_per_second: float = 200.0) -> None:
        self.mining = mining
        self.max_messages_per_second = max_messages_per_second
        self.frames = FrameEncoder()
    noisy = False  # the listener logs its own start; connections are logged at setup
