"""One connection to an upstream Stratum V1 pool, as a sans-IO state machine (proxy mode).

The mirror image of :mod:`sv2proxy.server.sv1_miner`: there we are a V1 pool to miners, here we
are one V1 miner to a remote pool, and every local miner (V1 or V2) is aggregated behind that
one subscription (PROTOCOL.md §8, read from the other side).  :class:`Sv1UpstreamSession` knows
nothing of sockets, clocks or logs: :meth:`~Sv1UpstreamSession.start` gives the first lines to
send, :meth:`~Sv1UpstreamSession.receive` turns the pool's bytes into actions the caller
carries out, and :meth:`~Sv1UpstreamSession.submit` turns a locally accepted share into the
``mining.submit`` line to forward (or nothing).

Phases: ``mining.configure`` (BIP310 version rolling, BIP320's mask; a pool that refuses or
does not know it just gives no rolling) and ``mining.subscribe``, sent together -> on the
subscription, ``mining.extranonce.subscribe`` and ``mining.authorize`` -> authorized (jobs,
difficulty, share results) -> closed (after a :class:`Fatal`).

The mapping to our pool's work:

- extranonce1 is the fixed start of the extranonce space, extranonce2_size the room after it
  (our channel bytes and what each miner rolls must fit, else :class:`Fatal`);
  ``mining.set_extranonce`` moves the space for the jobs that follow it;
- ``mining.set_difficulty`` sets the pool's share target from the next ``mining.notify`` on,
  as V1 pools mean it (FIELD-NOTES.md): each job keeps the target it came with;
- ``mining.notify`` becomes :class:`~sv2proxy.pool.jobs.Work`; V1 job ids are strings, so each
  job gets an integer ``source_id`` of this connection's own, mapped back when its shares are
  submitted.  A job with ``clean_jobs`` or on another prev hash (or nBits) is a new tip
  (future work and its :class:`~sv2proxy.pool.jobs.PrevHash` together); any other job applies
  at once on the current tip, from its ntime.
- ``client.reconnect`` is followed like SV2's Reconnect.

Input that is merely odd (garbage lines, unknown methods, a difficulty of 0, NaN or below) is
:class:`Ignored` with a reason to log; what cannot be mined through is :class:`Fatal`.  Nothing
here raises on anything a pool sends.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sv2proxy.bitcoin.target import difficulty_to_target, target_from_nbits, target_to_difficulty
from sv2proxy.codec.constants import MAX_EXTRANONCE_SIZE
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.server.mining import AcceptedShare
from sv2proxy.sv1 import (
    BIP320_MASK,
    ERROR_DUPLICATE,
    ERROR_JOB_NOT_FOUND,
    ERROR_LOW_DIFFICULTY,
    ERROR_NOT_SUBSCRIBED,
    ERROR_UNAUTHORIZED,
    LineBuffer,
    LineTooLong,
    Notification,
    Notify,
    Reconnect,
    Response,
    SetDifficulty,
    SetExtranonce,
    SetVersionMask,
    Sv1Error,
    authorize_request,
    configure_request,
    extranonce_subscribe_request,
    parse_configure_result,
    parse_error,
    parse_message,
    parse_notification,
    parse_subscribe_result,
    submit_request,
    subscribe_request,
)
from sv2proxy.upstream.session import (
    MAX_IN_FLIGHT,
    MAX_JOBS,
    ExtranoncePrefixChanged,
    Fatal,
    ForwardedShares,
    Ignored,
    NewWork,
    ReconnectTo,
    ShareResult,
    TargetChanged,
    _plausible_host,
)

USER_AGENT = "sv2proxy"
#: The password of ``mining.authorize``; pools that have none take anything, "x" by custom.
DEFAULT_PASSWORD = "x"
#: The version bits we ask to roll: BIP320's, what V1 pools grant ASICs.
REQUESTED_VERSION_MASK = BIP320_MASK
#: Our channel bytes (4) and what a miner rolls (4): what a pool's extranonce2 must hold at least.
DEFAULT_MIN_EXTRANONCE2_SIZE = 8
#: The longest line we take from a pool: a notify of the largest coinbase an SV2 pool could send
#: (two 64 kB halves and 255 branches, in hex).  Beyond it the pool is dropped.
UPSTREAM_MAX_LINE_LENGTH = 1 << 20
#: The longest a ``client.reconnect`` may ask us to wait before reconnecting.
MAX_RECONNECT_WAIT = 60.0
#: V1 share errors by code, as the Stratum V2 names the rest of the daemon counts.
SHARE_ERRORS = {
    ERROR_JOB_NOT_FOUND: "stale-share",
    ERROR_DUPLICATE: "duplicate-share",
    ERROR_LOW_DIFFICULTY: "difficulty-too-low",
    ERROR_UNAUTHORIZED: "unauthorized-worker",
    ERROR_NOT_SUBSCRIBED: "not-subscribed",
}
#: A refusal without a known code (``"result": false``, or a code of the pool's own).
ERROR_REJECTED = "rejected"

_U32 = 0xFFFFFFFF
# Our requests, by what their answers mean.
_CONFIGURE = "mining.configure"
_SUBSCRIBE = "mining.subscribe"
_EXTRANONCE_SUBSCRIBE = "mining.extranonce.subscribe"
_AUTHORIZE = "mining.authorize"


class Sv1Phase(enum.Enum):
    NEW = "not started"
    SUBSCRIBING = "awaiting the mining.subscribe result"
    AUTHORIZING = "awaiting the mining.authorize result"
    AUTHORIZED = "authorized"
    CLOSED = "closed"


# -- actions only a V1 link has (the rest are session.py's) -----------------------------------


@dataclass(frozen=True, slots=True)
class SendLine:
    """Write ``line`` (one JSON-RPC message, newline included) to the pool."""

    line: bytes


@dataclass(frozen=True, slots=True)
class Authorized:
    """Subscribed and authorized: the extranonce space is ``extranonce1`` then
    ``extranonce2_size`` bytes of ours; ``version_mask`` the bits we may roll (None: none)."""

    extranonce1: bytes
    extranonce2_size: int
    version_mask: int | None
    target: int

    @property
    def total_extranonce_size(self) -> int:
        return len(self.extranonce1) + self.extranonce2_size


@dataclass(frozen=True, slots=True)
class NewTip:
    """A new chain tip: future ``work`` and the prev hash that activates it, together."""

    work: Work
    prev: PrevHash


Sv1Action = (
    SendLine
    | Authorized
    | NewWork
    | NewTip
    | TargetChanged
    | ExtranoncePrefixChanged
    | ShareResult
    | ReconnectTo
    | Fatal
    | Ignored
)


# -- internal state ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Job:
    """A pool job as shares for it must be submitted: its V1 id, space and target."""

    v1_job_id: str
    version: int
    extranonce1: bytes
    extranonce2_size: int
    target: int


@dataclass(frozen=True, slots=True)
class _InFlight:
    source_id: int
    worker: str
    channel_id: int
    is_block: bool
    difficulty: float
    sent_at: float = 0.0


class Sv1UpstreamSession(ForwardedShares):
    """One V1 upstream connection's protocol state; one session per connection.

    ``endpoint_host``/``endpoint_port`` are where we connect (a ``client.reconnect`` without a
    host or port means "the same").  ``min_extranonce2_size`` is the room after extranonce1 we
    need: our channel bytes and what a miner rolls.
    """

    def __init__(
        self,
        user_identity: str,
        password: str = DEFAULT_PASSWORD,
        endpoint_host: str = "",
        endpoint_port: int = 0,
        *,
        min_extranonce2_size: int = DEFAULT_MIN_EXTRANONCE2_SIZE,
        user_agent: str = USER_AGENT,
        max_line_length: int = UPSTREAM_MAX_LINE_LENGTH,
    ) -> None:
        if not 1 <= min_extranonce2_size <= MAX_EXTRANONCE_SIZE:
            raise ValueError(f"min_extranonce2_size must be 1..{MAX_EXTRANONCE_SIZE}, got {min_extranonce2_size}")
        self.user_identity = user_identity
        self.password = password
        self.endpoint_host = endpoint_host
        self.endpoint_port = endpoint_port
        self.min_extranonce2_size = min_extranonce2_size
        self.user_agent = user_agent
        self.phase = Sv1Phase.NEW
        self.extranonce1 = b""
        self.extranonce2_size = 0
        #: The version bits the pool lets us roll (None: it did not agree to version rolling).
        self.version_mask: int | None = None
        #: The share target of the jobs to come (V1's default difficulty is 1).
        self.target = difficulty_to_target(1.0)
        self.prev: PrevHash | None = None
        #: Lines that were a message we understood (the rest are ignored garbage).
        self.messages = 0
        self._lines = LineBuffer(max_line_length)
        self._next_id = 1
        self._requests: dict[int, str] = {}
        self._next_source_id = 1
        self._jobs: OrderedDict[int, _Job] = OrderedDict()
        self._early: tuple[Notify, int] | None = None  # the last job before we were authorized
        # Counts as for a V2 pool; errors under the Stratum V2 names of V1's codes.
        ForwardedShares.__init__(self)

    # -- properties ------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.phase is Sv1Phase.AUTHORIZED

    @property
    def total_extranonce_size(self) -> int:
        return len(self.extranonce1) + self.extranonce2_size

    def v1_job_id(self, source_id: int) -> str | None:
        """The pool's job id of our job ``source_id``, while it is remembered."""
        job = self._jobs.get(source_id)
        return job.v1_job_id if job is not None else None

    # -- the session -----------------------------------------------------------------------

    def start(self) -> list[bytes]:
        """``mining.configure`` and ``mining.subscribe``, to send first (once).

        Sent together, as ASIC firmwares do: a pool that does not know configure answers it
        with an error (or not at all) and the subscription goes on regardless.
        """
        if self.phase is not Sv1Phase.NEW:
            return []
        self.phase = Sv1Phase.SUBSCRIBING
        return [
            configure_request(self._request(_CONFIGURE), REQUESTED_VERSION_MASK),
            subscribe_request(self._request(_SUBSCRIBE), self.user_agent),
        ]

    def receive(self, data: bytes) -> list[Sv1Action]:
        """What to do about bytes from the pool (whatever their chunking)."""
        if self.phase is Sv1Phase.CLOSED:
            return []
        if self.phase is Sv1Phase.NEW:
            return self._fatal("the pool spoke before we sent anything")
        try:
            lines = self._lines.feed(data)
        except LineTooLong as e:
            return self._fatal(str(e))
        actions: list[Sv1Action] = []
        for line in lines:
            if self.phase is Sv1Phase.CLOSED:
                break
            actions += self.receive_line(line)
        return actions

    def receive_line(self, line: bytes) -> list[Sv1Action]:
        """What to do about one line (without its newline) from the pool."""
        if self.phase in (Sv1Phase.NEW, Sv1Phase.CLOSED):
            return []
        try:
            message = parse_message(line)
        except Sv1Error as e:
            return [Ignored(f"a line that is no Stratum V1 message: {e}")]
        if isinstance(message, Response):
            return self._response(message)
        # Some pools put an id on their notifications; what they ask is in the method alone.
        return self._notification(Notification(message.method, message.params))

    def submit(self, share: AcceptedShare, now: float = 0.0) -> list[bytes]:
        """The ``mining.submit`` line for a locally accepted share, if it is one for the pool (at ``now``).

        Forwarded when it meets the target its pool job carries, or is a block; its extranonce
        must start with that job's extranonce1, and the bytes after it are the extranonce2.
        """
        if self.phase is not Sv1Phase.AUTHORIZED:
            self.not_forwarded["not authorized"] += 1
            return []
        job = self._jobs.get(share.source_id)
        if job is None:
            self.not_forwarded["unknown job"] += 1
            return []
        extranonce1, extranonce = job.extranonce1, share.extranonce
        if not extranonce.startswith(extranonce1) or len(extranonce) != len(extranonce1) + job.extranonce2_size:
            self.not_forwarded["extranonce outside the pool's space"] += 1
            return []
        if not share.is_block and int.from_bytes(share.share_hash, "little") > job.target:
            self.below_target += 1
            return []
        mask = self.version_mask or 0
        if (share.version ^ job.version) & ~mask & _U32:
            # Rolled where the pool did not allow it (our miners may roll BIP323's wider mask):
            # the pool would rebuild another header from the bits it takes.
            self.not_forwarded["version bits the pool does not allow"] += 1
            return []
        request_id = self._next_id
        self._next_id += 1
        difficulty = target_to_difficulty(job.target)
        self._pending[request_id] = _InFlight(
            share.source_id, share.worker, share.channel_id, share.is_block, difficulty, now
        )
        if len(self._pending) > MAX_IN_FLIGHT:
            self._pending.popitem(last=False)
            self.unanswered += 1
        self.forwarded += 1
        return [
            submit_request(
                request_id,
                self.user_identity,
                job.v1_job_id,
                extranonce[len(extranonce1) :],
                share.ntime,
                share.nonce,
                share.version & mask if mask else None,
            )
        ]

    # -- responses -------------------------------------------------------------------------

    def _response(self, response: Response) -> list[Sv1Action]:
        request_id = response.id
        if isinstance(request_id, int):
            share = self._pending.pop(request_id, None)
            if share is not None:
                self.messages += 1
                return self._share_result(request_id, share, response)
            method = self._requests.pop(request_id, None)
            if method is not None:
                self.messages += 1
                return self._answer(method, response)
        refusal = _error_text(response.error)
        about = f" ({refusal})" if response.error is not None else ""
        return [Ignored(f"an answer to id {request_id!r}, which is no request in flight{about}")]

    def _answer(self, method: str, response: Response) -> list[Sv1Action]:
        refused = response.error is not None or response.result is False or response.result is None
        if method == _CONFIGURE:
            return self._configured(response, refused)
        if method == _SUBSCRIBE:
            if refused:
                return self._fatal(f"the pool refused mining.subscribe: {_error_text(response.error)}")
            return self._subscribed(response.result)
        if method == _AUTHORIZE:
            if refused or response.result is not True:
                return self._fatal(f"the pool refused the worker {self.user_identity!r}: {_error_text(response.error)}")
            return self._authorized()
        # mining.extranonce.subscribe: optional, and only a pool that knows it sends set_extranonce.
        if refused:
            return [Ignored(f"the pool does not take mining.extranonce.subscribe: {_error_text(response.error)}")]
        return []

    def _configured(self, response: Response, refused: bool) -> list[Sv1Action]:
        if refused:
            self.version_mask = None
            return [Ignored(f"the pool does not take mining.configure: {_error_text(response.error)}")]
        try:
            granted = parse_configure_result(response.result)
        except Sv1Error as e:
            self.version_mask = None
            return [Ignored(f"an unreadable mining.configure result, so no version rolling: {e}")]
        # BIP310: never more than asked for; a pool that grants more gets what we asked.
        mask = (granted or 0) & REQUESTED_VERSION_MASK
        self.version_mask = mask or None
        if self.version_mask is None:
            return [Ignored("the pool does not allow version rolling")]
        return []

    def _subscribed(self, result: Any) -> list[Sv1Action]:
        try:
            extranonce1, extranonce2_size = parse_subscribe_result(result)
        except Sv1Error as e:
            return self._fatal(f"an unusable mining.subscribe result: {e}")
        problem = self._space_problem(extranonce1, extranonce2_size)
        if problem is not None:
            return self._fatal(problem)
        self.extranonce1, self.extranonce2_size = extranonce1, extranonce2_size
        self.phase = Sv1Phase.AUTHORIZING
        return [
            SendLine(extranonce_subscribe_request(self._request(_EXTRANONCE_SUBSCRIBE))),
            SendLine(authorize_request(self._request(_AUTHORIZE), self.user_identity, self.password)),
        ]

    def _authorized(self) -> list[Sv1Action]:
        if self.phase is not Sv1Phase.AUTHORIZING:
            return [Ignored("mining.authorize answered twice")]
        self.phase = Sv1Phase.AUTHORIZED
        actions: list[Sv1Action] = [Authorized(self.extranonce1, self.extranonce2_size, self.version_mask, self.target)]
        early, self._early = self._early, None
        if early is not None:
            # The pool's newest job from before: the tip to start on.
            actions += self._new_job(early[0], early[1], tip=True)
        return actions

    def _share_result(self, request_id: int, share: _InFlight, response: Response) -> list[Sv1Action]:
        if response.error is None and response.result is True:
            self.accepted += 1
            self.accepted_shares_sum += share.difficulty
            return [
                ShareResult(request_id, True, None, share.source_id, share.worker, share.channel_id, share.is_block)
            ]
        parsed = parse_error(response.error)
        code = SHARE_ERRORS.get(parsed[0], ERROR_REJECTED) if parsed is not None else ERROR_REJECTED
        detail = f"{parsed[0]} {parsed[1][:200]}" if parsed is not None else None
        self.rejected[code] += 1
        return [
            ShareResult(
                request_id,
                False,
                code,
                share.source_id,
                share.worker,
                share.channel_id,
                share.is_block,
                detail,
            )
        ]

    # -- notifications ---------------------------------------------------------------------

    def _notification(self, notification: Notification) -> list[Sv1Action]:
        try:
            message = parse_notification(notification)
        except Sv1Error as e:
            return [Ignored(str(e))]
        self.messages += 1
        if isinstance(message, Notify):
            return self._notify(message)
        if isinstance(message, SetDifficulty):
            return self._set_difficulty(message)
        if isinstance(message, SetExtranonce):
            return self._set_extranonce(message)
        if isinstance(message, SetVersionMask):
            return self._set_version_mask(message)
        return self._reconnect(message)

    def _notify(self, notify: Notify) -> list[Sv1Action]:
        if self.phase is Sv1Phase.SUBSCRIBING:
            return [Ignored(f"mining.notify {notify.job_id!r} before our subscription was answered")]
        try:
            network_target = target_from_nbits(notify.nbits)
        except ValueError as e:
            return self._fatal(f"mining.notify {notify.job_id!r} with unusable nbits: {e}")
        if network_target == 0:
            return self._fatal(f"mining.notify {notify.job_id!r} with nbits {notify.nbits:#010x}, a target of 0")
        if self.phase is Sv1Phase.AUTHORIZING:
            # Kept for the authorization, with the target it came with: no work goes to our
            # miners before the pool has taken our worker.
            self._early = (notify, self.target)
            return []
        return self._new_job(notify, self.target, tip=False)

    def _new_job(self, notify: Notify, target: int, tip: bool) -> list[Sv1Action]:
        prev = PrevHash(notify.prev_hash, notify.ntime, notify.nbits)
        current = self.prev
        tip = (
            tip
            or notify.clean_jobs
            or current is None
            or (current.prev_hash, current.nbits) != (notify.prev_hash, notify.nbits)
        )
        source_id = self._next_source_id
        self._next_source_id += 1
        job = _Job(notify.job_id, notify.version, self.extranonce1, self.extranonce2_size, target)
        work = Work(
            source_id=source_id,
            version=notify.version,
            version_rolling_allowed=bool(self.version_mask),
            coinbase_prefix=notify.coinbase_prefix,
            coinbase_suffix=notify.coinbase_suffix,
            merkle_path=notify.merkle_path,
            future=tip,
            min_ntime=None if tip else notify.ntime,
        )
        if tip:
            # Every older job was for this tip's predecessor, or is one the pool called off.
            self.prev = prev
            self._jobs = OrderedDict({source_id: job})
            return [NewTip(work, prev)]
        self._jobs[source_id] = job
        while len(self._jobs) > MAX_JOBS:
            self._jobs.popitem(last=False)
        return [NewWork(work)]

    def _set_difficulty(self, message: SetDifficulty) -> list[Sv1Action]:
        target = difficulty_to_target(message.difficulty)
        if target == self.target:
            return []
        self.target = target
        return [TargetChanged(target)]

    def _set_extranonce(self, message: SetExtranonce) -> list[Sv1Action]:
        if self.phase is Sv1Phase.SUBSCRIBING:
            return [Ignored("mining.set_extranonce before our subscription was answered")]
        extranonce1, size = message.extranonce1, message.extranonce2_size
        problem = self._space_problem(extranonce1, size)
        if problem is not None:
            return self._fatal(f"mining.set_extranonce: {problem}")
        if (extranonce1, size) == (self.extranonce1, self.extranonce2_size):
            return []
        self.extranonce1, self.extranonce2_size = extranonce1, size
        if self.phase is not Sv1Phase.AUTHORIZED:
            # The space is set at the authorization; a job kept from before was for the old one.
            self._early = None
            return []
        return [ExtranoncePrefixChanged(extranonce1, size)]

    def _set_version_mask(self, message: SetVersionMask) -> list[Sv1Action]:
        if self.version_mask is None:
            return [Ignored(f"mining.set_version_mask {message.mask:08x}, but version rolling was not agreed")]
        # BIP310: it holds at once; what our miners rolled outside it is no longer forwarded.
        self.version_mask = (message.mask & REQUESTED_VERSION_MASK) or 0
        return []

    def _reconnect(self, message: Reconnect) -> list[Sv1Action]:
        host = message.host or self.endpoint_host
        port = message.port or self.endpoint_port
        if not _plausible_host(host) or not 0 < port <= 0xFFFF:
            return [Ignored(f"client.reconnect to {message.host!r}:{message.port}, which is no address")]
        return [ReconnectTo(host, port, float(min(message.wait_seconds, MAX_RECONNECT_WAIT)))]

    # -- the rest --------------------------------------------------------------------------

    def _space_problem(self, extranonce1: bytes, extranonce2_size: int) -> str | None:
        if extranonce2_size < self.min_extranonce2_size:
            return (
                f"the pool gives {extranonce2_size} extranonce2 bytes; we need {self.min_extranonce2_size}"
                " (our channel bytes and what a miner rolls)"
            )
        if len(extranonce1) + extranonce2_size > MAX_EXTRANONCE_SIZE:
            return (
                f"an extranonce of {len(extranonce1)} + {extranonce2_size} bytes is longer than {MAX_EXTRANONCE_SIZE}"
            )
        return None

    def _request(self, method: str) -> int:
        request_id = self._next_id
        self._next_id += 1
        self._requests[request_id] = method
        return request_id

    def _fatal(self, reason: str) -> list[Sv1Action]:
        self.phase = Sv1Phase.CLOSED
        return [Fatal(reason)]


def _error_text(error: object) -> str:
    """A pool's error as one short string, ``"24 Unauthorized worker"``."""
    parsed = parse_error(error)
    if parsed is None:
        return "no reason given"
    return f"{parsed[0]} {parsed[1]}"
