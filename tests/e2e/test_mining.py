"""A miner mines real shares through the daemon's service tree, over loopback and Noise.

The daemon is built by ``tap.makeService`` from a configuration file and started as twistd
would; work is handed to its mining service the way a job source does.  The test is the mining
device: it builds each header itself (coinbase, merkle root) and searches nonces on the CPU.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory

from sv2proxy.bitcoin.hashing import merkle_root_from_path, sha256d
from sv2proxy.codec import (
    NewExtendedMiningJob,
    NewMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
    SetNewPrevHash,
    SetupConnection,
    SetupConnectionSuccess,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSharesStandard,
    SubmitSharesSuccess,
)
from sv2proxy.codec.message import Message
from sv2proxy.events import ShareSubmitted
from sv2proxy.link import FramedProtocol, NoiseClientFactory
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.tap import Options, makeService

NBITS = 0x1D00FFFF
PATH = tuple(hashlib.sha256(bytes([i])).digest() for i in range(3))
ANY_TARGET = b"\xff" * 32


class Miner(FramedProtocol):
    """Collects messages; ``expect`` waits for the next one of a type."""

    def connectionMade(self) -> None:  # noqa: N802
        self.inbox: list[Message] = []
        self.waiting: list[tuple[type, defer.Deferred]] = []
        self.factory.connected.callback(self)

    def messageReceived(self, message: Message) -> None:  # noqa: N802
        for i, (kind, waiter) in enumerate(self.waiting):
            if isinstance(message, kind):
                del self.waiting[i]
                waiter.callback(message)
                return
        self.inbox.append(message)

    def expect(self, kind: type, timeout: float = 10.0) -> defer.Deferred:
        for i, message in enumerate(self.inbox):
            if isinstance(message, kind):
                del self.inbox[i]
                return defer.succeed(message)
        waiter: defer.Deferred = defer.Deferred()
        self.waiting.append((kind, waiter))

        def give_up() -> None:
            if not waiter.called:
                self.waiting.remove((kind, waiter))
                waiter.errback(AssertionError(f"no {kind.__name__} within {timeout} s; got {self.inbox}"))

        call = reactor.callLater(timeout, give_up)
        waiter.addBoth(lambda result: (call.cancel() if call.active() else None, result)[1])
        return waiter


def header_hash(version, prev_hash, merkle_root, ntime, nbits, nonce) -> int:
    header = (
        version.to_bytes(4, "little")
        + prev_hash
        + merkle_root
        + ntime.to_bytes(4, "little")
        + nbits.to_bytes(4, "little")
        + nonce.to_bytes(4, "little")
    )
    return int.from_bytes(sha256d(header), "little")


def search(target: int, root: bytes, prev: SetNewPrevHash, version: int, want_valid: bool) -> int:
    for nonce in range(1_000_000):
        ok = header_hash(version, prev.prev_hash, root, prev.min_ntime, prev.nbits, nonce) <= target
        if ok == want_valid:
            return nonce
    raise AssertionError("no nonce found")


@pytest_twisted.ensureDeferred
async def test_a_miner_mines_standard_and_extended_channels_through_the_daemon(tmp_path: Path):
    await mine_through_the_daemon(tmp_path)


async def mine_through_the_daemon(tmp_path: Path) -> None:
    config = tmp_path / "sv2proxy.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "listen:\n  sv2: 127.0.0.1:0\n"
        "mining:\n  min_difficulty: 0.0000001\n  share_batch_size: 1\n"
        "coinbase:\n  payout: null\n"  # no node: this test is the job source
    )
    options = Options()
    options.parseOptions(["--config", str(config)])
    daemon = makeService(options, reactor)
    shares: list[ShareSubmitted] = []
    daemon.events.subscribe(ShareSubmitted, shares.append)
    daemon.privilegedStartService()
    daemon.startService()
    try:
        port = (await daemon.getServiceNamed("sv2-miners").when_listening()).getHost().port
        mining = daemon.getServiceNamed("mining")

        factory = ClientFactory.forProtocol(Miner)
        factory.connected = defer.Deferred()
        reactor.connectTCP("127.0.0.1", port, NoiseClientFactory(factory, options.authority.public, reactor))
        miner: Miner = await factory.connected
        miner.sendMessage(SetupConnection(0, 2, 2, 0b100, "127.0.0.1", port, "tests", "cpu", "1", "e2e"))
        assert await miner.expect(SetupConnectionSuccess) == SetupConnectionSuccess(2, 0)

        miner.sendMessage(OpenStandardMiningChannel(1, "alice.std", 1.0, ANY_TARGET))
        standard: OpenStandardMiningChannelSuccess = await miner.expect(OpenStandardMiningChannelSuccess)
        miner.sendMessage(OpenExtendedMiningChannel(2, "alice.ext", 1.0, ANY_TARGET, 4))
        extended: OpenExtendedMiningChannelSuccess = await miner.expect(OpenExtendedMiningChannelSuccess)

        # A job source announces work for the next block, then the tip it builds on.
        mining.new_work(Work(1, 0x20000000, True, b"\x01" * 42, b"\x02" * 80, PATH, future=True))
        mining.new_prev_hash(1, PrevHash(hashlib.sha256(b"tip").digest(), int(reactor.seconds()) - 10, NBITS))
        std_job: NewMiningJob = await miner.expect(NewMiningJob)
        ext_job: NewExtendedMiningJob = await miner.expect(NewExtendedMiningJob)
        # The extended channel is in the connection's group (jobs and activation go to the group);
        # the standard channel has its own.
        prevs = [await miner.expect(SetNewPrevHash), await miner.expect(SetNewPrevHash)]
        assert extended.group_channel_id != 0 and standard.group_channel_id == 0
        assert ext_job.channel_id == extended.group_channel_id
        assert {p.channel_id for p in prevs} == {standard.channel_id, extended.group_channel_id}
        prev = next(p for p in prevs if p.channel_id == standard.channel_id)

        std_target = int.from_bytes(standard.target, "little")
        good = search(std_target, std_job.merkle_root, prev, std_job.version, want_valid=True)
        miner.sendMessage(
            SubmitSharesStandard(standard.channel_id, 1, std_job.job_id, good, prev.min_ntime, 0x20000000)
        )
        ack: SubmitSharesSuccess = await miner.expect(SubmitSharesSuccess)
        assert (ack.channel_id, ack.last_sequence_number, ack.new_submits_accepted_count) == (standard.channel_id, 1, 1)

        bad = search(std_target, std_job.merkle_root, prev, std_job.version, want_valid=False)
        miner.sendMessage(SubmitSharesStandard(standard.channel_id, 2, std_job.job_id, bad, prev.min_ntime, 0x20000000))
        assert await miner.expect(SubmitSharesError) == SubmitSharesError(standard.channel_id, 2, "difficulty-too-low")
        miner.sendMessage(
            SubmitSharesStandard(standard.channel_id, 3, std_job.job_id, good, prev.min_ntime, 0x20000000)
        )
        assert await miner.expect(SubmitSharesError) == SubmitSharesError(standard.channel_id, 3, "duplicate-share")

        # Extended: the miner rolls its own extranonce and builds the coinbase and merkle root.
        extranonce = b"\x42" * extended.extranonce_size
        coinbase = ext_job.coinbase_tx_prefix + extended.extranonce_prefix + extranonce + ext_job.coinbase_tx_suffix
        root = merkle_root_from_path(sha256d(coinbase), ext_job.merkle_path)
        ext_target = int.from_bytes(extended.target, "little")
        nonce = search(ext_target, root, prev, ext_job.version, want_valid=True)
        miner.sendMessage(
            SubmitSharesExtended(extended.channel_id, 1, ext_job.job_id, nonce, prev.min_ntime, 0x20000000, extranonce)
        )
        ack = await miner.expect(SubmitSharesSuccess)
        assert (ack.channel_id, ack.new_submits_accepted_count) == (extended.channel_id, 1)
        miner.sendMessage(
            SubmitSharesExtended(extended.channel_id, 2, ext_job.job_id, nonce, prev.min_ntime, 0x20000000, b"\x00")
        )
        assert await miner.expect(SubmitSharesError) == SubmitSharesError(extended.channel_id, 2, "bad-extranonce-size")

        assert [(s.worker, s.accepted, s.error_code) for s in shares] == [
            ("alice.std", True, None),
            ("alice.std", False, "difficulty-too-low"),
            ("alice.std", False, "duplicate-share"),
            ("alice.ext", True, None),
            ("alice.ext", False, "bad-extranonce-size"),
        ]
        miner.transport.loseConnection()
    finally:
        await daemon.stopService()
