"""Sv1MiningDevice: a CPU miner speaking Stratum V1, for tests, benchmarks and the demo.

It does what a cgminer-style SV1 device does on one connection: ``mining.configure`` with
BIP310 version rolling (optional), ``mining.subscribe``, then ``mining.extranonce.subscribe``
(optional), ``mining.authorize`` and ``mining.suggest_difficulty`` (optional); it follows
``mining.set_difficulty``, ``mining.notify``, ``mining.set_extranonce``,
``mining.set_version_mask`` and ``client.reconnect``, searches nonces on the CPU in short slices
(so the reactor keeps serving) and submits every hash that meets its share target.  Jobs are
assembled as PROTOCOL.md §6 says (coinbase, merkle root, header); the SV1 side of the mapping is
§8.  It counts what the pool answered in the SV2 device's :class:`DeviceStats`.
Test equipment: it hashes in Python, a few hundred thousand hashes a second at best.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from sv2proxy import __version__
from sv2proxy.bitcoin.hashing import merkle_root_from_path, sha256d
from sv2proxy.bitcoin.target import difficulty_to_target, target_from_nbits
from sv2proxy.errors import ProtocolError
from sv2proxy.link.framed import peer_text
from sv2proxy.sv1 import (
    BIP320_MASK,
    LineBuffer,
    LineTooLong,
    Notification,
    Notify,
    Reconnect,
    Request,
    Response,
    SetDifficulty,
    SetExtranonce,
    SetVersionMask,
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
    suggest_difficulty_request,
)
from sv2proxy.testing.device import NONCES_PER_SLICE, DeviceFactoryBase, DeviceStats

log = Logger()

USER_AGENT = f"sv2proxy-cpu/{__version__}"
#: Seconds from connecting until ``mining.authorize`` must have been answered.
SETUP_TIMEOUT = 30.0

# The header's last 16 bytes: the end of the merkle root, ntime, nbits, nonce (all LE).
_TAIL = struct.Struct("<4sII")
_NONCE_SPACE = 1 << 32


@dataclass(frozen=True, slots=True)
class _Work:
    """A ``mining.notify`` bound to what was in force when it arrived.

    As in cgminer, ``mining.set_difficulty`` and ``mining.set_extranonce`` reach the device's
    work only through the next notify, so each job keeps its own target and extranonce1.
    """

    notify: Notify
    extranonce1: bytes
    extranonce2_size: int
    target: int
    network_target: int


def _spread_bits(counter: int, mask: int) -> int:
    """The bits of ``counter`` laid into the set bits of ``mask``, lowest first (x86 PDEP).

    Counting 0, 1, 2, ... walks every value a version-rolling mask allows, contiguous or not.
    """
    bits = 0
    while mask and counter:
        low = mask & -mask
        if counter & 1:
            bits |= low
        counter >>= 1
        mask ^= low
    return bits


def _error_text(error: object) -> str:
    """A pool's error reply as one short string, ``"21 Job not found"``."""
    parsed = parse_error(error)
    if parsed is None:
        return "refused"
    code, message = parsed
    return f"{code} {message}"


class Sv1MiningDevice(Protocol):
    """One SV1 device on one connection; ``factory`` is a :class:`Sv1MiningDeviceFactory`."""

    factory: Sv1MiningDeviceFactory

    def __init__(self) -> None:
        self.stats = DeviceStats()
        #: From the subscription or the last ``mining.set_extranonce``: what the next job uses.
        self.extranonce1: bytes | None = None
        self.extranonce2_size = 0
        #: The last ``mining.set_difficulty`` (stratum's default is 1); it applies from the next job.
        self.difficulty = 1.0
        #: The job being mined and its share target.
        self.job: Notify | None = None
        self.target = 0
        #: The negotiated version-rolling mask; None when the pool did not agree to rolling.
        self.version_mask: int | None = None
        self.authorized = False
        self.reconnects: list[Reconnect] = []
        self._lines = LineBuffer()
        self._request_ids = itertools.count(1)
        self._requests: dict[int, str] = {}
        self._next_target = difficulty_to_target(self.difficulty)
        self._work: _Work | None = None
        self._extranonce2_counter: Iterator[int] = itertools.count()
        self._extranonce2 = 0
        self._nonce = 0
        self._version_roll = 0
        self._block_prev_hash: bytes | None = None  # set while waiting out a found block
        self._mining = False
        self._slice: IDelayedCall | None = None
        self._setup_timer: IDelayedCall | None = None

    # -- protocol ------------------------------------------------------------------------

    def connectionMade(self) -> None:  # noqa: N802
        factory = self.factory
        self._setup_timer = factory.clock.callLater(factory.setup_timeout, self._setup_expired)
        if factory.version_rolling:
            self._send("mining.configure", lambda i: configure_request(i, BIP320_MASK))
        self._send("mining.subscribe", lambda i: subscribe_request(i, factory.user_agent))

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        try:
            lines = self._lines.feed(data)
        except LineTooLong as e:
            self._drop(f"the pool sent an over-long line: {e}")
            return
        for line in lines:
            transport = self.transport
            if transport is None or getattr(transport, "disconnecting", False):
                return
            self._line_received(line)

    def connectionLost(self, reason: object = None) -> None:  # noqa: N802
        self._mining = False
        for call in (self._slice, self._setup_timer):
            if call is not None and call.active():
                call.cancel()
        self._slice = self._setup_timer = None
        self.factory.lost(self)

    def _line_received(self, line: bytes) -> None:
        try:
            message = parse_message(line)
        except ProtocolError as e:
            log.warn("skipping a line from the pool {peer}: {error}", peer=peer_text(self.transport), error=str(e))
            return
        if isinstance(message, Response):
            self._response_received(message)
            return
        if isinstance(message, Request):
            # Some pools put an id on their notifications; cgminer goes by the method alone.
            message = Notification(message.method, message.params)
        try:
            notification = parse_notification(message)
        except ProtocolError as e:
            log.warn("skipping {method} from the pool: {error}", method=message.method, error=str(e))
            return
        if isinstance(notification, Notify):
            self._notify_received(notification)
        elif isinstance(notification, SetDifficulty):
            self.difficulty = notification.difficulty
            self._next_target = difficulty_to_target(notification.difficulty)
        elif isinstance(notification, SetExtranonce):
            self.extranonce1 = notification.extranonce1
            self.extranonce2_size = notification.extranonce2_size
        elif isinstance(notification, SetVersionMask):
            if self.version_mask is None:
                log.warn("skipping mining.set_version_mask: version rolling was not negotiated")
            else:
                # BIP310: the new mask holds at once, for the job being mined too.
                self.version_mask = notification.mask & BIP320_MASK
        elif isinstance(notification, Reconnect):
            self._reconnect_received(notification)

    def _response_received(self, response: Response) -> None:
        method = self._requests.pop(response.id, None) if isinstance(response.id, int) else None
        if method is None:
            log.warn("skipping a response to no request of ours: id={id!r}", id=response.id)
            return
        refused = response.error is not None or response.result is False
        if method == "mining.submit":
            if refused:
                self.stats.rejections.append(_error_text(response.error))
            else:
                self.stats.shares_acknowledged += 1
            self.factory.changed(self)
        elif method == "mining.configure":
            self._configured(None if refused else response.result, response.error)
        elif method == "mining.subscribe":
            self._subscribed(None if refused else response.result, response.error)
        elif method == "mining.authorize":
            if refused:
                self._drop(f"the pool refused the worker {self.factory.username!r}: {_error_text(response.error)}")
                return
            self.authorized = True
            if self._setup_timer is not None and self._setup_timer.active():
                self._setup_timer.cancel()
            self._setup_timer = None
            self._start()
            self.factory.changed(self)
        elif refused:
            log.info("the pool refused {method}: {error}", method=method, error=_error_text(response.error))

    def _configured(self, result: Any, error: object) -> None:
        mask = None
        if error is None:
            try:
                mask = parse_configure_result(result)
            except ProtocolError as e:
                log.warn("unreadable mining.configure result: {error}", error=str(e))
        if mask is not None and mask & BIP320_MASK:
            self.version_mask = mask & BIP320_MASK
        else:
            log.info("the pool does not allow version rolling; mining with the job's version")

    def _subscribed(self, result: Any, error: object) -> None:
        if error is not None or result is None:
            self._drop(f"the pool refused the subscription: {_error_text(error)}")
            return
        try:
            self.extranonce1, self.extranonce2_size = parse_subscribe_result(result)
        except ProtocolError as e:
            self._drop(f"unreadable mining.subscribe result: {e}")
            return
        factory = self.factory
        if factory.extranonce_subscribe:
            self._send("mining.extranonce.subscribe", extranonce_subscribe_request)
        self._send("mining.authorize", lambda i: authorize_request(i, factory.username, factory.password))
        if factory.suggest_difficulty is not None:
            difficulty = factory.suggest_difficulty
            self._send("mining.suggest_difficulty", lambda i: suggest_difficulty_request(i, difficulty))
        factory.opened(self)

    def _notify_received(self, notify: Notify) -> None:
        if self.extranonce1 is None:
            log.warn("skipping mining.notify: the subscription has not been answered")
            return
        try:
            network_target = target_from_nbits(notify.nbits)
        except ValueError as e:
            log.warn("skipping mining.notify {job_id}: {error}", job_id=notify.job_id, error=str(e))
            return
        self.stats.jobs += 1
        if self._block_prev_hash is not None and (notify.clean_jobs or notify.prev_hash != self._block_prev_hash):
            self._block_prev_hash = None
        self._work = _Work(notify, self.extranonce1, self.extranonce2_size, self._next_target, network_target)
        self.job, self.target = notify, self._next_target
        # A fresh extranonce2 per job: a pool that re-sends the same work under a new job id
        # must not see the same header twice.
        self._extranonce2 = next(self._extranonce2_counter)
        self._nonce = 0
        self._version_roll = 0
        self._start()
        self.factory.changed(self)

    def _reconnect_received(self, reconnect: Reconnect) -> None:
        self.reconnects.append(reconnect)
        self.factory.changed(self)
        on_reconnect = self.factory.on_reconnect
        if on_reconnect is not None:
            on_reconnect(reconnect.host, reconnect.port, reconnect.wait_seconds)
        elif self.transport is not None:
            log.info("the pool asked the device to reconnect; closing the connection")
            self.transport.loseConnection()

    def _send(self, method: str, build: Callable[[int], bytes]) -> None:
        assert self.transport is not None, "a request before the connection was made"
        request_id = next(self._request_ids)
        self._requests[request_id] = method
        self.transport.write(build(request_id))

    def _drop(self, why: str) -> None:
        log.error("closing the connection to {peer}: {why}", peer=peer_text(self.transport), why=why)
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]  # ITCPTransport's

    def _setup_expired(self) -> None:
        self._setup_timer = None
        self._drop(f"the pool did not authorize the worker within {self.factory.setup_timeout} s")

    # -- mining --------------------------------------------------------------------------

    def _start(self) -> None:
        if self._mining or not self.authorized or self._work is None or self._block_prev_hash is not None:
            return
        self._mining = True
        self._slice = self.factory.clock.callLater(0, self._mine_slice)

    def _mine_slice(self) -> None:
        self._slice = None
        work = self._work
        if not self._mining or work is None or self._block_prev_hash is not None or self.transport is None:
            self._mining = False
            return
        notify = work.notify
        size = work.extranonce2_size
        extranonce2 = (self._extranonce2 % (1 << 8 * size)).to_bytes(size, "little")
        coinbase = notify.coinbase_prefix + work.extranonce1 + extranonce2 + notify.coinbase_suffix
        root = merkle_root_from_path(sha256d(coinbase), notify.merkle_path)
        mask = self.version_mask
        version, version_bits = notify.version, None
        if mask is not None:
            version_bits = _spread_bits(self._version_roll, mask)
            version = (version & ~mask) | version_bits
        # The first 64 header bytes are fixed for the slice: hash them once, copy per nonce.
        midstate = sha256(struct.pack("<I", version) + notify.prev_hash + root[:28])
        tail = _TAIL.pack(root[28:], notify.ntime, notify.nbits)
        start = self._nonce
        step = self.factory.nonces_per_slice
        for nonce in range(start, min(start + step, _NONCE_SPACE)):
            inner = midstate.copy()
            inner.update(tail + nonce.to_bytes(4, "little"))
            digest = sha256(inner.digest()).digest()
            value = int.from_bytes(digest, "little")
            if value <= work.target or value <= work.network_target:
                self._submit(notify, extranonce2, nonce, version_bits)
                if value <= work.network_target:
                    self.stats.blocks.append(digest)
                    # A block makes this prev hash stale: wait for clean jobs instead of
                    # flooding the pool with rival blocks (on regtest every other hash is one).
                    self._block_prev_hash = notify.prev_hash
                    self._mining = False
                    self.factory.changed(self)
                    return
        self._advance(start + step, mask)
        self._slice = self.factory.clock.callLater(self.factory.pause, self._mine_slice)

    def _advance(self, next_nonce: int, mask: int | None) -> None:
        """Move to the next slice: the next rolled version over the same nonces, else new nonces."""
        if mask:
            self._version_roll += 1
            if self._version_roll < 1 << mask.bit_count():
                return
            self._version_roll = 0
        self._nonce = next_nonce
        if self._nonce >= _NONCE_SPACE:
            self._nonce = 0
            self._extranonce2 = next(self._extranonce2_counter)

    def _submit(self, notify: Notify, extranonce2: bytes, nonce: int, version_bits: int | None) -> None:
        self.stats.shares_submitted += 1
        username = self.factory.username
        self._send(
            "mining.submit",
            lambda i: submit_request(i, username, notify.job_id, extranonce2, notify.ntime, nonce, version_bits),
        )


class Sv1MiningDeviceFactory(DeviceFactoryBase):
    """Builds the device; ``when(predicate)`` fires once its stats satisfy ``predicate``."""

    protocol = Sv1MiningDevice
    noisy = False

    def __init__(
        self,
        clock: IReactorTime,
        username: str = "device",
        password: str = "",
        *,
        version_rolling: bool = True,
        extranonce_subscribe: bool = False,
        suggest_difficulty: float | None = None,
        user_agent: str | None = USER_AGENT,
        pause: float = 0.0,
        nonces_per_slice: int = NONCES_PER_SLICE,
        setup_timeout: float = SETUP_TIMEOUT,
        on_reconnect: Callable[[str | None, int | None, int], object] | None = None,
    ) -> None:
        self.clock = clock
        self.username = username
        self.password = password
        self.version_rolling = version_rolling
        self.extranonce_subscribe = extranonce_subscribe
        self.suggest_difficulty = suggest_difficulty
        self.user_agent = user_agent
        # The hash-rate cap: ``nonces_per_slice`` hashes, then ``pause`` seconds (on regtest about
        # every other hash is a block, so an uncapped device floods the pool with shares).
        self.pause = pause
        self.nonces_per_slice = nonces_per_slice
        self.setup_timeout = setup_timeout
        #: Called with ``client.reconnect``'s (host, port, wait); None closes the connection.
        self.on_reconnect = on_reconnect
        super().__init__()
        self.device: Sv1MiningDevice | None = None

