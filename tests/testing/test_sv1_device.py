"""The SV1 CPU device against a scripted pool: JSON lines in, JSON lines out, a Clock for the slices.

Every share the device submits is re-hashed here from the job the test sent and the submit's
own fields (PROTOCOL.md §6: coinbase = coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2, merkle
root, 80-byte header), independently of the device's code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from sv2proxy.bitcoin.coinbase import CoinbaseTemplate, build_coinbase
from sv2proxy.sv1 import MAX_LINE_LENGTH, Reconnect
from sv2proxy.testing.sv1_device import SETUP_TIMEOUT, USER_AGENT, Sv1MiningDeviceFactory

NOW = 1_800_000_000
DIFF1 = 0xFFFF << 208
#: One hash in eight meets it: enough shares per slice, and a check that can fail.
EASY = 2e-9
EASY_TARGET = DIFF1 * 500_000_000
#: Every hash meets it (the target saturates at 2**256 - 1).
ANY = 1e-10
#: No hash a test makes meets it.
HARD = 1e9
BIP320 = 0x1FFFE000
MAINNET_NBITS = 0x1D00FFFF  # block 1's: a block is a 1-in-4-billion event
REGTEST_NBITS = 0x207FFFFF  # about every other hash is a block
#: The genesis block's hash, raw (SV2 order), and as mining.notify writes it: each 4-byte word
#: byte-reversed (PROTOCOL.md §6, "Worked byte-order sanity check").
GENESIS = bytes.fromhex("6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000")
GENESIS_SV1 = "0a8ce26f72b3f1b646a2a6c14ff763ae65831e939c085ae10019d66800000000"
EXTRANONCE1 = bytes.fromhex("f000000d")
PAYOUT = bytes.fromhex("0014") + bytes(range(20))  # P2WPKH
BRANCHES = (hashlib.sha256(b"tx 1").digest(), hashlib.sha256(b"txs 2-3").digest())


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def word_swapped(raw: bytes) -> str:
    return b"".join(raw[i : i + 4][::-1] for i in range(0, 32, 4)).hex()


@dataclass(frozen=True)
class Job:
    """One mining.notify as the test's pool means it, with the coinbase it splits."""

    job_id: str
    coinbase: CoinbaseTemplate
    prev_hash: bytes = GENESIS
    merkle_path: tuple[bytes, ...] = BRANCHES
    version: int = 0x20000000
    nbits: int = MAINNET_NBITS
    ntime: int = 1231469665

    def params(self, clean_jobs: bool) -> list[Any]:
        return [
            self.job_id,
            word_swapped(self.prev_hash),
            self.coinbase.prefix.hex(),
            self.coinbase.suffix.hex(),
            [branch.hex() for branch in self.merkle_path],
            f"{self.version:08x}",
            f"{self.nbits:08x}",
            f"{self.ntime:08x}",
            clean_jobs,
        ]

    def header(self, extranonce: bytes, ntime: int, nonce: int, version: int) -> bytes:
        root = self.coinbase.txid(extranonce)
        for node in self.merkle_path:
            root = sha256d(root + node)
        return (
            version.to_bytes(4, "little")
            + self.prev_hash  # raw, as the header holds it
            + root
            + ntime.to_bytes(4, "little")
            + self.nbits.to_bytes(4, "little")
            + nonce.to_bytes(4, "little")
        )

    def share_hash(self, extranonce1: bytes, submit: dict[str, Any], mask: int | None = None) -> int:
        """The hash of the header a mining.submit names, as a pool would rebuild it."""
        worker, job_id, extranonce2, ntime, nonce, *version_bits = submit["params"]
        assert (worker, job_id) == ("alice.rig1", self.job_id)
        version = self.version
        if version_bits:
            assert mask is not None, "version_bits sent without version rolling negotiated"
            (bits,) = version_bits
            assert int(bits, 16) & ~mask == 0, f"version bits {bits} outside the mask {mask:#x}"
            version = (version & ~mask) | int(bits, 16)
        header = self.header(extranonce1 + bytes.fromhex(extranonce2), int(ntime, 16), int(nonce, 16), version)
        return int.from_bytes(sha256d(header), "little")


def job(job_id: str, extranonce_size: int = len(EXTRANONCE1) + 4, height: int = 1, **fields: Any) -> Job:
    coinbase = build_coinbase(extranonce_size=extranonce_size, payouts=[(PAYOUT, 50 * 10**8)], height=height)
    return Job(job_id, coinbase, **fields)


def target_from_nbits(nbits: int) -> int:
    return (nbits & 0xFFFFFF) << 8 * ((nbits >> 24) - 3)


class Pool:
    """The pool's end of the device's StringTransport."""

    def __init__(self, **options: Any) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        options.setdefault("nonces_per_slice", 64)
        options.setdefault("pause", 1.0)
        self.factory = Sv1MiningDeviceFactory(self.clock, "alice.rig1", "x", **options)
        self.device = self.factory.buildProtocol(None)
        self.transport = StringTransport()
        self.device.makeConnection(self.transport)
        self.closed = False

    def received(self) -> list[dict[str, Any]]:
        """The requests the device wrote since the last call."""
        lines = self.transport.value().split(b"\n")
        self.transport.clear()
        assert lines[-1] == b"", "every request ends with a newline"
        return [json.loads(line) for line in lines[:-1]]

    def send(self, message: dict[str, Any]) -> None:
        self.device.dataReceived(json.dumps(message).encode() + b"\n")

    def answer(self, request: dict[str, Any], result: Any, error: Any = None) -> None:
        self.send({"id": request["id"], "result": result, "error": error})

    def notify(self, job: Job, clean_jobs: bool = True) -> None:
        self.send({"id": None, "method": "mining.notify", "params": job.params(clean_jobs)})

    def set_difficulty(self, difficulty: float) -> None:
        self.send({"id": None, "method": "mining.set_difficulty", "params": [difficulty]})

    def handshake(
        self,
        extranonce2_size: int = 4,
        mask: str | None = "1fffe000",
        difficulty: float | None = EASY,
    ) -> list[dict[str, Any]]:
        """Answer configure (if sent), subscribe and authorize; the requests the device sent."""
        requests = self.received()
        for request in requests:
            if request["method"] == "mining.configure":
                granted = {"version-rolling.mask": mask} if mask else {}
                self.answer(request, {"version-rolling": mask is not None, **granted})
            elif request["method"] == "mining.subscribe":
                self.answer(request, [[["mining.notify", "1"]], EXTRANONCE1.hex(), extranonce2_size])
        later = self.received()
        for request in later:
            if request["method"] == "mining.authorize":
                self.answer(request, True)
        if difficulty is not None:
            self.set_difficulty(difficulty)
        return requests + later

    def mine(self, seconds: float = 0.0) -> list[dict[str, Any]]:
        """Let the clock run; the shares submitted meanwhile."""
        self.clock.advance(seconds)
        requests = self.received()
        assert all(r["method"] == "mining.submit" for r in requests), requests
        return requests

    def close(self) -> None:
        """What the transport does once the connection is gone."""
        self.closed = True
        self.device.connectionLost(None)


@pytest.fixture
def pools() -> Iterator[Callable[..., Pool]]:
    made: list[Pool] = []

    def make(**options: Any) -> Pool:
        pool = Pool(**options)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        if not pool.closed:
            pool.close()
        assert pool.clock.getDelayedCalls() == []


def test_the_device_configures_subscribes_then_authorizes(pools):
    pool = pools(suggest_difficulty=0.0001, extranonce_subscribe=True)
    configure, subscribe = pool.received()
    assert configure["method"] == "mining.configure"
    assert configure["params"] == [
        ["version-rolling"],
        {"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 0},
    ]
    assert subscribe["method"] == "mining.subscribe" and subscribe["params"] == [USER_AGENT]
    pool.answer(configure, {"version-rolling": True, "version-rolling.mask": "1fffe000"})
    assert pool.received() == [], "the device waits for its subscription before authorizing"
    pool.answer(subscribe, [[["mining.notify", "1"]], EXTRANONCE1.hex(), 4])
    later = pool.received()
    assert [(r["method"], r["params"]) for r in later] == [
        ("mining.extranonce.subscribe", []),
        ("mining.authorize", ["alice.rig1", "x"]),
        ("mining.suggest_difficulty", [0.0001]),
    ]
    ids = [r["id"] for r in [configure, subscribe, *later]]
    assert len(set(ids)) == len(ids)
    assert pool.factory.device is pool.device
    assert (pool.device.extranonce1, pool.device.extranonce2_size, pool.device.version_mask) == (
        EXTRANONCE1,
        4,
        BIP320,
    )
    assert not pool.device.authorized
    pool.answer(later[1], True)
    assert pool.device.authorized


def test_without_version_rolling_there_is_no_configure(pools):
    pool = pools(version_rolling=False)
    (subscribe,) = pool.received()
    assert subscribe["method"] == "mining.subscribe"


def test_every_hash_under_the_target_is_submitted_and_rehashes_below_it(pools):
    pool = pools(version_rolling=False)
    pool.handshake()
    work = job("1")
    pool.notify(work)
    submits = pool.mine()
    # What the test itself finds in the first slice: nonces 0..63 under the first extranonce2.
    expected = [
        nonce
        for nonce in range(64)
        if int.from_bytes(sha256d(work.header(EXTRANONCE1 + bytes(4), work.ntime, nonce, work.version)), "little")
        <= EASY_TARGET
    ]
    assert expected, "the easy target should let some of 64 hashes through"
    assert [int(s["params"][4], 16) for s in submits] == expected
    for submit in submits:
        assert len(submit["params"]) == 5, "no version_bits without version rolling"
        assert submit["params"][2] == "00000000" and int(submit["params"][3], 16) == work.ntime
        assert work.share_hash(EXTRANONCE1, submit) <= EASY_TARGET
    assert pool.device.stats.shares_submitted == len(submits)
    assert pool.device.stats.blocks == []
    # The next slice comes after the pause and moves on to the next nonces.
    assert pool.mine(0.5) == []
    later = pool.mine(0.5)
    assert later and all(64 <= int(s["params"][4], 16) < 128 for s in later)


def test_slices_roll_the_version_inside_the_granted_mask(pools):
    pool = pools(nonces_per_slice=4)
    pool.handshake(mask="00006000", difficulty=ANY)  # bits 13 and 14: four versions per nonce window
    work = job("7")
    pool.notify(work)
    slices = [pool.mine(0 if i == 0 else 1.0) for i in range(6)]
    seen = [([int(s["params"][4], 16) for s in shares], shares[0]["params"][5]) for shares in slices]
    assert seen == [
        ([0, 1, 2, 3], "00000000"),
        ([0, 1, 2, 3], "00002000"),
        ([0, 1, 2, 3], "00004000"),
        ([0, 1, 2, 3], "00006000"),
        ([4, 5, 6, 7], "00000000"),
        ([4, 5, 6, 7], "00002000"),
    ]
    assert pool.device.version_mask == 0x6000


def test_set_version_mask_narrows_the_rolling_at_once(pools):
    pool = pools(nonces_per_slice=4)
    pool.handshake(difficulty=ANY)
    pool.notify(job("1"))
    pool.mine()
    pool.send({"id": None, "method": "mining.set_version_mask", "params": ["00004000"]})
    bits = {s["params"][5] for i in range(4) for s in pool.mine(1.0)}
    assert bits == {"00000000", "00004000"}


def test_set_version_mask_without_rolling_is_ignored(pools):
    pool = pools(version_rolling=False, nonces_per_slice=4)
    pool.handshake(difficulty=ANY)
    pool.send({"id": None, "method": "mining.set_version_mask", "params": ["1fffe000"]})
    pool.notify(job("1"))
    assert all(len(s["params"]) == 5 for s in pool.mine() + pool.mine(1.0))
    assert pool.device.version_mask is None


def test_version_bits_stay_inside_the_bip320_mask_and_rehash(pools):
    pool = pools(nonces_per_slice=32)
    pool.handshake()
    work = job("8", version=0x20000004)  # a bit outside the mask that must survive
    pool.notify(work)
    submits = [s for i in range(8) for s in pool.mine(0 if i == 0 else 1.0)]
    assert submits
    assert all(len(s["params"]) == 6 for s in submits)
    assert len({s["params"][5] for s in submits}) > 1, "the version is rolled from slice to slice"
    for submit in submits:
        assert work.share_hash(EXTRANONCE1, submit, BIP320) <= EASY_TARGET


@pytest.mark.parametrize("granted", [{"version-rolling": False}, None])
def test_no_version_bits_when_the_pool_does_not_grant_rolling(pools, granted):
    pool = pools(nonces_per_slice=8)
    configure, subscribe = pool.received()
    if granted is None:
        pool.answer(configure, None, [20, "Unknown method", None])
    else:
        pool.answer(configure, granted)
    pool.answer(subscribe, [[], EXTRANONCE1.hex(), 4])
    (authorize,) = pool.received()
    pool.answer(authorize, True)
    pool.set_difficulty(ANY)
    work = job("9")
    pool.notify(work)
    submits = pool.mine() + pool.mine(1.0)
    assert [int(s["params"][4], 16) for s in submits] == list(range(16))
    assert all(len(s["params"]) == 5 for s in submits)
    assert pool.device.version_mask is None


@pytest.mark.parametrize("size", range(2, 9))
def test_extranonce2_has_the_subscribed_size(pools, size):
    pool = pools()
    pool.handshake(extranonce2_size=size)
    first, second = job("a", len(EXTRANONCE1) + size), job("b", len(EXTRANONCE1) + size)
    pool.notify(first)
    shares = pool.mine()
    pool.notify(second, clean_jobs=False)
    shares += pool.mine(1.0)
    assert {s["params"][1] for s in shares} == {"a", "b"}
    for share in shares:
        assert len(bytes.fromhex(share["params"][2])) == size
        work = first if share["params"][1] == "a" else second
        assert work.share_hash(EXTRANONCE1, share, BIP320) <= EASY_TARGET
    extranonces = {s["params"][1]: s["params"][2] for s in shares}
    assert extranonces["a"] != extranonces["b"], "each job gets a fresh extranonce2"


def test_set_difficulty_takes_effect_from_the_next_notify(pools):
    pool = pools()
    pool.handshake(difficulty=HARD)
    pool.notify(job("1"))
    assert pool.mine() == []
    pool.set_difficulty(EASY)
    assert pool.device.difficulty == EASY
    assert pool.mine(1.0) + pool.mine(1.0) == [], "job 1 keeps the difficulty it came with"
    second = job("2")
    pool.notify(second, clean_jobs=False)
    shares = pool.mine(1.0)
    assert shares and all(s["params"][1] == "2" for s in shares)
    assert all(second.share_hash(EXTRANONCE1, s, BIP320) <= EASY_TARGET for s in shares)
    pool.set_difficulty(HARD)
    assert pool.mine(1.0), "job 2 keeps its easy target"
    pool.notify(job("3"), clean_jobs=False)
    assert pool.mine(1.0) == []


def test_set_extranonce_applies_to_the_next_job(pools):
    pool = pools(extranonce_subscribe=True)
    requests = pool.handshake()
    assert "mining.extranonce.subscribe" in [r["method"] for r in requests]
    first = job("1")
    pool.notify(first)
    assert pool.mine()
    pool.send({"id": None, "method": "mining.set_extranonce", "params": ["cafe", 3]})
    old = pool.mine(1.0)
    assert old and all(len(s["params"][2]) == 8 for s in old)
    assert all(first.share_hash(EXTRANONCE1, s, BIP320) <= EASY_TARGET for s in old)
    second = job("2", extranonce_size=2 + 3)
    pool.notify(second)
    new = pool.mine(1.0)
    assert new and all(len(s["params"][2]) == 6 for s in new)
    assert all(second.share_hash(bytes.fromhex("cafe"), s, BIP320) <= EASY_TARGET for s in new)


def test_a_block_stops_hashing_until_clean_jobs(pools):
    pool = pools()
    pool.handshake()
    block_target = target_from_nbits(REGTEST_NBITS)
    first = job("1", nbits=REGTEST_NBITS)
    pool.notify(first)
    (block,) = pool.mine()
    value = first.share_hash(EXTRANONCE1, block, BIP320)
    assert value <= block_target
    assert pool.device.stats.blocks == [value.to_bytes(32, "little")]
    assert pool.mine(1.0) + pool.mine(1.0) == [], "no rival blocks on the same prev hash"
    assert pool.clock.getDelayedCalls() == []

    pool.notify(job("2", nbits=REGTEST_NBITS), clean_jobs=False)
    assert pool.mine(1.0) == [], "a job on the same prev hash without clean_jobs does not resume"

    tip = sha256d(b"block 1")
    third = job("3", height=2, nbits=REGTEST_NBITS, prev_hash=tip)
    pool.notify(third, clean_jobs=True)
    (block,) = pool.mine()
    assert third.share_hash(EXTRANONCE1, block, BIP320) <= block_target
    assert len(pool.device.stats.blocks) == 2
    assert pool.device.stats.shares_submitted == 2


def test_a_new_prev_hash_resumes_even_without_clean_jobs(pools):
    pool = pools()
    pool.handshake()
    pool.notify(job("1", nbits=REGTEST_NBITS))
    assert len(pool.mine()) == 1
    pool.notify(job("2", nbits=REGTEST_NBITS, prev_hash=bytes(range(32))), clean_jobs=False)
    assert len(pool.mine(1.0)) == 1


def test_a_notify_before_authorization_waits_for_it(pools):
    pool = pools(version_rolling=False)
    (subscribe,) = pool.received()
    pool.answer(subscribe, [[], EXTRANONCE1.hex(), 4])
    (authorize,) = pool.received()
    pool.set_difficulty(ANY)
    pool.notify(job("1"))
    assert pool.mine() + pool.mine(5.0) == []
    pool.answer(authorize, True)
    assert len(pool.mine()) == 64


def test_a_notify_sent_with_an_id_is_still_a_job(pools):
    pool = pools()
    pool.handshake(difficulty=ANY)
    pool.send({"id": 77, "method": "mining.notify", "params": job("1").params(True)})
    assert len(pool.mine()) == 64


def test_answers_to_submits_are_counted_and_waited_for(pools):
    pool = pools(nonces_per_slice=3)
    pool.handshake(difficulty=ANY)
    pool.notify(job("1"))
    first, second, third = pool.mine()
    acknowledged = pool.factory.when(lambda s: s.shares_acknowledged >= 1)
    assert not acknowledged.called
    pool.answer(first, True)
    assert acknowledged.called
    pool.answer(second, None, [23, "Low difficulty share", None])
    pool.answer(third, False)
    stats = pool.device.stats
    assert (stats.shares_submitted, stats.shares_acknowledged) == (3, 1)
    assert stats.rejections == ["23 Low difficulty share", "refused"]
    assert pool.factory.when(lambda s: len(s.rejections) == 2).called

    never = pool.factory.when(lambda s: s.shares_acknowledged >= 100)
    failures: list[Exception] = []
    never.addErrback(lambda f: failures.append(f.value))
    pool.close()
    assert len(failures) == 1 and isinstance(failures[0], ConnectionError)


def test_client_reconnect_closes_the_connection_by_default(pools):
    pool = pools()
    pool.handshake()
    pool.send({"id": None, "method": "client.reconnect", "params": ["pool2.example", 3334, 5]})
    assert pool.device.reconnects == [Reconnect("pool2.example", 3334, 5)]
    assert pool.transport.disconnecting


def test_client_reconnect_calls_the_callback(pools):
    calls = []
    pool = pools(on_reconnect=lambda host, port, wait: calls.append((host, port, wait)))
    pool.handshake()
    pool.send({"id": None, "method": "client.reconnect", "params": []})
    assert calls == [(None, None, 0)]
    assert pool.device.reconnects == [Reconnect(None, None, 0)]
    assert not pool.transport.disconnecting


def test_garbage_from_the_pool_is_skipped(pools):
    pool = pools()
    pool.handshake(difficulty=ANY)
    pool.device.dataReceived(
        b"not json\n"
        b"[1, 2, 3]\n"
        b'{"id": 999, "result": true, "error": null}\n'
        b'{"id": null, "method": "mining.frobnicate", "params": []}\n'
        b'{"id": null, "method": "mining.notify", "params": ["1", "zz"]}\n'
        b'{"id": null, "method": "mining.set_difficulty", "params": [-1]}\n'
        b'{"id": null, "method": "client.get_version", "params": []}\n'
    )
    assert not pool.transport.disconnecting
    assert pool.device.job is None
    pool.notify(job("1"))
    assert len(pool.mine()) == 64


def test_an_over_long_line_drops_the_connection(pools):
    pool = pools()
    pool.handshake()
    pool.device.dataReceived(b'{"id": null, "method": "mining.notify", "params": ["' + b"0" * MAX_LINE_LENGTH)
    assert pool.transport.disconnecting


def test_a_refused_subscription_or_worker_closes_the_connection(pools):
    refused = pools(version_rolling=False)
    (subscribe,) = refused.received()
    refused.answer(subscribe, None, [20, "Go away", None])
    assert refused.transport.disconnecting

    unknown = pools(version_rolling=False)
    (subscribe,) = unknown.received()
    unknown.answer(subscribe, [[], EXTRANONCE1.hex(), 4])
    (authorize,) = unknown.received()
    unknown.answer(authorize, False)
    assert unknown.transport.disconnecting
    assert not unknown.device.authorized


def test_a_pool_that_never_authorizes_is_dropped(pools):
    pool = pools()
    pool.clock.advance(SETUP_TIMEOUT - 1)
    assert not pool.transport.disconnecting
    pool.clock.advance(1)
    assert pool.transport.disconnecting
