"""Stratum V1 miners on the pool: JSON lines in, an extended channel behind them."""

from __future__ import annotations

import dataclasses
import json

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from sv2proxy.bitcoin.target import target_to_difficulty
from sv2proxy.events import EventBus, MiningDifficultyChanged
from sv2proxy.pool.extranonce import ExtranonceLayout
from sv2proxy.pool.jobs import PrevHash
from sv2proxy.pool.manager import PoolSettings
from sv2proxy.pool.validation import validate_share
from sv2proxy.pool.vardiff import VardiffConfig
from sv2proxy.server.mining import MiningService, solo_payout
from sv2proxy.server.sv1_miner import SUBSCRIBE_TIMEOUT, Sv1MinerFactory
from sv2proxy.sv1 import prevhash_to_sv1
from tests.server.test_miner import NOW, PREV, WORK

REGTEST_ADDRESS = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
FIELDS = ("version", "version_rolling_allowed", "coinbase_prefix", "coinbase_suffix", "merkle_path", "future")


def make_mining(**settings) -> MiningService:
    clock = Clock()
    clock.advance(NOW)
    pool = PoolSettings(
        layout=ExtranonceLayout(8, 2), vardiff=VardiffConfig(min_difficulty=1e-9), share_batch_size=2, **settings
    )
    service = MiningService(clock, EventBus(), pool)
    service.startService()
    return service


@pytest.fixture
def mining():
    service = make_mining()
    yield service
    service.stopService()


class Miner:
    """One V1 connection driven by hand: lines in, decoded JSON out."""

    def __init__(self, mining: MiningService, extranonce2_size: int = 4) -> None:
        self.protocol = Sv1MinerFactory(mining, extranonce2_size).buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.next_id = 1

    def send(self, method: str, *params) -> int:
        request_id = self.next_id
        self.next_id += 1
        self.raw(json.dumps({"id": request_id, "method": method, "params": list(params)}).encode() + b"\n")
        return request_id

    def raw(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def received(self) -> list[dict]:
        lines = self.transport.value().splitlines()
        self.transport.clear()
        return [json.loads(line) for line in lines]

    def handshake(self, user: str = "alice.rig", configure: bool = False) -> dict:
        if configure:
            self.send("mining.configure", ["version-rolling"], {"version-rolling.mask": "1fffe000"})
        subscribe = self.send("mining.subscribe", "cgminer/4.12")
        self.send("mining.authorize", user, "x")
        out = self.received()
        return {"lines": out, "subscribe": next(m for m in out if m.get("id") == subscribe)}


def notifies(lines):
    return [m["params"] for m in lines if m.get("method") == "mining.notify"]


def difficulties(lines):
    return [m["params"][0] for m in lines if m.get("method") == "mining.set_difficulty"]


def test_subscribe_authorize_then_difficulty_and_a_clean_notify(mining):
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    miner = Miner(mining)
    out = miner.handshake()
    result = out["subscribe"]["result"]
    extranonce1 = bytes.fromhex(result[1])
    assert result[2] == 4 and len(extranonce1) == 8 - 4  # the prefix fills what the miner does not roll
    assert [m["result"] for m in out["lines"] if m.get("id") == 2] == [True]
    (notify,) = notifies(out["lines"])
    job_id, prevhash, coinb1, coinb2, branches, version, nbits, ntime, clean = notify
    assert prevhash == prevhash_to_sv1(PREV.prev_hash)
    assert (bytes.fromhex(coinb1), bytes.fromhex(coinb2)) == (WORK.coinbase_prefix, WORK.coinbase_suffix)
    assert [bytes.fromhex(b) for b in branches] == list(WORK.merkle_path)
    assert (int(version, 16), int(nbits, 16), int(ntime, 16), clean) == (WORK.version, PREV.nbits, PREV.min_ntime, True)
    # set_difficulty comes before the first notify, so the first shares are judged right.
    methods = [m.get("method") for m in out["lines"] if m.get("method")]
    assert methods == ["mining.set_difficulty", "mining.notify"]
    channel = mining.manager.channels[miner.protocol.channel_id]
    assert channel.extranonce_prefix == extranonce1 and channel.rollable_size == 4


def find_share(mining, miner, job_id, extranonce2, version=WORK.version, want_block=False):
    channel = mining.manager.channels[miner.protocol.channel_id]
    for nonce in range(100_000):
        result = validate_share(channel, job_id, nonce, NOW, version, extranonce2, NOW)
        if result.accepted:
            channel.seen.pop(result.hash, None)
            if result.is_block or not want_block:
                return nonce
    raise AssertionError("no share found")


def submit(miner, job_id, extranonce2, nonce, worker="alice.rig", ntime=NOW, version_bits=None):
    params = [worker, str(job_id), extranonce2.hex(), f"{ntime:08x}", f"{nonce:08x}"]
    if version_bits is not None:
        params.append(f"{version_bits:08x}")
    request_id = miner.send("mining.submit", *params)
    (answer,) = [m for m in miner.received() if m.get("id") == request_id]
    return answer


def test_shares_are_answered_one_by_one_with_the_customary_codes(mining):
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    miner = Miner(mining)
    miner.handshake()
    job_id = miner.protocol._prev.job_id
    nonce = find_share(mining, miner, job_id, b"\x01\x02\x03\x04")
    assert submit(miner, job_id, b"\x01\x02\x03\x04", nonce) == {"id": 3, "result": True, "error": None}
    assert submit(miner, job_id, b"\x01\x02\x03\x04", nonce)["error"][0] == 22  # duplicate
    assert submit(miner, job_id + 99, b"\x01\x02\x03\x04", nonce)["error"][0] == 21  # unknown job
    assert submit(miner, "nope", b"\x01\x02\x03\x04", nonce)["error"][0] == 21
    assert submit(miner, job_id, b"\x01\x02", nonce)["error"][:2] == [20, "extranonce2 must be 4 bytes, got 2"]
    assert submit(miner, job_id, b"\x01\x02\x03\x04", nonce, worker="mallory")["error"][0] == 24
    assert submit(miner, job_id, b"\x01\x02\x03\x04", nonce, version_bits=0x2000)["error"][0] == 20  # no rolling
    # A new tip makes the old job stale: answered 21 as V1 pools do.
    mining.new_work(
        WORK.__class__(
            2,
            *[
                getattr(WORK, f)
                for f in (
                    "version",
                    "version_rolling_allowed",
                    "coinbase_prefix",
                    "coinbase_suffix",
                    "merkle_path",
                    "future",
                )
            ],
        )
    )
    mining.new_prev_hash(2, PrevHash(b"\x11" * 32, NOW, PREV.nbits))
    miner.received()
    assert submit(miner, job_id, b"\x01\x02\x03\x04", nonce + 1)["error"][:2] == [21, "stale job"]


def test_low_difficulty_is_23(mining):
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    miner = Miner(mining)
    miner.handshake()
    job_id = miner.protocol._prev.job_id
    channel = mining.manager.channels[miner.protocol.channel_id]
    for nonce in range(100_000):
        if validate_share(channel, job_id, nonce, NOW, WORK.version, b"\0" * 4, NOW).error_code == "difficulty-too-low":
            break
    else:  # pragma: no cover
        pytest.skip("every hash met the easy target")
    assert submit(miner, job_id, b"\0" * 4, nonce)["error"][0] == 23


def test_version_rolling_is_negotiated_and_applied_within_the_mask(mining):
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    miner = Miner(mining)
    out = miner.handshake(configure=True)
    (configured,) = [m for m in out["lines"] if m.get("id") == 1]
    assert configured["result"] == {"version-rolling": True, "version-rolling.mask": "1fffe000"}
    job_id = miner.protocol._prev.job_id
    rolled = WORK.version | 0x00004000
    nonce = find_share(mining, miner, job_id, b"\0\0\0\7", version=rolled)
    assert submit(miner, job_id, b"\0\0\0\7", nonce, version_bits=0x00004000)["result"] is True
    assert submit(miner, job_id, b"\0\0\0\7", nonce, version_bits=0x00000010)["error"][0] == 20  # outside the mask


def test_a_new_difficulty_comes_with_a_clean_job_made_for_it(mining):
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    miner = Miner(mining)
    miner.handshake()
    old_job = miner.protocol._prev.job_id
    channel_id = miner.protocol.channel_id
    old_nonce = find_share(mining, miner, old_job, b"\0" * 4)
    mining.events.publish(MiningDifficultyChanged(0.5, channel_id))
    out = miner.received()
    assert [m["method"] for m in out] == ["mining.set_difficulty", "mining.notify"]
    assert difficulties(out) == [0.5]
    (notify,) = notifies(out)
    assert notify[8] is True and int(notify[0]) != old_job
    new_job = mining.manager.channels[channel_id].jobs.active
    assert target_to_difficulty(new_job.target) == pytest.approx(0.5)
    # A share found on the old job at its old (easier) difficulty is still good.
    assert submit(miner, old_job, b"\0" * 4, old_nonce)["result"] is True


def test_suggest_difficulty_sets_the_start_and_later_retargets(mining):
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    miner = Miner(mining)
    miner.send("mining.subscribe")
    miner.send("mining.suggest_difficulty", 0.0001)
    miner.send("mining.authorize", "tiny", "")
    out = miner.received()
    assert difficulties(out) == [pytest.approx(0.0001)]
    miner.send("mining.suggest_difficulty", 0.002)
    out = miner.received()
    assert difficulties(out) == [pytest.approx(0.002)] and notifies(out)[0][8] is True


def test_requests_out_of_order_and_garbage_are_answered_not_fatal(mining):
    miner = Miner(mining)
    miner.send("mining.authorize", "alice", "x")
    miner.send("mining.submit", "alice", "1", "00000000", "00000000", "00000000")
    miner.raw(b"this is not json\n")
    miner.send("mining.teleport")
    miner.raw(b'{"id": 9, "method": "mining.submit", "params": "nope"}\n')
    answers = miner.received()
    assert [a["error"][0] for a in answers] == [25, 25, 20, 20, 20]
    assert [a["id"] for a in answers] == [1, 2, None, 3, 9]
    assert not miner.transport.disconnecting
    miner.handshake()
    assert miner.protocol.channel_id is not None


def test_an_overlong_line_drops_the_miner(mining):
    miner = Miner(mining)
    miner.raw(b"{" + b"x" * 20_000)
    assert miner.transport.disconnecting or miner.transport.disconnected


def test_a_miner_that_never_subscribes_is_dropped(mining):
    miner = Miner(mining)
    mining.clock.advance(SUBSCRIBE_TIMEOUT + 1)
    assert miner.transport.disconnecting or miner.transport.disconnected


def test_solo_pool_refuses_a_username_that_is_not_an_address():
    from sv2proxy.bitcoin.address import Network

    mining = make_mining(payout_for=solo_payout(Network.from_name("regtest")))
    try:
        miner = Miner(mining)
        miner.send("mining.subscribe")
        miner.send("mining.authorize", "not-an-address", "x")
        (_, refused) = miner.received()
        assert refused["error"][:2] == [24, "unauthorized: invalid-user-identity"]
        miner.send("mining.authorize", f"{REGTEST_ADDRESS}.rig", "x")
        (accepted, _difficulty) = miner.received()
        assert accepted["result"] is True
        channel = mining.manager.channels[miner.protocol.channel_id]
        assert channel.payout is not None
    finally:
        mining.stopService()


def test_another_pools_prefix_goes_into_the_coinbase_and_miners_keep_their_extranonce1(mining):
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    miner = Miner(mining, extranonce2_size=2)
    extranonce1 = bytes.fromhex(miner.handshake()["subscribe"]["result"][1])
    # A pool with a 2-byte prefix and 10 bytes: our 8 fit behind it, nobody is told anything.
    mining.set_extranonce_space(b"\xee\xee", 10)
    assert miner.received() == []
    mining.new_work(dataclasses.replace(WORK, source_id=3, future=False, min_ntime=NOW))
    (notify,) = notifies(miner.received())
    assert bytes.fromhex(notify[2]) == WORK.coinbase_prefix + b"\xee\xee"
    assert mining.manager.channels[miner.protocol.channel_id].extranonce_prefix == extranonce1


def test_a_smaller_space_re_prefixes_subscribed_miners_and_closes_the_others(mining):
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    subscribed = Miner(mining, extranonce2_size=2)
    subscribed.send("mining.extranonce.subscribe")
    subscribed.handshake()
    plain = Miner(mining, extranonce2_size=2)
    plain.handshake()
    mining.set_extranonce_space(b"\xee\xee", 8)  # 6 bytes left for our 8
    (set_extranonce,) = [m for m in subscribed.received() if m.get("method") == "mining.set_extranonce"]
    extranonce1 = bytes.fromhex(set_extranonce["params"][0])
    assert set_extranonce["params"][1] == 2 and len(extranonce1) == 4
    # Without mining.extranonce.subscribe it cannot be told: closed, it reconnects to its pool URL.
    assert plain.received() == []
    assert plain.transport.disconnecting


def test_a_subscribe_when_the_space_is_too_small_is_refused_cleanly(mining):
    mining.set_extranonce_space(b"\xee" * 5, 8)  # 3 bytes left: 2 local leave 1, no V1 miner fits
    miner = Miner(mining)
    request_id = miner.send("mining.subscribe")
    (answer,) = miner.received()
    assert answer["id"] == request_id and answer["error"][0] == 20
    assert not mining.manager._reserved
    miner.send("mining.subscribe")  # asking again is answered again, never a crash
    assert miner.received()[0]["error"][0] == 20


def test_a_difficulty_changed_while_there_is_no_work_comes_with_the_next_job(mining):
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    miner = Miner(mining)
    miner.handshake()
    channel_id = miner.protocol.channel_id
    first = miner.protocol._difficulty
    mining.drop_work()  # the upstream went away
    mining.events.publish(MiningDifficultyChanged(first / 4, channel_id))
    mining.events.publish(MiningDifficultyChanged(first, channel_id))  # and back again
    assert miner.received() == []
    mining.new_work(WORK.__class__(5, *[getattr(WORK, f) for f in FIELDS]))
    mining.new_prev_hash(5, PrevHash(b"\x22" * 32, NOW, PREV.nbits))
    out = miner.received()
    job = mining.manager.channels[channel_id].jobs.active
    # Whatever was said before, the notify goes out with the difficulty its job is judged by.
    told = difficulties(out) or [first]
    assert told[-1] == pytest.approx(target_to_difficulty(job.target))
    assert notifies(out)[-1][8] is True


def test_more_workers_on_one_connection_are_credited_by_name(mining):
    from sv2proxy.events import ShareSubmitted

    events = []
    mining.events.subscribe(ShareSubmitted, events.append)
    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    miner = Miner(mining)
    miner.handshake("farm.rig1")
    miner.send("mining.authorize", "farm.rig2", "x")
    assert miner.received()[0]["result"] is True
    job_id = miner.protocol._prev.job_id
    nonce = find_share(mining, miner, job_id, b"\0\0\0\1")
    assert submit(miner, job_id, b"\0\0\0\1", nonce, worker="farm.rig2")["result"] is True
    assert [event.worker for event in events] == ["farm.rig2"]


def test_a_solo_miner_cannot_add_a_worker_paying_someone_else():
    from sv2proxy.bitcoin.address import Network

    mining = make_mining(payout_for=solo_payout(Network.from_name("regtest")))
    try:
        miner = Miner(mining)
        miner.handshake(f"{REGTEST_ADDRESS}.a")
        miner.send("mining.authorize", f"{REGTEST_ADDRESS}.b", "x")
        assert miner.received()[0]["result"] is True  # same address, another worker
        other = "bcrt1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qzf6jcl"
        miner.send("mining.authorize", other, "x")
        assert miner.received()[0]["error"][:2] == [24, "one payout address per connection"]
    finally:
        mining.stopService()


def test_a_job_that_forbids_version_rolling_turns_the_mask_off_first(mining):
    import dataclasses

    mining.new_work(dataclasses.replace(WORK, version_rolling_allowed=False))
    mining.new_prev_hash(1, PREV)
    miner = Miner(mining)
    out = miner.handshake(configure=True)["lines"]
    methods = [m.get("method") for m in out if m.get("method")]
    assert methods == ["mining.set_difficulty", "mining.set_version_mask", "mining.notify"]
    assert [m["params"] for m in out if m.get("method") == "mining.set_version_mask"] == [["00000000"]]
    job_id = miner.protocol._prev.job_id
    assert submit(miner, job_id, b"\0" * 4, 1, version_bits=0x4000)["error"][0] == 20
    mining.new_work(dataclasses.replace(WORK, source_id=2, future=False, min_ntime=NOW))
    out = miner.received()
    assert [m["params"] for m in out if m.get("method") == "mining.set_version_mask"] == [["1fffe000"]]


def test_a_subscribed_miner_that_never_authorizes_is_dropped_and_its_extranonce_freed(mining):
    from sv2proxy.server.sv1_miner import AUTHORIZE_TIMEOUT

    miner = Miner(mining)
    miner.send("mining.subscribe")
    mining.clock.advance(AUTHORIZE_TIMEOUT + 1)
    assert miner.transport.disconnecting or miner.transport.disconnected
    miner.protocol.connectionLost()
    assert not mining.manager._reserved
    assert [call for call in mining.clock.getDelayedCalls() if getattr(call.func, "__name__", "") == "_give_up"] == []


def test_a_dropped_miner_leaves_no_timer_behind(mining):
    miner = Miner(mining)
    miner.protocol.pauseProducing()  # a stalled reader: its deadline starts
    mining.clock.advance(SUBSCRIBE_TIMEOUT + 1)  # the subscribe deadline fires first
    miner.protocol.connectionLost()
    assert [call for call in mining.clock.getDelayedCalls() if getattr(call.func, "__name__", "") == "_give_up"] == []


def test_closing_frees_the_reserved_extranonce(mining):
    miner = Miner(mining)
    miner.send("mining.subscribe")
    assert mining.manager._reserved
    miner.protocol.connectionLost()
    assert not mining.manager._reserved


def test_a_connection_cannot_mint_worker_names_without_end(mining):
    from sv2proxy.server.sv1_miner import MAX_WORKERS_PER_CONNECTION

    mining.new_work(WORK)
    mining.new_prev_hash(1, PREV)
    miner = Miner(mining)
    miner.handshake("alice.0")
    for n in range(1, MAX_WORKERS_PER_CONNECTION):
        miner.send("mining.authorize", f"alice.{n}", "x")
    assert all(line.get("result") is True for line in miner.received() if "result" in line)
    refused = miner.send("mining.authorize", "alice.extra", "x")
    again = miner.send("mining.authorize", "alice.3", "x")  # a known name is still fine
    answers = {line["id"]: line for line in miner.received()}
    assert answers[refused]["error"][0] == 24 and "workers per connection" in answers[refused]["error"][1]
    assert answers[again]["result"] is True
    assert len(miner.protocol.workers) == MAX_WORKERS_PER_CONNECTION
