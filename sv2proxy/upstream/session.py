"""One connection to an upstream Stratum V2 pool, as a sans-IO state machine (proxy mode).

The daemon's local miners are aggregated into ONE extended channel on the pool (PROTOCOL.md §6
"channel kinds", §8 "aggregated mode"); in per-miner mode (:mod:`.miner_channels`) a session is
one miner's channel on a connection another session set up.  :class:`UpstreamSession` knows nothing of sockets,
clocks or logs: :meth:`~UpstreamSession.start` gives the first message to send,
:meth:`~UpstreamSession.receive` turns each message from the pool into :data:`Action` values
the caller carries out, and :meth:`~UpstreamSession.submit` turns a locally accepted share into
the SubmitSharesExtended to forward (or nothing, when it does not meet the pool's target).

Phases: set up (SetupConnection, §4; we require version rolling, as the SRI translator does)
-> opening (one OpenExtendedMiningChannel) -> open (jobs, prev hashes, targets, share results)
-> closed (after a :class:`Fatal`).  Translation of the pool's jobs (§6 "future jobs"):
NewExtendedMiningJob becomes :class:`~sv2proxy.pool.jobs.Work` whose ``source_id`` is the
pool's job id, future when it has no ``min_ntime``; SetNewPrevHash activates one of them.

A pool that breaks the protocol in a way we cannot mine through gets a :class:`Fatal` (the
caller drops the link and fails over); input that is merely odd is :class:`Ignored` with a
reason to log.  Nothing here raises on anything a pool sends.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sv2proxy.bitcoin.target import target_from_nbits
from sv2proxy.codec.common import (
    ChannelEndpointChanged,
    Reconnect,
    SetupConnection,
    SetupConnectionError,
    SetupConnectionSuccess,
)
from sv2proxy.codec.constants import (
    MAX_EXTRANONCE_SIZE,
    PROTOCOL_MINING,
    PROTOCOL_VERSION,
    REQUIRES_FIXED_VERSION,
    REQUIRES_VERSION_ROLLING,
)
from sv2proxy.codec.extensions import RequestExtensions, RequestExtensionsError, RequestExtensionsSuccess
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import (
    CloseChannel,
    NewExtendedMiningJob,
    NewMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    SetCustomMiningJobError,
    SetCustomMiningJobSuccess,
    SetExtranoncePrefix,
    SetGroupChannel,
    SetNewPrevHash,
    SetTarget,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSharesSuccess,
    UpdateChannel,
    UpdateChannelError,
)
from sv2proxy.codec.tlv import EXTENSION_WORKER_HASHRATE_TRACKING, MAX_WORKER_NAME_BYTES, Tlv, worker_name_tlv
from sv2proxy.errors import ProtocolError
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.server.mining import AcceptedShare

VENDOR = "sv2proxy"
HARDWARE_VERSION = "proxy"
#: The request id of our one OpenExtendedMiningChannel.
OPEN_REQUEST_ID = 1
EXTENSIONS_REQUEST_ID = 1
#: We accept any difficulty the pool sets: the largest U256 target.
ANY_TARGET = b"\xff" * 32
#: Jobs remembered for the shares that may still come for them (reset by each SetNewPrevHash).
MAX_JOBS = 64
#: Shares waiting for the pool's answer; past this the oldest is given up as unanswered.
MAX_IN_FLIGHT = 4096
#: Distinct error codes counted in ``rejected`` (a pool chooses them); the rest count as OTHER.
MAX_REJECT_CODES = 32
OTHER = "other"
#: The largest finite binary32, the wire type of ``nominal_hash_rate``.
F32_MAX = 3.4028234663852886e38
_U32 = 0xFFFFFFFF

M = TypeVar("M", bound=Message)


class Phase(enum.Enum):
    NEW = "not started"
    SETTING_UP = "awaiting SetupConnection.Success"
    #: Set up, with no channel of its own: the connection of per-miner channels (:mod:`.miner_channels`).
    READY = "set up"
    OPENING = "awaiting OpenExtendedMiningChannel.Success"
    OPEN = "channel open"
    CLOSED = "closed"


# -- actions: what the caller must do --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Send ``message`` to the pool."""

    message: Message


@dataclass(frozen=True, slots=True)
class ChannelOpened:
    """Our extended channel is open: its extranonce space is ``extranonce_prefix`` then
    ``extranonce_size`` bytes of ours; ``target`` is an integer (compare hashes as little-endian)."""

    channel_id: int
    extranonce_prefix: bytes
    extranonce_size: int
    target: int
    group_channel_id: int

    @property
    def total_extranonce_size(self) -> int:
        return len(self.extranonce_prefix) + self.extranonce_size


@dataclass(frozen=True, slots=True)
class NewWork:
    """Work for the local miners (``work.source_id`` is the pool's job id)."""

    work: Work


@dataclass(frozen=True, slots=True)
class NewPrevHash:
    """A new chain tip activating the future work ``job_id``."""

    job_id: int
    prev: PrevHash


@dataclass(frozen=True, slots=True)
class TargetChanged:
    """The pool's target for our channel (for jobs received from now on, and future ones)."""

    target: int


@dataclass(frozen=True, slots=True)
class ExtranoncePrefixChanged:
    """SetExtranoncePrefix: the extranonce space for jobs received from now on."""

    extranonce_prefix: bytes
    extranonce_size: int

    @property
    def total_extranonce_size(self) -> int:
        return len(self.extranonce_prefix) + self.extranonce_size


@dataclass(frozen=True, slots=True)
class ShareResult:
    """The pool's verdict on one forwarded share, mapped back to the local miner."""

    sequence_number: int
    accepted: bool
    error_code: str | None
    job_id: int
    worker: str
    channel_id: int  # the local channel the share came from
    is_block: bool = False
    #: What the pool said beyond the code (Stratum V1 pools send a text), for the log.
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class ReconnectTo:
    """The pool asks us to reconnect to ``host``:``port`` (the same authority key), in ``wait`` s."""

    host: str
    port: int
    wait: float = 0.0


@dataclass(frozen=True, slots=True)
class Fatal:
    """This connection cannot be mined through: drop it (and fail over)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message that changes nothing, and why; worth a log line."""

    reason: str


Action = (
    SendMessage
    | ChannelOpened
    | NewWork
    | NewPrevHash
    | TargetChanged
    | ExtranoncePrefixChanged
    | ShareResult
    | ReconnectTo
    | Fatal
    | Ignored
)


# -- internal state ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Job:
    """A pool job as shares for it must be forwarded: its prefix and the target it carries."""

    message: NewExtendedMiningJob
    extranonce_prefix: bytes
    target: int
    future: bool


@dataclass(frozen=True, slots=True)
class _InFlight:
    job_id: int
    worker: str
    channel_id: int
    is_block: bool
    sent_at: float = 0.0


class ForwardedShares:
    """What both sessions (V2 and V1 pools) count of the shares they forward to their pool."""

    def __init__(self) -> None:
        #: Shares sent and not answered yet, by sequence number / request id, oldest first.
        self._pending: OrderedDict[int, Any] = OrderedDict()
        #: Shares the pool accepted, and the sum of their difficulties as the pool counts them.
        self.accepted = 0
        self.accepted_shares_sum = 0.0
        #: Shares the pool refused, by error code (Stratum V2 names).
        self.rejected: Counter[str] = Counter()
        #: Shares sent; those below the pool's target (not sent); those that could not be sent.
        self.forwarded = 0
        self.below_target = 0
        self.not_forwarded: Counter[str] = Counter()
        #: Shares given up on: the in-flight bound was reached before the pool answered.
        self.unanswered = 0

    @property
    def in_flight(self) -> int:
        """Shares forwarded and not answered yet."""
        return len(self._pending)

    @property
    def oldest_in_flight_at(self) -> float | None:
        """When the oldest share still waiting for the pool's answer was sent (``submit``'s now)."""
        oldest = next(iter(self._pending.values()), None)
        return None if oldest is None else oldest.sent_at


class UpstreamSession(ForwardedShares):
    """One upstream connection's protocol state; one session per connection.

    ``endpoint_host``/``endpoint_port`` are where we connect (SetupConnection names them, and
    a Reconnect with an empty host or port 0 means "the same").  ``request_extensions`` False
    sends no RequestExtensions (some pools close the connection on a message they do not know),
    so no worker names go with the shares.  ``open_after_setup`` False leaves the connection
    READY after SetupConnection.Success with no channel (per-miner mode opens one
    :class:`UpstreamSession` per miner on it with :meth:`open`, each with its own ``request_id``).
    """

    def __init__(
        self,
        user_identity: str,
        nominal_hash_rate: float,
        min_extranonce_size: int,
        endpoint_host: str = "",
        endpoint_port: int = 0,
        *,
        firmware: str = "",
        device_id: str = "",
        request_id: int = OPEN_REQUEST_ID,
        request_extensions: bool = True,
        open_after_setup: bool = True,
    ) -> None:
        if len(user_identity.encode("utf-8")) > 255:
            raise ValueError("the user identity is a STR0_255: at most 255 bytes of UTF-8")
        if not 0 <= min_extranonce_size <= MAX_EXTRANONCE_SIZE:
            raise ValueError(f"min_extranonce_size must be 0..{MAX_EXTRANONCE_SIZE}, got {min_extranonce_size}")
        self.user_identity = user_identity
        self.nominal_hash_rate = _f32(nominal_hash_rate) or 0.0
        self.min_extranonce_size = min_extranonce_size
        self.endpoint_host = endpoint_host
        self.endpoint_port = endpoint_port
        self._firmware = firmware
        self._device_id = device_id
        self.request_id = request_id
        self.request_extensions = request_extensions
        self.open_after_setup = open_after_setup
        self.phase = Phase.NEW
        self.setup_flags = 0  # SetupConnection.Success.flags
        self.channel_id: int | None = None
        self.group_channel_id = 0
        self.extranonce_prefix = b""
        self.extranonce_size = 0
        self.target = 0
        self.prev: PrevHash | None = None
        self._jobs: OrderedDict[int, _Job] = OrderedDict()
        ForwardedShares.__init__(self)
        self._next_sequence = 0
        #: Whether the pool takes our workers' names with the shares (extension 0x0002).
        self.worker_names = False

    # -- properties ------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.phase is Phase.OPEN

    @property
    def total_extranonce_size(self) -> int:
        return len(self.extranonce_prefix) + self.extranonce_size

    # -- the session -----------------------------------------------------------------------

    def start(self) -> list[Message]:
        """The SetupConnection to send first (once)."""
        if self.phase is not Phase.NEW:
            return []
        self.phase = Phase.SETTING_UP
        return [
            SetupConnection(
                protocol=PROTOCOL_MINING,
                min_version=PROTOCOL_VERSION,
                max_version=PROTOCOL_VERSION,
                # As the SRI translator: the pool must not send jobs that forbid version rolling,
                # which every ASIC behind us does (PROTOCOL.md §4, §8).
                flags=REQUIRES_VERSION_ROLLING,
                endpoint_host=_str255(self.endpoint_host),
                endpoint_port=self.endpoint_port if 0 <= self.endpoint_port <= 0xFFFF else 0,
                vendor=VENDOR,
                hardware_version=HARDWARE_VERSION,
                firmware=_str255(self._firmware),
                device_id=_str255(self._device_id),
            )
        ]

    def receive(self, message: Message) -> list[Action]:
        """What to do about one message from the pool."""
        phase = self.phase
        if phase is Phase.CLOSED:
            return []
        if phase is Phase.NEW:
            return self._fatal(f"{_name(message)} before we sent SetupConnection")
        if isinstance(message, Reconnect) and phase is not Phase.SETTING_UP:
            return self._reconnect(message)
        if phase is Phase.SETTING_UP:
            return self._setup_answer(message)
        if isinstance(message, RequestExtensionsSuccess | RequestExtensionsError):
            return self._extensions_answer(message)
        if phase is Phase.READY:
            return [Ignored(f"{_name(message)} on a connection with no channel of its own")]
        if phase is Phase.OPENING:
            return self._open_answer(message)
        return self._channel_message(message)

    def submit(self, share: AcceptedShare, now: float = 0.0) -> list[Message]:
        """The SubmitSharesExtended for a locally accepted share, if it is one for the pool (at ``now``).

        Forwarded when it meets the target its pool job carries, or is a block; its extranonce
        must start with that job's upstream prefix, and only the bytes after it are sent.
        """
        channel_id = self.channel_id
        if self.phase is not Phase.OPEN or channel_id is None:
            self.not_forwarded["no open channel"] += 1
            return []
        job = self._jobs.get(share.source_id)
        if job is None:
            self.not_forwarded["unknown job"] += 1
            return []
        prefix = job.extranonce_prefix
        extranonce = share.extranonce
        if not extranonce.startswith(prefix) or len(extranonce) != len(prefix) + self.extranonce_size:
            self.not_forwarded["extranonce outside the channel's space"] += 1
            return []
        if not share.is_block and int.from_bytes(share.share_hash, "little") > job.target:
            self.below_target += 1
            return []
        sequence = self._next_sequence
        self._next_sequence = (sequence + 1) & _U32
        self._pending[sequence] = _InFlight(share.source_id, share.worker, share.channel_id, share.is_block, now)
        if len(self._pending) > MAX_IN_FLIGHT:
            self._pending.popitem(last=False)
            self.unanswered += 1
        self.forwarded += 1
        return [
            SubmitSharesExtended(
                channel_id=channel_id,
                sequence_number=sequence,
                job_id=share.source_id,
                nonce=share.nonce,
                ntime=share.ntime,
                version=share.version,
                extranonce=extranonce[len(prefix) :],
                tlvs=self._worker_tlv(share.worker),
            )
        ]

    def _worker_tlv(self, worker: str) -> tuple[Tlv, ...]:
        """The local worker's name for the pool (extension 0x0002), cut to its 32 bytes."""
        if not self.worker_names or not worker:
            return ()
        name = worker.encode("utf-8", "ignore")[:MAX_WORKER_NAME_BYTES].decode("utf-8", "ignore")
        try:
            return (worker_name_tlv(name),)
        except ProtocolError:
            return ()

    def update_channel(self, hash_rate: float) -> list[Message]:
        """UpdateChannel with the local miners' aggregate ``hash_rate`` (H/s), once open."""
        rate = _f32(hash_rate)
        if self.phase is not Phase.OPEN or self.channel_id is None or rate is None:
            return []
        self.nominal_hash_rate = rate
        return [UpdateChannel(self.channel_id, rate, ANY_TARGET)]

    # -- phases ----------------------------------------------------------------------------

    def _setup_answer(self, message: Message) -> list[Action]:
        if isinstance(message, SetupConnectionError):
            return self._fatal(f"the pool refused SetupConnection: {message.error_code!r} (flags {message.flags:#x})")
        if not isinstance(message, SetupConnectionSuccess):
            return self._fatal(f"{_name(message)} before SetupConnection.Success")
        if message.used_version != PROTOCOL_VERSION:
            return self._fatal(f"the pool chose protocol version {message.used_version}, we offered only 2")
        if message.flags & REQUIRES_FIXED_VERSION:
            # SPEC 03 §3.6.2: not allowed when the client requires version rolling.
            return self._fatal("the pool requires a fixed version, though we require version rolling")
        self.setup_flags = message.flags
        actions: list[Action] = []
        if self.request_extensions:
            # Worker names with our shares (extension 0x0002), if the pool takes them; a pool
            # that does not know extension negotiation should ignore the request (PROTOCOL.md
            # §3.5), but some close the connection instead: ``request_extensions`` False.
            extensions = RequestExtensions(EXTENSIONS_REQUEST_ID, (EXTENSION_WORKER_HASHRATE_TRACKING,))
            actions.append(SendMessage(extensions))
        if not self.open_after_setup:
            self.phase = Phase.READY
            return actions
        self.phase = Phase.OPENING
        return [*actions, SendMessage(self._open_request())]

    def open(self, setup_flags: int = 0, worker_names: bool = False) -> list[Message]:
        """The OpenExtendedMiningChannel of a channel on a connection another session set up.

        ``setup_flags`` and ``worker_names`` are what that connection negotiated.
        """
        if self.phase is not Phase.NEW:
            return []
        self.setup_flags = setup_flags
        self.worker_names = worker_names
        self.phase = Phase.OPENING
        return [self._open_request()]

    def _open_request(self) -> OpenExtendedMiningChannel:
        return OpenExtendedMiningChannel(
            request_id=self.request_id,
            user_identity=self.user_identity,
            nominal_hash_rate=self.nominal_hash_rate,
            max_target=ANY_TARGET,
            min_extranonce_size=self.min_extranonce_size,
        )

    def _extensions_answer(self, message: RequestExtensionsSuccess | RequestExtensionsError) -> list[Action]:
        if message.request_id != EXTENSIONS_REQUEST_ID:
            return [Ignored(f"{_name(message)} for request {message.request_id}, not ours")]
        if isinstance(message, RequestExtensionsError):
            self.worker_names = False
            return [Ignored(f"the pool supports none of the extensions asked for {message.unsupported_extensions}")]
        self.worker_names = EXTENSION_WORKER_HASHRATE_TRACKING in message.supported_extensions
        return []

    def _open_answer(self, message: Message) -> list[Action]:
        if isinstance(message, OpenMiningChannelError):
            return self._fatal(f"the pool refused our channel: {message.error_code!r}")
        if isinstance(message, OpenExtendedMiningChannelSuccess):
            return self._opened(message)
        if isinstance(message, SetupConnectionSuccess | SetupConnectionError):
            return self._fatal(f"a second {_name(message)}")
        if isinstance(message, NewExtendedMiningJob | NewMiningJob | SetNewPrevHash | SetTarget):
            return [Ignored(f"{_name(message)} for channel {message.channel_id} before our channel is open")]
        if isinstance(message, SetGroupChannel):
            return [Ignored(f"SetGroupChannel {message.group_channel_id} before our channel is open")]
        return self._fatal(f"unexpected {_name(message)} while opening our channel")

    def _opened(self, message: OpenExtendedMiningChannelSuccess) -> list[Action]:
        if message.request_id != self.request_id:
            return self._fatal(f"a channel for request {message.request_id}; we asked with {self.request_id}")
        size = message.extranonce_size
        prefix = message.extranonce_prefix
        if size < self.min_extranonce_size:
            return self._fatal(f"the pool granted {size} extranonce bytes, we need {self.min_extranonce_size}")
        if len(prefix) + size > MAX_EXTRANONCE_SIZE:
            return self._fatal(f"an extranonce of {len(prefix)} + {size} bytes is longer than {MAX_EXTRANONCE_SIZE}")
        target = int.from_bytes(message.target, "little")
        if target == 0:
            return self._fatal("the pool opened our channel with a target of 0, which no share meets")
        self.phase = Phase.OPEN
        self.channel_id = message.channel_id
        self.group_channel_id = message.group_channel_id
        self.extranonce_prefix = prefix
        self.extranonce_size = size
        self.target = target
        return [ChannelOpened(message.channel_id, prefix, size, target, message.group_channel_id)]

    def _channel_message(self, message: Message) -> list[Action]:
        if isinstance(message, SubmitSharesSuccess):
            return self._if_ours(message, message.channel_id, self._shares_accepted, group=False)
        if isinstance(message, SubmitSharesError):
            return self._if_ours(message, message.channel_id, self._share_rejected, group=False)
        if isinstance(message, NewExtendedMiningJob):
            return self._if_ours(message, message.channel_id, self._new_job)
        if isinstance(message, SetNewPrevHash):
            return self._if_ours(message, message.channel_id, self._new_prev_hash)
        if isinstance(message, SetTarget):
            return self._if_ours(message, message.channel_id, self._set_target)
        if isinstance(message, SetExtranoncePrefix):
            # Sent to a channel, never to a group (SPEC 05 §5.3.10).
            return self._if_ours(message, message.channel_id, self._set_prefix, group=False)
        if isinstance(message, NewMiningJob):
            return self._if_ours(
                message,
                message.channel_id,
                lambda m: self._fatal("NewMiningJob (a standard-channel job) on our extended channel"),
            )
        if isinstance(message, CloseChannel):
            return self._if_ours(
                message, message.channel_id, lambda m: self._fatal(f"the pool closed our channel: {m.reason_code!r}")
            )
        if isinstance(message, UpdateChannelError):
            return [Ignored(f"the pool refused UpdateChannel: {message.error_code!r}")]
        if isinstance(message, SetGroupChannel):
            return self._set_group(message)
        if isinstance(message, ChannelEndpointChanged):
            return [Ignored(f"ChannelEndpointChanged for channel {message.channel_id}: nothing to reset here")]
        if isinstance(message, SetCustomMiningJobSuccess | SetCustomMiningJobError):
            return [Ignored(f"{_name(message)}, but we never send custom jobs")]
        if isinstance(message, OpenExtendedMiningChannelSuccess | OpenMiningChannelError):
            return [Ignored(f"{_name(message)} for request {message.request_id}: our channel is already open")]
        if isinstance(message, SetupConnectionSuccess | SetupConnectionError):
            return self._fatal(f"a second {_name(message)}")
        return self._fatal(f"unexpected {_name(message)} from a pool")

    def _if_ours(
        self, message: M, channel_id: int, handle: Callable[[M], list[Action]], group: bool = True
    ) -> list[Action]:
        """``handle(message)`` if it is for our channel (or, with ``group``, our group)."""
        ours = channel_id == self.channel_id or (
            group and self.group_channel_id != 0 and channel_id == self.group_channel_id
        )
        if not ours:
            return [Ignored(f"{_name(message)} for channel {channel_id}, which is not ours ({self.channel_id})")]
        return handle(message)

    # -- jobs ------------------------------------------------------------------------------

    def _new_job(self, message: NewExtendedMiningJob) -> list[Action]:
        # Kept without the channel id: the same job may come to our channel and to its group.
        content = dataclasses.replace(message, channel_id=0)
        known = self._jobs.get(message.job_id)
        if known is not None and known.message == content:
            return [Ignored(f"job {message.job_id} announced twice")]
        future = message.min_ntime is None
        if not future and self.prev is None:
            return [Ignored(f"job {message.job_id} is not a future job, but no SetNewPrevHash came yet")]
        self._jobs[message.job_id] = _Job(content, self.extranonce_prefix, self.target, future)
        self._jobs.move_to_end(message.job_id)
        self._evict_jobs()
        work = Work(
            source_id=message.job_id,
            version=message.version,
            version_rolling_allowed=message.version_rolling_allowed,
            coinbase_prefix=message.coinbase_tx_prefix,
            coinbase_suffix=message.coinbase_tx_suffix,
            merkle_path=message.merkle_path,
            future=future,
            min_ntime=message.min_ntime,
        )
        return [NewWork(work)]

    def _evict_jobs(self) -> None:
        """Forget the oldest jobs past MAX_JOBS: active ones first, a future one only if all are.

        A future job may be the one the pool's next SetNewPrevHash activates.
        """
        excess = len(self._jobs) - MAX_JOBS
        if excess <= 0:
            return
        active = [job_id for job_id, job in self._jobs.items() if not job.future][:excess]
        for job_id in active:
            del self._jobs[job_id]
        while len(self._jobs) > MAX_JOBS:
            self._jobs.popitem(last=False)

    def _new_prev_hash(self, message: SetNewPrevHash) -> list[Action]:
        job = self._jobs.get(message.job_id)
        prev = PrevHash(message.prev_hash, message.min_ntime, message.nbits)
        if job is not None and not job.future and prev == self.prev:
            return [Ignored(f"SetNewPrevHash for job {message.job_id} twice")]
        if job is None or not job.future:
            return [Ignored(f"SetNewPrevHash activates job {message.job_id}, never announced as a future job")]
        try:
            network_target = target_from_nbits(message.nbits)
        except ValueError as e:
            return self._fatal(f"SetNewPrevHash with unusable nbits: {e}")
        if network_target == 0:
            return self._fatal(f"SetNewPrevHash with nbits {message.nbits:#010x}, a target of 0")
        job.future = False
        self.prev = prev
        # Every other job was for an older tip or for a tip that did not come: none is live now,
        # and the pool may use their ids again.
        self._jobs = OrderedDict({message.job_id: job})
        return [NewPrevHash(message.job_id, prev)]

    def _set_target(self, message: SetTarget) -> list[Action]:
        target = int.from_bytes(message.maximum_target, "little")
        if target == 0:
            return [Ignored("SetTarget of 0, which no share could meet")]
        if target == self.target:
            # SRI pools answer every UpdateChannel with a SetTarget, most often the same one.
            return []
        self.target = target
        # It applies to jobs received from now on and to future jobs not yet active (§6).
        for job in self._jobs.values():
            if job.future:
                job.target = target
        return [TargetChanged(target)]

    def _set_prefix(self, message: SetExtranoncePrefix) -> list[Action]:
        prefix = message.extranonce_prefix
        if len(prefix) + self.extranonce_size > MAX_EXTRANONCE_SIZE:
            return self._fatal(
                f"SetExtranoncePrefix of {len(prefix)} bytes leaves no room for our {self.extranonce_size}"
            )
        self.extranonce_prefix = prefix
        return [ExtranoncePrefixChanged(prefix, self.extranonce_size)]

    def _set_group(self, message: SetGroupChannel) -> list[Action]:
        if self.channel_id in message.channel_ids:
            self.group_channel_id = message.group_channel_id
            return []
        if message.group_channel_id == self.group_channel_id:
            self.group_channel_id = 0
            return []
        return [Ignored(f"SetGroupChannel {message.group_channel_id} without our channel")]

    # -- share results ---------------------------------------------------------------------

    def _shares_accepted(self, message: SubmitSharesSuccess) -> list[Action]:
        last = message.last_sequence_number
        if last not in self._pending:
            return [Ignored(f"SubmitShares.Success up to sequence number {last}, which is not in flight")]
        # Cumulative: every share sent up to ``last`` and not refused by now was accepted.
        actions: list[Action] = []
        while True:
            sequence, share = self._pending.popitem(last=False)
            actions.append(
                ShareResult(sequence, True, None, share.job_id, share.worker, share.channel_id, share.is_block)
            )
            if sequence == last:
                break
        self.accepted += len(actions)
        self.accepted_shares_sum += message.new_shares_sum
        if message.new_submits_accepted_count != len(actions):
            actions.append(
                Ignored(
                    f"SubmitShares.Success counts {message.new_submits_accepted_count} shares up to {last},"
                    f" {len(actions)} were in flight"
                )
            )
        return actions

    def _share_rejected(self, message: SubmitSharesError) -> list[Action]:
        share = self._pending.pop(message.sequence_number, None)
        if share is None:
            return [Ignored(f"SubmitShares.Error for sequence number {message.sequence_number}, not in flight")]
        code = message.error_code
        if code not in self.rejected and len(self.rejected) >= MAX_REJECT_CODES - 1:
            code = OTHER
        self.rejected[code] += 1
        return [
            ShareResult(
                message.sequence_number,
                False,
                message.error_code,
                share.job_id,
                share.worker,
                share.channel_id,
                share.is_block,
            )
        ]

    # -- the rest --------------------------------------------------------------------------

    def _reconnect(self, message: Reconnect) -> list[Action]:
        host = message.new_host or self.endpoint_host
        port = message.new_port or self.endpoint_port
        if not _plausible_host(host) or not 0 < port <= 0xFFFF:
            return [Ignored(f"Reconnect to {message.new_host!r}:{message.new_port}, which is no address")]
        return [ReconnectTo(host, port)]

    def _fatal(self, reason: str) -> list[Action]:
        self.phase = Phase.CLOSED
        return [Fatal(reason)]


def _name(message: Message) -> str:
    return type(message).__name__


def _f32(value: float) -> float | None:
    """``value`` as a binary32 can carry it (clamped), or None if it is no hash rate."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        return None
    return float(min(value, F32_MAX))


def _str255(text: str) -> str:
    """``text`` cut to what a STR0_255 holds (on a character boundary)."""
    return text.encode("utf-8")[:255].decode("utf-8", "ignore")


def _plausible_host(host: str) -> bool:
    return 0 < len(host) <= 253 and host.isascii() and host.isprintable() and not any(c in host for c in " /@")
