"""Share validation: every rejection code, blocks, and agreement with an independent checker."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.bitcoin.target import MAX_TARGET, target_from_nbits
from sv2proxy.pool.channel import Channel, ChannelKind
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.pool.validation import MAX_FUTURE_NTIME, validate_share

NOW = 1_800_000_000
PATH = tuple(hashlib.sha256(bytes([i])).digest() for i in range(3))
PREV = PrevHash(prev_hash=hashlib.sha256(b"tip").digest(), min_ntime=NOW - 60, nbits=0x1D00FFFF)
EASY = MAX_TARGET >> 3  # one hash in 8 is a share
VERSION = 0x20000000


def work(future: bool = True, rolling: bool = True, source_id: int = 1) -> Work:
    return Work(source_id, VERSION, rolling, b"\x01" * 41 + b"cb-head", b"cb-tail" + b"\x02" * 60, PATH, future)


def channel(kind: ChannelKind = ChannelKind.EXTENDED, target: int = EASY, prev: PrevHash = PREV) -> Channel:
    standard = kind is ChannelKind.STANDARD
    prefix = b"\x00\x00\x00\x07" + (b"\x00" * 8 if standard else b"")
    ch = Channel(7, kind, "worker", 1e9, 7, prefix, 0 if standard else 8, target, MAX_TARGET)
    ch.add_job(1, work())
    ch.activate(1, prev)
    return ch


def slow_hash(ch: Channel, job_id: int, nonce: int, ntime: int, version: int, extranonce: bytes) -> int:
    """Everything from scratch: coinbase bytes, txid, merkle root, header, SHA256d."""
    job = ch.jobs.lookup(job_id)
    w = job.work
    coinbase = w.coinbase_prefix + ch.extranonce_prefix + extranonce + w.coinbase_suffix
    root = hashlib.sha256(hashlib.sha256(coinbase).digest()).digest()
    for node in w.merkle_path:
        root = hashlib.sha256(hashlib.sha256(root + node).digest()).digest()
    header = (
        version.to_bytes(4, "little")
        + job.prev.prev_hash
        + root
        + ntime.to_bytes(4, "little")
        + job.prev.nbits.to_bytes(4, "little")
        + nonce.to_bytes(4, "little")
    )
    return int.from_bytes(hashlib.sha256(hashlib.sha256(header).digest()).digest(), "little")


def mine(ch: Channel, want, extranonce: bytes = b"\x00" * 8, job_id: int = 1, version: int = VERSION, start=0):
    """The first nonce from ``start`` whose hash value satisfies ``want``."""
    ext = extranonce if ch.kind is ChannelKind.EXTENDED else b""
    for nonce in range(start, start + 100_000):
        if want(slow_hash(ch, job_id, nonce, NOW, version, ext)):
            return nonce
    raise AssertionError("no nonce found")


@pytest.mark.parametrize("kind", list(ChannelKind))
def test_a_share_meeting_the_target_is_accepted_once(kind):
    ch = channel(kind)
    nonce = mine(ch, lambda h: h <= EASY)
    ext = b"\x00" * 8 if kind is ChannelKind.EXTENDED else None
    result = validate_share(ch, 1, nonce, NOW, VERSION, ext, NOW)
    assert result.accepted and not result.is_block
    assert validate_share(ch, 1, nonce, NOW, VERSION, ext, NOW).error_code == "duplicate-share"


@pytest.mark.parametrize("kind", list(ChannelKind))
def test_a_share_missing_the_target_is_difficulty_too_low_every_time(kind):
    ch = channel(kind)
    nonce = mine(ch, lambda h: h > EASY)
    ext = b"\x00" * 8 if kind is ChannelKind.EXTENDED else None
    for _ in range(2):
        assert validate_share(ch, 1, nonce, NOW, VERSION, ext, NOW).error_code == "difficulty-too-low"


def test_unknown_and_stale_jobs():
    ch = channel()
    assert validate_share(ch, 99, 0, NOW, VERSION, b"\x00" * 8, NOW).error_code == "invalid-job-id"
    ch.add_job(2, work(source_id=2))
    assert validate_share(ch, 2, 0, NOW, VERSION, b"\x00" * 8, NOW).error_code == "invalid-job-id"  # not active
    ch.activate(2, PrevHash(hashlib.sha256(b"next").digest(), NOW, 0x1D00FFFF))
    assert validate_share(ch, 1, 0, NOW, VERSION, b"\x00" * 8, NOW).error_code == "stale-share"


def test_past_jobs_still_accept_shares_until_a_new_prev_hash():
    ch = channel()
    ch.add_job(2, work(future=False, source_id=2))  # replaces job 1 on the same tip
    nonce = mine(ch, lambda h: h <= EASY, job_id=1)
    assert validate_share(ch, 1, nonce, NOW, VERSION, b"\x00" * 8, NOW).accepted


def test_past_job_history_is_bounded():
    ch = channel()
    for job_id in range(2, 22):  # job 21 active; the 16 most recent before it (5..20) are past
        ch.add_job(job_id, work(future=False, source_id=job_id))
    assert validate_share(ch, 1, 0, NOW, VERSION, b"\x00" * 8, NOW).error_code == "stale-share"
    assert validate_share(ch, 4, 0, NOW, VERSION, b"\x00" * 8, NOW).error_code == "stale-share"
    nonce = mine(ch, lambda h: h <= EASY, job_id=5)
    assert validate_share(ch, 5, nonce, NOW, VERSION, b"\x00" * 8, NOW).accepted


@pytest.mark.parametrize("size", [0, 7, 9, 32])
def test_bad_extranonce_size(size):
    ch = channel()
    assert validate_share(ch, 1, 0, NOW, VERSION, b"\x00" * size, NOW).error_code == "bad-extranonce-size"


def test_standard_channel_shares_carry_no_extranonce():
    ch = channel(ChannelKind.STANDARD)
    assert validate_share(ch, 1, 0, NOW, VERSION, b"\x01", NOW).error_code == "bad-extranonce-size"


def test_version_rules():
    ch = channel()
    rolled = VERSION | 0x00002000
    nonce = mine(ch, lambda h: h <= EASY, version=rolled)
    assert validate_share(ch, 1, nonce, NOW, rolled, b"\x00" * 8, NOW).accepted
    assert (
        validate_share(ch, 1, 0, NOW, VERSION | 0x40000000, b"\x00" * 8, NOW).error_code
        == "invalid-non-rollable-version-bit"
    )
    fixed = Channel(8, ChannelKind.EXTENDED, "w", 1.0, 8, b"\x00\x00\x00\x08", 8, EASY, MAX_TARGET)
    fixed.add_job(1, work(rolling=False))
    fixed.activate(1, PREV)
    assert validate_share(fixed, 1, 0, NOW, rolled, b"\x00" * 8, NOW).error_code == "version-rolling-not-allowed"


def test_ntime_bounds():
    ch = channel()
    assert validate_share(ch, 1, 0, PREV.min_ntime - 1, VERSION, b"\x00" * 8, NOW).error_code == "invalid-share"
    late = NOW + MAX_FUTURE_NTIME + 1
    assert validate_share(ch, 1, 0, late, VERSION, b"\x00" * 8, NOW).error_code == "invalid-share"


def test_a_block_is_accepted_even_when_the_channel_target_is_harder():
    regtest = PrevHash(PREV.prev_hash, PREV.min_ntime, 0x207FFFFF)
    hard = MAX_TARGET >> 20
    ch = channel(target=hard, prev=regtest)
    network = target_from_nbits(0x207FFFFF)
    nonce = mine(ch, lambda h: hard < h <= network)
    result = validate_share(ch, 1, nonce, NOW, VERSION, b"\x00" * 8, NOW)
    assert result.accepted and result.is_block


def test_a_target_change_keeps_in_flight_shares_valid_and_applies_to_future_jobs():
    ch = channel()
    nonce = mine(ch, lambda h: EASY >> 4 < h <= EASY)
    ch.set_target(EASY >> 4)
    ch.add_job(2, work(source_id=2))
    assert ch.jobs.future_jobs()[0].target == EASY >> 4
    assert validate_share(ch, 1, nonce, NOW, VERSION, b"\x00" * 8, NOW).accepted


@given(
    nonce=st.integers(0, 2**32 - 1),
    ntime=st.integers(NOW - 120, NOW + 60),
    rolled=st.integers(0, 2**32 - 1),
    extranonce=st.binary(min_size=6, max_size=10),
    job_id=st.sampled_from([1, 2, 3]),
)
def test_validation_agrees_with_an_independent_checker(nonce, ntime, rolled, extranonce, job_id):
    ch = channel(target=MAX_TARGET >> 1)
    version = VERSION ^ (rolled & 0x1FFFE000) if rolled & 1 else rolled
    result = validate_share(ch, job_id, nonce, ntime, version, extranonce, NOW)
    if job_id != 1:
        expected = "invalid-job-id"
    elif len(extranonce) != 8:
        expected = "bad-extranonce-size"
    elif (version ^ VERSION) & ~0x1FFFFFE0 & 0xFFFFFFFF:
        expected = "invalid-non-rollable-version-bit"
    elif ntime < PREV.min_ntime:
        expected = "invalid-share"
    else:
        value = slow_hash(ch, 1, nonce, ntime, version, extranonce)
        if value <= target_from_nbits(PREV.nbits):
            expected = None
        else:
            expected = None if value <= MAX_TARGET >> 1 else "difficulty-too-low"
    assert result.error_code == expected
    if expected is None:
        assert struct.unpack("<I", result.hash[:4]) is not None
        assert int.from_bytes(result.hash, "little") == slow_hash(ch, 1, nonce, ntime, version, extranonce)
