"""The protocol spoken with one Stratum V1 miner: JSON lines in front of an extended channel.

A V1 connection is one extended channel of the same pool every V2 miner uses (PROTOCOL.md §8):
its extranonce1 is the channel's extranonce prefix and its extranonce2 the bytes the channel
rolls.  The pool talks to it in Stratum V2 messages through :meth:`sendMessage`, as it does to
any connection, and this protocol translates them: NewExtendedMiningJob + SetNewPrevHash become
``mining.notify``, SetTarget ``mining.set_difficulty``, SetExtranoncePrefix
``mining.set_extranonce``.  Each ``mining.submit`` becomes a SubmitSharesExtended whose result
answers the miner at once.

Order matters to miners (FIELD-NOTES.md): the extranonce is fixed at ``mining.subscribe`` but
the user (a solo pool's payout) only comes with ``mining.authorize``, so the extranonce value is
reserved first and the channel opened at authorization; a new difficulty is followed at once by
a fresh job made for it (``clean_jobs``), so shares in flight are judged by the difficulty their
job was sent with.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from sv2proxy.bitcoin.target import MAX_TARGET, target_to_difficulty, target_to_u256, u256_to_target
from sv2proxy.codec.common import Reconnect
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import (
    CloseChannel,
    NewExtendedMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    SetExtranoncePrefix,
    SetNewPrevHash,
    SetTarget,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSharesSuccess,
)
from sv2proxy.errors import PoolError
from sv2proxy.link.framed import peer_text, send_at_once
from sv2proxy.link.ratelimit import TokenBucket
from sv2proxy.pool.vardiff import HASHES_PER_DIFFICULTY
from sv2proxy.server.mining import MiningService
from sv2proxy.sv1 import (
    ERROR_DUPLICATE,
    ERROR_JOB_NOT_FOUND,
    ERROR_LOW_DIFFICULTY,
    ERROR_NOT_SUBSCRIBED,
    ERROR_OTHER,
    ERROR_UNAUTHORIZED,
    Authorize,
    Configure,
    ExtranonceSubscribe,
    LineBuffer,
    LineTooLong,
    Request,
    Submit,
    Subscribe,
    SuggestDifficulty,
    Sv1Error,
    configure_result,
    error,
    negotiate_version_mask,
    notify,
    parse_message,
    parse_request,
    reconnect,
    result,
    set_difficulty,
    set_extranonce,
    set_version_mask,
    subscribe_result,
)

log = Logger()

#: Seconds after connecting for ``mining.subscribe`` to arrive.
SUBSCRIBE_TIMEOUT = 10.0
#: Seconds after subscribing for a ``mining.authorize`` that opens the channel: until then the
#: connection holds an extranonce value that nobody mines with.
AUTHORIZE_TIMEOUT = 60.0
#: Seconds a miner may leave our writes unread before it is dropped (see server/miner.py).
STALLED_READER_TIMEOUT = 30.0
#: Jobs remembered per connection to rebuild the version of late shares.
KEPT_JOBS = 64

#: Stratum V2 share errors as the V1 codes miners know.
_SHARE_ERRORS = {
    "stale-share": (ERROR_JOB_NOT_FOUND, "stale job"),
    "invalid-job-id": (ERROR_JOB_NOT_FOUND, "job not found"),
    "duplicate-share": (ERROR_DUPLICATE, "duplicate share"),
    "difficulty-too-low": (ERROR_LOW_DIFFICULTY, "low difficulty share"),
    "invalid-channel-id": (ERROR_UNAUTHORIZED, "unauthorized worker"),
}


#: Worker names one connection may authorize (each is counted and shown to the operator).
MAX_WORKERS_PER_CONNECTION = 64


class Sv1MinerProtocol(Protocol):
    """One Stratum V1 miner: subscribe, (configure), authorize, then notify/submit."""

    factory: Sv1MinerFactory

    def __init__(self) -> None:
        self._lines = LineBuffer()
        self._bucket: TokenBucket | None = None
        self._deadline: IDelayedCall | None = None
        self._stall_deadline: IDelayedCall | None = None
        self.closing = False
        self.user_agent: str | None = None
        #: The reserved extranonce value and the extranonce1 the miner was given.
        self._value: int | None = None
        self.extranonce1: bytes | None = None
        self.extranonce_subscribed = False
        self.version_mask: int | None = None
        self.workers: set[str] = set()
        self.channel_id: int | None = None
        self._opening: list[tuple[object, str]] = []  # authorize requests waiting for the channel
        self._suggested: float | None = None
        self._jobs: OrderedDict[int, NewExtendedMiningJob] = OrderedDict()
        self._prev: SetNewPrevHash | None = None
        self._difficulty: float | None = None  # what the miner was last told
        self._mask_in_effect: int | None = None  # the version mask the miner was last told
        self._sequence = 0

    @property
    def mining(self) -> MiningService:
        return self.factory.mining

    @property
    def extranonce2_size(self) -> int:
        return self.factory.extranonce2_size

    # -- connection ---------------------------------------------------------------------

    def connectionMade(self) -> None:  # noqa: N802
        send_at_once(self.transport)
        clock = self.mining.clock
        self._deadline = clock.callLater(SUBSCRIBE_TIMEOUT, self._give_up, "no mining.subscribe")
        self.transport.registerProducer(self, True)

    def pauseProducing(self) -> None:  # noqa: N802
        if self._stall_deadline is None:
            self._stall_deadline = self.mining.clock.callLater(
                STALLED_READER_TIMEOUT, self._give_up, "it stopped reading what we send"
            )

    def resumeProducing(self) -> None:  # noqa: N802
        _cancel(self._stall_deadline)
        self._stall_deadline = None

    def stopProducing(self) -> None:  # noqa: N802
        self.resumeProducing()

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        self.closing = True
        _cancel(self._deadline)
        _cancel(self._stall_deadline)
        self.mining.connection_lost(self)

    def _give_up(self, why: str) -> None:
        # Only the deadline that fired is spent; connectionLost cancels the other.
        if self._deadline is not None and not self._deadline.active():
            self._deadline = None
        if self._stall_deadline is not None and not self._stall_deadline.active():
            self._stall_deadline = None
        log.warn("dropping Stratum V1 miner {peer}: {why}", peer=peer_text(self.transport), why=why)
        self.transport.abortConnection()

    def _write(self, line: bytes) -> None:
        if not self.closing:
            self.transport.write(line)

    def _close(self, why: str) -> None:
        log.info("closing Stratum V1 miner {peer}: {why}", peer=peer_text(self.transport), why=why)
        self.closing = True
        self.transport.loseConnection()

    # -- from the miner -------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        try:
            lines = self._lines.feed(data)
        except LineTooLong as e:
            log.warn("dropping Stratum V1 miner {peer}: {why}", peer=peer_text(self.transport), why=e)
            self.transport.abortConnection()
            return
        now = self.mining.clock.seconds()
        for line in lines:
            if self.closing:
                return
            bucket = self._bucket
            if bucket is None:
                rate = self.factory.max_messages_per_second
                bucket = self._bucket = TokenBucket(rate, 2 * rate, now)
            if not bucket.take(now):
                log.warn(
                    "dropping Stratum V1 miner {peer}: more than {rate:g} messages per second",
                    peer=peer_text(self.transport),
                    rate=bucket.rate,
                )
                self.transport.abortConnection()
                return
            self._line_received(line)

    def _line_received(self, line: bytes) -> None:
        try:
            message = parse_message(line)
            if not isinstance(message, Request):
                return  # a miner's notifications and responses ask nothing of us
            self._request(message.id, parse_request(message))
        except Sv1Error as e:
            # Garbage is answered, never fatal: the miner may still have good shares to send.
            self._write(error(e.request_id, e.code, e.message))

    def _request(self, request_id: object, request: object) -> None:
        if isinstance(request, Submit):
            self._submit(request_id, request)
        elif isinstance(request, Subscribe):
            self._subscribe(request_id, request)
        elif isinstance(request, Authorize):
            self._authorize(request_id, request)
        elif isinstance(request, Configure):
            self._configure(request_id, request)
        elif isinstance(request, ExtranonceSubscribe):
            self.extranonce_subscribed = True
            self._write(result(request_id, True))
        elif isinstance(request, SuggestDifficulty):
            self._suggest_difficulty(request_id, request.difficulty)
        else:  # pragma: no cover - parse_request returns only the types above
            raise Sv1Error(ERROR_OTHER, f"unsupported request {type(request).__name__}", request_id)

    def _subscribe(self, request_id: object, request: Subscribe) -> None:
        if self.extranonce1 is None:
            try:
                value = self.mining.reserve_extranonce(self)
            except PoolError as e:
                self._write(error(request_id, ERROR_OTHER, f"no room for another miner: {e}"))
                return
            try:
                self.extranonce1 = self.mining.manager.prefix_for(value, self.extranonce2_size)
            except ValueError as e:
                # The extranonce space left by an upstream pool is too small for our miners.
                self.mining.connection_lost(self)
                self._write(error(request_id, ERROR_OTHER, f"cannot serve this miner now: {e}"))
                return
            self._value = value
            self.user_agent = request.user_agent
            _cancel(self._deadline)
            self._deadline = self.mining.clock.callLater(AUTHORIZE_TIMEOUT, self._give_up, "no mining.authorize")
            log.info(
                "Stratum V1 miner {peer} subscribed: agent={agent!r} extranonce1={extranonce1}",
                peer=peer_text(self.transport),
                agent=request.user_agent,
                extranonce1=self.extranonce1.hex(),
            )
        assert self.extranonce1 is not None
        subscription = f"{id(self) & 0xFFFFFFFF:08x}"
        self._write(subscribe_result(request_id, subscription, self.extranonce1, self.extranonce2_size))

    def _configure(self, request_id: object, request: Configure) -> None:
        asked = request.version_rolling()
        if asked is not None:
            mask, min_bit_count = asked
            self.version_mask = negotiate_version_mask(mask, min_bit_count)
        self._write(configure_result(request_id, request, self.version_mask))

    def _authorize(self, request_id: object, request: Authorize) -> None:
        if self.extranonce1 is None:
            self._write(error(request_id, ERROR_NOT_SUBSCRIBED, "not subscribed"))
            return
        username = request.username
        if self.channel_id is not None:
            # More workers on one connection share its channel (one extranonce1, so one channel);
            # their submits name them.  In a solo pool a worker must pay the channel's address.
            if not self.mining.same_payout(self.channel_id, username):
                self._write(error(request_id, ERROR_UNAUTHORIZED, "one payout address per connection"))
                return
            if username not in self.workers and len(self.workers) >= MAX_WORKERS_PER_CONNECTION:
                # Each name is counted and shown to the operator: a connection may not mint them.
                limit = f"at most {MAX_WORKERS_PER_CONNECTION} workers per connection"
                self._write(error(request_id, ERROR_UNAUTHORIZED, limit))
                return
            self.workers.add(username)
            self._write(result(request_id, True))
            return
        self._opening.append((request_id, username))
        if len(self._opening) > 1:
            return  # the first authorize opens the channel; the others wait for its answer
        self._open(username)

    def _open(self, username: str) -> None:
        difficulty = self._suggested or self.mining.manager.settings.vardiff.min_difficulty
        spm = self.mining.manager.settings.vardiff.shares_per_minute
        request = OpenExtendedMiningChannel(
            request_id=self._sequence,
            user_identity=username,
            nominal_hash_rate=difficulty * HASHES_PER_DIFFICULTY * spm / 60.0,
            max_target=target_to_u256(MAX_TARGET),
            min_extranonce_size=self.extranonce2_size,
        )
        self.mining.open_channel(
            self,
            request,
            grouped=False,
            rollable_size=self.extranonce2_size,
            reserved=self._value,
            difficulty=self._suggested,
        )

    def _suggest_difficulty(self, request_id: object, difficulty: float) -> None:
        self._suggested = difficulty
        if self.channel_id is not None:
            self.mining.suggest_difficulty(self, self.channel_id, difficulty)
        self._write(result(request_id, True))

    def _submit(self, request_id: object, share: Submit) -> None:
        if self.extranonce1 is None:
            self._write(error(request_id, ERROR_NOT_SUBSCRIBED, "not subscribed"))
            return
        if self.channel_id is None or share.worker not in self.workers:
            self._write(error(request_id, ERROR_UNAUTHORIZED, f"unauthorized worker {share.worker!r}"))
            return
        if len(share.extranonce2) != self.extranonce2_size:
            self._write(
                error(
                    request_id,
                    ERROR_OTHER,
                    f"extranonce2 must be {self.extranonce2_size} bytes, got {len(share.extranonce2)}",
                )
            )
            return
        try:
            job_id = int(share.job_id)
        except ValueError:
            self._write(error(request_id, ERROR_JOB_NOT_FOUND, "job not found"))
            return
        job = self._jobs.get(job_id)
        version = job.version if job is not None else 0
        if share.version_bits is not None:
            mask = self._mask_in_effect
            if not mask:
                self._write(error(request_id, ERROR_OTHER, "version rolling is not allowed (mining.configure)"))
                return
            if share.version_bits & ~mask:
                self._write(
                    error(request_id, ERROR_OTHER, f"version bits {share.version_bits:08x} outside the mask {mask:08x}")
                )
                return
            version = (version & ~mask) | share.version_bits
        self._sequence = (self._sequence + 1) & 0xFFFFFFFF
        answer = self.mining.submit(
            self,
            SubmitSharesExtended(
                self.channel_id, self._sequence, job_id, share.nonce, share.ntime, version, share.extranonce2
            ),
            worker=share.worker,
        )
        if answer is None:
            self._write(error(request_id, ERROR_UNAUTHORIZED, "unauthorized worker"))
        elif answer.accepted:
            # Acknowledged once the share is durable in the store (at once without one).
            self.mining.when_durable(partial(self._write, result(request_id, True)))
        else:
            code, text = _SHARE_ERRORS.get(answer.error_code or "", (ERROR_OTHER, answer.error_code or "rejected"))
            self._write(error(request_id, code, text))

    # -- from the pool (Stratum V2 messages for our channel) ---------------------------------

    def sendMessage(self, message: Message) -> None:  # noqa: N802 -- what the pool calls on owners
        if self.closing:
            return
        if isinstance(message, NewExtendedMiningJob):
            self._new_job(message)
        elif isinstance(message, SetNewPrevHash):
            self._new_prev_hash(message)
        elif isinstance(message, SetTarget):
            self._new_target(message)
        elif isinstance(message, SubmitSharesSuccess | SubmitSharesError):
            pass  # every submit was answered when it was judged
        elif isinstance(message, OpenExtendedMiningChannelSuccess):
            self._opened(message)
        elif isinstance(message, OpenMiningChannelError):
            self._refused(message)
        elif isinstance(message, SetExtranoncePrefix):
            self._new_extranonce(message.extranonce_prefix)
        elif isinstance(message, CloseChannel):
            self._send_away(f"the pool closed the channel ({message.reason_code})")
        elif isinstance(message, Reconnect):
            self._reconnect(message)
        else:
            log.debug("nothing to tell a Stratum V1 miner about {message}", message=type(message).__name__)

    def _reconnect(self, message: Reconnect) -> None:
        """The operator moves miners: ``client.reconnect`` to a new pool, or back here.

        "Back here" is a hang-up: every firmware then reconnects to the address it was
        configured with, while the address we see locally may be unreachable to it (NAT, a
        load balancer) or refused (cgminer follows only a host in the pool's own domain).
        """
        if not message.new_host and not message.new_port:
            self._close("the operator asked miners to reconnect")
            return
        here = self.transport.getHost()
        host = message.new_host or getattr(here, "host", "")
        port = message.new_port or getattr(here, "port", 0)
        self._write(reconnect(host, port))

    def _opened(self, success: OpenExtendedMiningChannelSuccess) -> None:
        self.channel_id = success.channel_id
        self._value = None
        _cancel(self._deadline)
        self._deadline = None
        waiting, self._opening = self._opening, []
        for request_id, username in waiting:
            self.workers.add(username)
            self._write(result(request_id, True))
        log.info(
            "Stratum V1 miner {peer} authorized as {user!r}: channel {channel_id}",
            peer=peer_text(self.transport),
            user=waiting[0][1] if waiting else "",
            channel_id=success.channel_id,
        )
        self._mask_in_effect = self.version_mask
        self._difficulty = target_to_difficulty(u256_to_target(success.target))
        self._write(set_difficulty(self._difficulty))
        if success.extranonce_prefix != self.extranonce1:
            self._new_extranonce(success.extranonce_prefix)

    def _refused(self, refusal: OpenMiningChannelError) -> None:
        waiting, self._opening = self._opening, []
        for request_id, username in waiting:
            log.info("Stratum V1 miner {user!r} refused: {code}", user=username, code=refusal.error_code)
            self._write(error(request_id, ERROR_UNAUTHORIZED, f"unauthorized: {refusal.error_code}"))

    def _new_job(self, job: NewExtendedMiningJob) -> None:
        self._jobs[job.job_id] = job
        while len(self._jobs) > KEPT_JOBS:
            self._jobs.popitem(last=False)
        if job.min_ntime is not None and self._prev is not None:
            self._notify(job, self._prev, job.min_ntime, False)

    def _new_prev_hash(self, prev: SetNewPrevHash) -> None:
        self._prev = prev
        job = self._jobs.get(prev.job_id)
        if job is None:
            log.warn("SetNewPrevHash for unknown job {job_id} on a Stratum V1 channel", job_id=prev.job_id)
            return
        self._notify(job, prev, prev.min_ntime, True)

    def _notify(self, job: NewExtendedMiningJob, prev: SetNewPrevHash, ntime: int, clean: bool) -> None:
        """``mining.notify``, preceded by what the miner must know to mine it right.

        The difficulty the pool will judge this job by (its own target) and whether it may roll
        the version go first; a job that changes the difficulty is a clean one, so the miner
        drops work it would judge by the wrong difficulty.
        """
        difficulty = self._job_difficulty(job.job_id)
        if difficulty is not None and difficulty != self._difficulty:
            self._difficulty = difficulty
            self._write(set_difficulty(difficulty))
            clean = True
        if self.version_mask:
            mask = self.version_mask if job.version_rolling_allowed else 0
            if mask != self._mask_in_effect:
                self._mask_in_effect = mask
                self._write(set_version_mask(mask))
        self._write(
            notify(
                str(job.job_id),
                prev.prev_hash,
                job.coinbase_tx_prefix,
                job.coinbase_tx_suffix,
                job.merkle_path,
                job.version,
                prev.nbits,
                ntime,
                clean,
            )
        )

    def _new_target(self, message: SetTarget) -> None:
        if target_to_difficulty(u256_to_target(message.maximum_target)) != self._difficulty:
            # The new difficulty goes out with a job made for it, right away (without current
            # work, with the next job there is: every notify carries its job's difficulty).
            self.mining.refresh_channel(self, message.channel_id)

    def _job_difficulty(self, job_id: int) -> float | None:
        """The difficulty of the target the pool gave ``job_id`` on our channel."""
        channel = self.mining.manager.channels.get(self.channel_id or 0)
        if channel is None:
            return None
        job = channel.jobs.lookup(job_id)
        target = getattr(job, "target", None)
        return target_to_difficulty(target) if target else None

    def _new_extranonce(self, prefix: bytes) -> None:
        if prefix == self.extranonce1:
            return
        self.extranonce1 = prefix
        if self.extranonce_subscribed:
            self._write(set_extranonce(prefix, self.extranonce2_size))
        else:
            self._send_away("its extranonce changed and it cannot be told (no mining.extranonce.subscribe)")

    def _send_away(self, why: str) -> None:
        """Close: the miner reconnects to the URL it was configured with and subscribes afresh.

        (``client.reconnect`` would have to name our address, which behind NAT is not the one
        the miner knows, and some firmware refuses a host other than its pool's.)
        """
        self._close(why)


def _cancel(call: IDelayedCall | None) -> None:
    if call is not None and call.active():
        call.cancel()


class Sv1MinerFactory(Factory):
    """Builds a :class:`Sv1MinerProtocol` per accepted connection."""

    protocol = Sv1MinerProtocol
    noisy = False

    def __init__(
        self, mining: MiningService, extranonce2_size: int = 4, max_messages_per_second: float = 200.0
    ) -> None:
        self.mining = mining
        self.extranonce2_size = extranonce2_size
        self.max_messages_per_second = max_messages_per_second
