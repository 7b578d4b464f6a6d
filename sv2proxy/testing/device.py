"""MiningDevice: a CPU miner speaking Stratum V2, for tests, benchmarks and the demo.

It does what a real device does on one channel: SetupConnection, OpenStandard/Extended
channel, follows NewMiningJob / NewExtendedMiningJob / SetNewPrevHash / SetTarget, searches
nonces on the CPU in short slices (so the reactor keeps serving), and submits every hash that
meets its target.  It counts what the pool answered and which of its shares were blocks.
Test equipment: it hashes in Python, a few hundred thousand hashes a second at best.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import ClientFactory
from twisted.logger import Logger

from sv2proxy.bitcoin.hashing import merkle_root_from_path
from sv2proxy.bitcoin.target import MAX_TARGET, target_from_nbits, target_to_u256
from sv2proxy.codec.common import Reconnect, SetupConnection, SetupConnectionError, SetupConnectionSuccess
from sv2proxy.codec.constants import REQUIRES_VERSION_ROLLING
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import (
    NewExtendedMiningJob,
    NewMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
    SetExtranoncePrefix,
    SetNewPrevHash,
    SetTarget,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSharesStandard,
    SubmitSharesSuccess,
)
from sv2proxy.link.framed import FramedProtocol

log = Logger()

_HEADER = struct.Struct("<I32s32sIII")
NONCES_PER_SLICE = 2_000


@dataclass
class DeviceStats:
    """What the device did and what the pool said."""

    shares_submitted: int = 0
    shares_acknowledged: int = 0  # counted by SubmitShares.Success
    rejections: list[str] = field(default_factory=list)
    blocks: list[bytes] = field(default_factory=list, repr=False)  # hashes of shares that met nbits
    jobs: int = 0
    reconnects: list[tuple[str, int]] = field(default_factory=list)  # Reconnect (host, port) received

    def __repr__(self) -> str:
        return (
            f"DeviceStats(submitted={self.shares_submitted}, acknowledged={self.shares_acknowledged},"
            f" rejections={self.rejections[:5]}{'...' if len(self.rejections) > 5 else ''},"
            f" blocks={len(self.blocks)}, jobs={self.jobs})"
        )


class MiningDevice(FramedProtocol):
    """One device with one channel; ``factory`` is a :class:`MiningDeviceFactory`."""

    factory: MiningDeviceFactory

    def __init__(self) -> None:
        self.stats = DeviceStats()
        self.channel_id: int | None = None
        self.target = 0
        self.extranonce_prefix = b""
        self._next_prefix: bytes | None = None
        self.extranonce_size = 0
        self._jobs: dict[int, Message] = {}
        self._job: Message | None = None
        self._prev: SetNewPrevHash | None = None
        self._nonce = 0
        self._extranonce = 0
        self._sequence = 0
        self._mining = False

    # -- protocol ------------------------------------------------------------------------

    def connectionMade(self) -> None:  # noqa: N802
        self.sendMessage(
            SetupConnection(0, 2, 2, REQUIRES_VERSION_ROLLING, "127.0.0.1", 0, "sv2proxy", "cpu", "1", "device")
        )

    def messageReceived(self, message: Message) -> None:  # noqa: N802
        if isinstance(message, SetupConnectionSuccess):
            self._open_channel()
        elif isinstance(message, SetupConnectionError | OpenMiningChannelError):
            log.error("the pool refused the device: {message!r}", message=message)
            self.transport.loseConnection()
        elif isinstance(message, OpenStandardMiningChannelSuccess | OpenExtendedMiningChannelSuccess):
            self.channel_id = message.channel_id
            self.target = int.from_bytes(message.target, "little")
            self.extranonce_prefix = message.extranonce_prefix
            self.extranonce_size = getattr(message, "extranonce_size", 0)
            self.factory.opened(self)
        elif isinstance(message, SetExtranoncePrefix) and message.channel_id == self.channel_id:
            # For the jobs sent after it (a proxy that failed over to another pool sends it).
            self._next_prefix = message.extranonce_prefix
        elif isinstance(message, NewMiningJob | NewExtendedMiningJob):
            if self._next_prefix is not None:
                self.extranonce_prefix, self._next_prefix = self._next_prefix, None
            self.stats.jobs += 1
            self._jobs[message.job_id] = message
            if message.min_ntime is not None and self._prev is not None:
                self._switch(message)
        elif isinstance(message, SetNewPrevHash):
            self._prev = message
            job = self._jobs.get(message.job_id)
            self._jobs = {message.job_id: job} if job is not None else {}
            if job is not None:
                self._switch(job)
        elif isinstance(message, SetTarget):
            self.target = int.from_bytes(message.maximum_target, "little")
        elif isinstance(message, SubmitSharesSuccess):
            self.stats.shares_acknowledged += message.new_submits_accepted_count
            self.factory.changed(self)
        elif isinstance(message, SubmitSharesError):
            self.stats.rejections.append(message.error_code)
            self.factory.changed(self)
        elif isinstance(message, Reconnect):
            # As a device does: stop, hang up, and leave the reconnecting to whoever drives it.
            self.stats.reconnects.append((message.new_host, message.new_port))
            self._mining = False
            self.factory.changed(self)
            self.transport.loseConnection()

    def connectionLost(self, reason: object = None) -> None:  # noqa: N802
        self._mining = False
        self.factory.lost(self)

    # -- mining --------------------------------------------------------------------------

    def _open_channel(self) -> None:
        max_target = target_to_u256(MAX_TARGET)
        user = self.factory.user
        if self.factory.extended:
            self.sendMessage(OpenExtendedMiningChannel(1, user, self.factory.hash_rate, max_target, 4))
        else:
            self.sendMessage(OpenStandardMiningChannel(1, user, self.factory.hash_rate, max_target))

    def _switch(self, job: Message) -> None:
        self._job = job
        self._nonce = 0
        if not self._mining:
            self._mining = True
            self.factory.clock.callLater(0, self._mine_slice)

    def _merkle_root(self, job: Message, extranonce: bytes) -> bytes:
        if isinstance(job, NewMiningJob):
            return job.merkle_root
        assert isinstance(job, NewExtendedMiningJob)
        coinbase = job.coinbase_tx_prefix + self.extranonce_prefix + extranonce + job.coinbase_tx_suffix
        return merkle_root_from_path(sha256(sha256(coinbase).digest()).digest(), job.merkle_path)

    def _mine_slice(self) -> None:
        job, prev = self._job, self._prev
        if not self._mining or job is None or prev is None or self.transport is None:
            self._mining = False
            return
        extranonce = self._extranonce.to_bytes(self.extranonce_size, "little") if self.extranonce_size else b""
        root = self._merkle_root(job, extranonce)
        ntime = max(prev.min_ntime, job.min_ntime or 0)
        network = target_from_nbits(prev.nbits)
        version = job.version
        start = self._nonce
        step = self.factory.nonces_per_slice
        for nonce in range(start, min(start + step, 1 << 32)):
            header = _HEADER.pack(version, prev.prev_hash, root, ntime, prev.nbits, nonce)
            digest = sha256(sha256(header).digest()).digest()
            value = int.from_bytes(digest, "little")
            if value <= self.target or value <= network:
                self._submit(job, nonce, ntime, version, extranonce)
                if value <= network:
                    self.stats.blocks.append(digest)
                    # A block makes this job stale: wait for the next prev hash instead of
                    # flooding the pool with rival blocks (on regtest every other hash is one).
                    self._mining = False
                    self.factory.changed(self)
                    return
        self._nonce = start + step
        if self._nonce >= 1 << 32:
            self._nonce = 0
            self._extranonce += 1
        self.factory.clock.callLater(self.factory.pause, self._mine_slice)

    def _submit(self, job: Message, nonce: int, ntime: int, version: int, extranonce: bytes) -> None:
        assert self.channel_id is not None
        self._sequence += 1
        self.stats.shares_submitted += 1
        if isinstance(job, NewExtendedMiningJob):
            self.sendMessage(
                SubmitSharesExtended(self.channel_id, self._sequence, job.job_id, nonce, ntime, version, extranonce)
            )
        else:
            self.sendMessage(SubmitSharesStandard(self.channel_id, self._sequence, job.job_id, nonce, ntime, version))


class DeviceFactoryBase(ClientFactory):
    """What every test device's factory offers: ``when(predicate)`` on the device's stats.

    The device calls :meth:`opened`, :meth:`changed` and :meth:`lost`; waiters fire with the
    stats once their predicate holds, or fail when the connection goes first.
    """

    noisy = False
    device: Any = None

    def __init__(self) -> None:
        self._waiters: list[tuple[Callable[[DeviceStats], bool], Deferred[DeviceStats]]] = []

    def opened(self, device: Any) -> None:
        self.device = device
        self.changed(device)

    def changed(self, device: Any) -> None:
        self.device = device
        still = []
        for predicate, waiter in self._waiters:
            if predicate(device.stats):
                waiter.callback(device.stats)
            else:
                still.append((predicate, waiter))
        self._waiters = still

    def lost(self, device: Any) -> None:
        waiters, self._waiters = self._waiters, []
        for _, waiter in waiters:
            waiter.errback(ConnectionError(f"the device lost its connection; stats {device.stats}"))

    def when(self, predicate: Callable[[DeviceStats], bool]) -> Deferred[DeviceStats]:
        """Fires with the stats once ``predicate(stats)`` holds."""
        waiter: Deferred[DeviceStats] = Deferred()
        if self.device is not None and predicate(self.device.stats):
            waiter.callback(self.device.stats)
        else:
            self._waiters.append((predicate, waiter))
        return waiter


class MiningDeviceFactory(DeviceFactoryBase):
    """Builds the device; ``when(predicate)`` fires once its stats satisfy ``predicate``."""

    protocol = MiningDevice
    noisy = False

    def __init__(
        self,
        clock: IReactorTime,
        user: str = "device",
        *,
        extended: bool = True,
        hash_rate: float = 1e5,
        pause: float = 0.0,
        nonces_per_slice: int = NONCES_PER_SLICE,
    ) -> None:
        self.clock = clock
        self.user = user
        self.extended = extended
        self.hash_rate = hash_rate
        # The hash-rate cap: ``nonces_per_slice`` hashes, then ``pause`` seconds (on regtest about
        # every other hash is a block, so an uncapped device floods the pool with shares).
        self.pause = pause
        self.nonces_per_slice = nonces_per_slice
        super().__init__()
        self.device: MiningDevice | None = None

