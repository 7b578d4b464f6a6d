"""A share is acknowledged only once the ledger holding it says it is durable (issue 8)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from sv2proxy.codec.common import Reconnect
from sv2proxy.codec.mining import (
    NewExtendedMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    SetNewPrevHash,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSharesSuccess,
)
from sv2proxy.events import EventBus
from sv2proxy.pool.extranonce import ExtranonceLayout
from sv2proxy.pool.manager import PoolSettings
from sv2proxy.pool.validation import validate_share
from sv2proxy.pool.vardiff import VardiffConfig
from sv2proxy.server.mining import MiningService
from tests.server.test_miner import ANY, NOW, PREV, WORK, sent, set_up
from tests.server.test_sv1_miner import Miner, find_share


class ManualLedger:
    """A ledger whose commits the test makes happen: what is recorded, and when it is durable."""

    def __init__(self) -> None:
        self.shares: list[tuple] = []
        self.rejected: list[tuple[str, str]] = []
        self.last_ticket = 0
        self.durable = 0
        self._listeners: list[Callable[[int], object]] = []

    def record_share(self, worker, channel_id, job_id, difficulty, at, is_block) -> int:
        self.shares.append((worker, channel_id, job_id, difficulty, at, is_block))
        self.last_ticket += 1
        return self.last_ticket

    def count_rejected(self, worker: str, reason: str) -> None:
        self.rejected.append((worker, reason))

    def add_durable_listener(self, listener: Callable[[int], object]) -> None:
        self._listeners.append(listener)

    def commit(self, upto: int | None = None) -> None:
        self.durable = self.last_ticket if upto is None else upto
        for listener in self._listeners:
            listener(self.durable)


@pytest.fixture
def ledger() -> ManualLedger:
    return ManualLedger()


@pytest.fixture
def mining(ledger: ManualLedger):
    clock = Clock()
    clock.advance(NOW)
    settings = PoolSettings(
        layout=ExtranonceLayout(8, 2), vardiff=VardiffConfig(min_difficulty=1e-9), share_batch_size=2
    )
    service = MiningService(clock, EventBus(), settings)
    service.attach_ledger(ledger)
    service.test_connections = []
    service.startService()
    yield service
    service.stopService()


def _shares(mining: MiningService, channel_id: int, job_id: int, count: int) -> list[int]:
    channel = mining.manager.channels[channel_id]
    found = []
    for nonce in range(100_000):
        result = validate_share(channel, job_id, nonce, NOW, WORK.version, b"\x00" * 6, NOW)
        if result.accepted:
            del channel.seen[result.hash]
            found.append(nonce)
            if len(found) == count:
                return found
    raise AssertionError("not enough shares found")


def _open(mining: MiningService) -> tuple[object, StringTransport, int, int]:
    protocol, transport = set_up(mining)
    protocol.dataReceived(OpenExtendedMiningChannel(3, "alice.rig1", 1.0, ANY, 4).to_frame())
    (success,) = sent(transport)
    assert isinstance(success, OpenExtendedMiningChannelSuccess)
    job_id = mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    job, prev = sent(transport)
    assert isinstance(job, NewExtendedMiningJob) and isinstance(prev, SetNewPrevHash)
    return protocol, transport, success.channel_id, job_id


def _submit(protocol, channel_id: int, sequence: int, job_id: int, nonce: int) -> None:
    protocol.dataReceived(
        SubmitSharesExtended(channel_id, sequence, job_id, nonce, NOW, WORK.version, b"\x00" * 6).to_frame()
    )


def test_a_success_waits_for_its_shares_to_be_durable(mining, ledger):
    protocol, transport, channel_id, job_id = _open(mining)
    first, second = _shares(mining, channel_id, job_id, 2)
    _submit(protocol, channel_id, 0, job_id, first)
    _submit(protocol, channel_id, 1, job_id, second)
    assert [s[:3] for s in ledger.shares] == [("alice.rig1", channel_id, job_id)] * 2
    assert sent(transport) == []  # the batch is full, but nothing is durable yet
    # A rejection needs no durability: it is answered at once, ahead of the held Success.
    _submit(protocol, channel_id, 2, job_id + 9, first)
    assert sent(transport) == [SubmitSharesError(channel_id, 2, "invalid-job-id")]
    assert ledger.rejected == [("alice.rig1", "invalid-job-id")]
    ledger.commit(upto=1)  # not yet the second share
    assert sent(transport) == []
    ledger.commit()
    (ack,) = sent(transport)
    assert isinstance(ack, SubmitSharesSuccess) and ack.new_submits_accepted_count == 2
    assert ack.last_sequence_number == 1


def test_a_released_success_is_not_held_again_by_later_shares(mining, ledger):
    protocol, transport, channel_id, job_id = _open(mining)
    nonces = _shares(mining, channel_id, job_id, 3)
    _submit(protocol, channel_id, 0, job_id, nonces[0])
    _submit(protocol, channel_id, 1, job_id, nonces[1])
    assert sent(transport) == []
    # A third share is recorded before the first two are durable: when they are, their Success
    # leaves, though the ledger is still behind on the third.
    _submit(protocol, channel_id, 2, job_id, nonces[2])
    ledger.commit(upto=2)
    (ack,) = sent(transport)
    assert isinstance(ack, SubmitSharesSuccess) and ack.new_submits_accepted_count == 2


def test_without_a_ledger_success_is_immediate():
    clock = Clock()
    clock.advance(NOW)
    service = MiningService(
        clock,
        EventBus(),
        PoolSettings(layout=ExtranonceLayout(8, 2), vardiff=VardiffConfig(min_difficulty=1e-9), share_batch_size=1),
    )
    service.test_connections = []
    service.startService()
    protocol, transport, channel_id, job_id = _open(service)
    (nonce,) = _shares(service, channel_id, job_id, 1)
    _submit(protocol, channel_id, 0, job_id, nonce)
    (ack,) = sent(transport)
    assert isinstance(ack, SubmitSharesSuccess)
    service.stopService()


def test_shutdown_flushes_successes_only_as_they_become_durable(mining, ledger):
    protocol, transport, channel_id, job_id = _open(mining)
    (nonce,) = _shares(mining, channel_id, job_id, 1)
    _submit(protocol, channel_id, 0, job_id, nonce)  # under the batch size: pending
    mining.stopService()
    assert sent(transport) == []
    ledger.commit()  # the store's last commit at shutdown
    mining.clock.advance(0)
    (ack,) = sent(transport)
    assert isinstance(ack, SubmitSharesSuccess) and ack.new_submits_accepted_count == 1
    mining.startService()  # for the fixture's stopService


def test_a_v1_true_waits_for_durability_and_errors_do_not(mining, ledger):
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    miner = Miner(mining)
    miner.handshake()
    job_id = miner.protocol._prev.job_id
    nonce = find_share(mining, miner, job_id, b"\x01\x02\x03\x04")
    params = ["alice.rig", str(job_id), "01020304", f"{NOW:08x}", f"{nonce:08x}"]
    accepted = miner.send("mining.submit", *params)
    assert miner.received() == []
    duplicate = miner.send("mining.submit", *params)
    (answer,) = miner.received()
    assert answer["id"] == duplicate and answer["error"][0] == 22
    ledger.commit()
    assert miner.received() == [{"id": accepted, "result": True, "error": None}]
    assert ledger.shares[0][0] == "alice.rig" and ledger.rejected == [("alice.rig", "duplicate-share")]


def test_an_operators_reconnect_follows_every_durable_acknowledgement(mining, ledger):
    protocol, transport, channel_id, job_id = _open(mining)
    (nonce,) = _shares(mining, channel_id, job_id, 1)
    _submit(protocol, channel_id, 0, job_id, nonce)
    v1 = Miner(mining)
    v1.handshake()
    v1.transport.clear()
    assert mining.reconnect_miners("backup.example", 3334) == (2, True)
    assert sent(transport) == []  # the share is not durable: its Success, then the Reconnect
    ledger.commit()
    ack, reconnect = sent(transport)
    assert isinstance(ack, SubmitSharesSuccess) and ack.new_submits_accepted_count == 1
    assert reconnect == Reconnect("backup.example", 3334)
    (line,) = v1.received()
    assert line["method"] == "client.reconnect" and line["params"][0] == "backup.example"
    assert int(line["params"][1]) == 3334


def test_a_success_held_before_the_reconnect_still_goes_first(mining, ledger):
    protocol, transport, channel_id, job_id = _open(mining)
    first, second = _shares(mining, channel_id, job_id, 2)
    _submit(protocol, channel_id, 0, job_id, first)
    _submit(protocol, channel_id, 1, job_id, second)  # the batch of two is full: its Success is held
    assert mining.reconnect_miners("backup.example", 3334) == (1, True)
    ledger.commit()
    ack, reconnect = sent(transport)
    assert isinstance(ack, SubmitSharesSuccess) and ack.new_submits_accepted_count == 2
    assert reconnect == Reconnect("backup.example", 3334)


def test_a_share_accepted_after_the_request_cannot_let_the_reconnect_overtake(mining, ledger):
    protocol, transport, channel_id, job_id = _open(mining)
    other, other_transport = set_up(mining)
    other.dataReceived(OpenExtendedMiningChannel(7, "bob", 1.0, ANY, 4).to_frame())
    bob = sent(other_transport)[0]  # its Success (then the current job)
    (alice_share,) = _shares(mining, channel_id, job_id, 1)
    _submit(protocol, channel_id, 0, job_id, alice_share)  # ticket 1: alice's Success pending
    mining.reconnect_miners("backup.example", 3334)  # waits for ticket 1
    (bob_share,) = _shares(mining, bob.channel_id, job_id, 1)
    _submit(other, bob.channel_id, 0, job_id, bob_share)  # ticket 2: another miner's share
    ledger.commit(upto=1)
    ledger.commit()
    ack, reconnect = sent(transport)
    assert isinstance(ack, SubmitSharesSuccess) and reconnect == Reconnect("backup.example", 3334)


def test_with_every_share_durable_the_reconnect_goes_at_once(mining, ledger):
    protocol, transport, channel_id, job_id = _open(mining)
    assert mining.reconnect_miners() == (1, False)
    assert sent(transport) == [Reconnect("", 0)]


def test_a_v1_miner_told_to_come_back_is_hung_up_on(mining):
    v1 = Miner(mining)
    v1.handshake()
    v1.transport.clear()
    mining.reconnect_miners()
    assert v1.received() == []  # no address that firmware might misread: it redials its own
    assert v1.transport.disconnecting


def test_connections_without_a_channel_are_not_counted(mining):
    set_up(mining)  # set up, no channel
    assert mining.reconnect_miners() == (0, False)
