"""Sv1UpstreamSession: every line a Stratum V1 pool sends, and every share we forward, as ordered
actions and lines."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv1.strategies import hash32, json_values, small_bytes, u32
from sv2proxy.bitcoin.target import difficulty_to_target
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.sv1 import (
    Request,
    error,
    notify,
    parse_message,
    reconnect,
    result,
    set_difficulty,
    set_extranonce,
    set_version_mask,
    subscribe_result,
)
from sv2proxy.upstream.session import (
    MAX_IN_FLIGHT,
    MAX_JOBS,
    ExtranoncePrefixChanged,
    Fatal,
    Ignored,
    NewWork,
    ReconnectTo,
    ShareResult,
    TargetChanged,
)
from sv2proxy.upstream.sv1_session import (
    MAX_RECONNECT_WAIT,
    Authorized,
    NewTip,
    SendLine,
    Sv1Phase,
    Sv1UpstreamSession,
)

from .fakes import EASY_HASH, HARD_HASH, share

EXTRANONCE1 = bytes.fromhex("f000000d")
SIZE = 8
MASK = 0x1FFFE000
NBITS = 0x1D00FFFF
NTIME = 1_700_000_000
PREV = bytes(range(32))  # raw, as SV2's SetNewPrevHash carries it
OTHER_PREV = bytes(range(32, 64))
PATH = (b"\x11" * 32, b"\x22" * 32)
COINB1 = b"\x01" * 40
COINB2 = b"\x02" * 60
DIFF1 = difficulty_to_target(1.0)
# Our requests' ids: configure, subscribe, then (once subscribed) extranonce.subscribe, authorize.
CONFIGURE, SUBSCRIBE, EXTRANONCE_SUBSCRIBE, AUTHORIZE = 1, 2, 3, 4
FIRST_SUBMIT = 5


def session(**kwargs) -> Sv1UpstreamSession:
    options = {"min_extranonce2_size": 6, "user_agent": "sv2proxy/test"}
    options.update(kwargs)
    return Sv1UpstreamSession("proxy.worker", "secret", "pool.example", 3333, **options)


def line(data: bytes | dict) -> bytes:
    return data if isinstance(data, bytes) else json.dumps(data).encode() + b"\n"


def granted(mask: int | None = MASK) -> bytes:
    if mask is None:
        return result(CONFIGURE, {"version-rolling": False})
    return result(CONFIGURE, {"version-rolling": True, "version-rolling.mask": f"{mask:08x}"})


def subscribed(extranonce1: bytes = EXTRANONCE1, size: int = SIZE) -> bytes:
    return subscribe_result(SUBSCRIBE, "deadbeef", extranonce1, size)


def job(
    job_id: str = "a1",
    prev: bytes = PREV,
    clean: bool = True,
    ntime: int = NTIME,
    nbits: int = NBITS,
    version: int = 0x20000000,
) -> bytes:
    return notify(job_id, prev, COINB1, COINB2, PATH, version, nbits, ntime, clean)


def work(source_id: int, tip: bool = True, ntime: int = NTIME, rolling: bool = True) -> Work:
    return Work(
        source_id=source_id,
        version=0x20000000,
        version_rolling_allowed=rolling,
        coinbase_prefix=COINB1,
        coinbase_suffix=COINB2,
        merkle_path=PATH,
        future=tip,
        min_ntime=None if tip else ntime,
    )


def authorized(mask: int | None = MASK, **kwargs) -> Sv1UpstreamSession:
    s = session(**kwargs)
    s.start()
    s.receive(granted(mask) + subscribed())
    [authorize] = s.receive(result(AUTHORIZE, True))
    assert isinstance(authorize, Authorized)
    return s


def mining(mask: int | None = MASK) -> Sv1UpstreamSession:
    """An authorized session mining job "a1" (our source id 1) at difficulty 1."""
    s = authorized(mask)
    [tip] = s.receive(job("a1"))
    assert isinstance(tip, NewTip) and tip.work.source_id == 1
    return s


def full(rolled: bytes = b"\x00\x01" + b"\x99" * 6, extranonce1: bytes = EXTRANONCE1) -> bytes:
    return extranonce1 + rolled


def sent(actions) -> list[Request]:
    """The requests in SendLine actions (or raw lines), parsed back."""
    lines = [a.line if isinstance(a, SendLine) else a for a in actions]
    return [parse_message(raw.rstrip(b"\n")) for raw in lines]


# -- start, configure, subscribe, authorize ---------------------------------------------------


def test_start_asks_for_version_rolling_and_subscribes_in_one_go():
    s = session()
    assert sent(s.start()) == [
        Request(
            CONFIGURE,
            "mining.configure",
            (["version-rolling"], {"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 0}),
        ),
        Request(SUBSCRIBE, "mining.subscribe", ("sv2proxy/test",)),
    ]
    assert s.start() == [] and s.phase is Sv1Phase.SUBSCRIBING


def test_the_subscription_brings_extranonce_subscribe_and_authorize_and_then_we_are_ready():
    s = session()
    s.start()
    assert s.receive(granted()) == []
    actions = s.receive(subscribed())
    assert sent(actions) == [
        Request(EXTRANONCE_SUBSCRIBE, "mining.extranonce.subscribe", ()),
        Request(AUTHORIZE, "mining.authorize", ("proxy.worker", "secret")),
    ]
    assert (s.phase, s.extranonce1, s.extranonce2_size, s.total_extranonce_size) == (
        Sv1Phase.AUTHORIZING,
        EXTRANONCE1,
        SIZE,
        12,
    )
    assert s.receive(result(EXTRANONCE_SUBSCRIBE, True)) == []
    assert s.receive(result(AUTHORIZE, True)) == [Authorized(EXTRANONCE1, SIZE, MASK, DIFF1)]
    assert s.is_open and s.version_mask == MASK
    assert s.receive(result(AUTHORIZE, True)) == [Ignored("an answer to id 4, which is no request in flight")]


def test_a_job_before_the_authorization_waits_for_it_and_then_is_the_tip():
    s = session()
    s.start()
    [ignored] = s.receive(job("early"))  # not subscribed yet: no extranonce to mine it with
    assert isinstance(ignored, Ignored) and "before our subscription" in ignored.reason
    s.receive(subscribed())
    # The usual order of a pool: difficulty and job right after the subscription.
    assert s.receive(set_difficulty(2.0) + job("j1") + set_difficulty(4.0)) == [
        TargetChanged(difficulty_to_target(2.0)),
        TargetChanged(difficulty_to_target(4.0)),
    ]
    # No configure answer (the pool ignored it): no version rolling.
    actions = s.receive(result(AUTHORIZE, True))
    assert actions == [
        Authorized(EXTRANONCE1, SIZE, None, difficulty_to_target(4.0)),
        NewTip(work(1, rolling=False), PrevHash(PREV, NTIME, NBITS)),
    ]
    # The job keeps the difficulty it came with (2), not the one set after it.
    between = (difficulty_to_target(4.0) + 1).to_bytes(32, "little")
    [submit] = sent(s.submit(share(1, full(), between)))
    assert submit.params[:2] == ("proxy.worker", "j1") and len(submit.params) == 5  # no version bits


@pytest.mark.parametrize(
    ("answer", "mask"),
    [
        (granted(MASK), MASK),
        (granted(0x1FFFFFE0), MASK),  # more than asked: what we asked
        (granted(0x00006000), 0x00006000),  # fewer bits: those
        (granted(None), None),
        (granted(0xE0000000), None),  # nothing we asked for
        (error(CONFIGURE, 20, "Method not found"), None),
        (result(CONFIGURE, None), None),
        (result(CONFIGURE, ["version-rolling"]), None),  # unreadable
        (result(CONFIGURE, {"version-rolling": True}), None),  # no mask
    ],
)
def test_configure_answers_give_a_mask_or_none_and_never_stop_the_session(answer, mask):
    s = session()
    s.start()
    for action in s.receive(answer):
        assert isinstance(action, Ignored)
    s.receive(subscribed())
    [ready] = s.receive(result(AUTHORIZE, True))
    assert ready == Authorized(EXTRANONCE1, SIZE, mask, DIFF1)
    [tip] = s.receive(job())
    assert tip.work.version_rolling_allowed is (mask is not None)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (error(SUBSCRIBE, 20, "go away"), "refused mining.subscribe: 20 go away"),
        (result(SUBSCRIBE, None), "refused mining.subscribe"),
        (result(SUBSCRIBE, [[], "zz", 4]), "unusable mining.subscribe result"),
        (result(SUBSCRIBE, [[], "00", 99]), "unusable mining.subscribe result"),
        (subscribed(size=4), "gives 4 extranonce2 bytes; we need 6"),
        (subscribed(extranonce1=bytes(25), size=8), "25 + 8 bytes is longer than 32"),
    ],
)
def test_a_refused_or_unusable_subscription_is_fatal(answer, words):
    s = session()
    s.start()
    [fatal] = s.receive(answer)
    assert isinstance(fatal, Fatal) and words in fatal.reason, fatal
    assert s.phase is Sv1Phase.CLOSED
    assert s.receive(subscribed()) == []  # nothing after the end


@pytest.mark.parametrize(
    "answer", [error(AUTHORIZE, 24, "Unauthorized worker"), result(AUTHORIZE, False), result(AUTHORIZE, "yes")]
)
def test_a_refused_worker_is_fatal(answer):
    s = session()
    s.start()
    s.receive(subscribed())
    [fatal] = s.receive(answer)
    assert isinstance(fatal, Fatal) and "refused the worker 'proxy.worker'" in fatal.reason


def test_a_pool_without_extranonce_subscribe_is_fine():
    s = session()
    s.start()
    s.receive(subscribed())
    [ignored] = s.receive(error(EXTRANONCE_SUBSCRIBE, 20, "Method not found"))
    assert isinstance(ignored, Ignored) and "extranonce.subscribe" in ignored.reason
    assert isinstance(s.receive(result(AUTHORIZE, True))[0], Authorized)


def test_bytes_before_start_are_fatal_and_nothing_counts_after_the_end():
    s = session()
    [fatal] = s.receive(subscribed())
    assert isinstance(fatal, Fatal) and s.receive(subscribed()) == []
    assert s.start() == []


# -- jobs -------------------------------------------------------------------------------------


def test_clean_jobs_and_new_prev_hashes_are_new_tips_other_jobs_apply_at_once():
    s = authorized()
    assert s.receive(job("a1")) == [NewTip(work(1), PrevHash(PREV, NTIME, NBITS))]
    assert s.receive(job("a2", clean=False, ntime=NTIME + 30)) == [NewWork(work(2, tip=False, ntime=NTIME + 30))]
    assert s.receive(job("a2", clean=True, ntime=NTIME + 40)) == [NewTip(work(3), PrevHash(PREV, NTIME + 40, NBITS))]
    # Another prev hash is a new block even when the pool does not say clean.
    assert s.receive(job("b1", prev=OTHER_PREV, clean=False)) == [NewTip(work(4), PrevHash(OTHER_PREV, NTIME, NBITS))]
    # So is other nBits on the same prev hash (testnet's minimum-difficulty blocks).
    [tip] = s.receive(job("b2", prev=OTHER_PREV, clean=False, nbits=0x1D00FFFE))
    assert isinstance(tip, NewTip) and tip.prev.nbits == 0x1D00FFFE
    assert s.prev == PrevHash(OTHER_PREV, NTIME, 0x1D00FFFE)
    assert [s.v1_job_id(n) for n in range(1, 6)] == [None, None, None, None, "b2"]


def test_the_prevhash_is_word_swapped_back_to_raw_bytes():
    # PROTOCOL.md §6: block 1's prev hash (the genesis hash), raw and as a V1 notify writes it.
    raw = bytes.fromhex("6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000")
    text = "0a8ce26f72b3f1b646a2a6c14ff763ae65831e939c085ae10019d66800000000"
    s = authorized()
    params = ["g", text, COINB1.hex(), COINB2.hex(), [], "20000000", "1d00ffff", f"{NTIME:08x}", True]
    [tip] = s.receive(line({"id": None, "method": "mining.notify", "params": params}))
    assert tip.prev == PrevHash(raw, NTIME, NBITS)
    assert tip.work.merkle_path == ()


def test_a_new_tip_forgets_every_older_job():
    s = mining()
    s.receive(job("a2", clean=False))
    s.receive(job("b1", prev=OTHER_PREV))
    assert s.submit(share(1, full())) == [] and s.submit(share(2, full())) == []
    assert s.not_forwarded == {"unknown job": 2}
    assert len(s.submit(share(3, full()))) == 1


def test_jobs_on_one_tip_are_remembered_boundedly():
    s = mining()
    for n in range(MAX_JOBS + 5):
        s.receive(job(f"x{n}", clean=False))
    assert s.v1_job_id(1) is None and s.v1_job_id(MAX_JOBS + 6) == f"x{MAX_JOBS + 4}"


@pytest.mark.parametrize("nbits", [0x1D80FFFF, 0xFF00FFFF, 0x01003456])  # negative, overflowing, zero
def test_a_job_with_unusable_nbits_is_fatal(nbits):
    s = authorized()
    [fatal] = s.receive(job(nbits=nbits))
    assert isinstance(fatal, Fatal) and "nbits" in fatal.reason


def test_notifications_with_an_id_are_read_by_their_method():
    s = authorized()
    params = ["n1", PREV.hex(), COINB1.hex(), COINB2.hex(), [], "20000000", "1d00ffff", f"{NTIME:08x}", True]
    [tip] = s.receive(line({"id": 77, "method": "mining.notify", "params": params}))
    assert isinstance(tip, NewTip) and s.v1_job_id(1) == "n1"


# -- difficulty -------------------------------------------------------------------------------


def test_set_difficulty_applies_from_the_next_job_on():
    s = mining()  # job 1 at difficulty 1
    assert s.receive(set_difficulty(1024)) == [TargetChanged(difficulty_to_target(1024))]
    assert s.receive(set_difficulty(1024)) == []  # the same again: nothing to say
    s.receive(job("a2", clean=False))  # job 2 at 1024
    between = (difficulty_to_target(1024) + 1).to_bytes(32, "little")  # meets 1, not 1024
    assert len(s.submit(share(1, full(), between))) == 1
    assert s.submit(share(2, full(), between)) == []
    assert s.below_target == 1


@pytest.mark.parametrize("bad", ["0", "-1", "NaN", "1e400", '"abc"', "true", "null", '"-5"', "[]"])
def test_an_absurd_difficulty_is_ignored_and_the_target_kept(bad):
    s = mining()
    raw = b'{"id":null,"method":"mining.set_difficulty","params":[' + bad.encode() + b"]}\n"
    [ignored] = s.receive(raw)
    assert isinstance(ignored, Ignored)
    assert s.target == DIFF1 and s.is_open


def test_fractional_and_huge_difficulties_are_taken_as_targets():
    s = mining()
    s.receive(set_difficulty(0.001) + job("a2", clean=False) + set_difficulty(1e300) + job("a3", clean=False))
    above = (difficulty_to_target(0.001) + 1).to_bytes(32, "little")
    assert s.submit(share(2, full(), above)) == []
    assert len(s.submit(share(2, full(), EASY_HASH))) == 1
    assert s.submit(share(3, full(), (2).to_bytes(32, "little"))) == []  # nothing but a block meets 1e300
    assert len(s.submit(share(3, full(), HARD_HASH, is_block=True))) == 1


# -- extranonce and version mask --------------------------------------------------------------


def test_set_extranonce_moves_the_space_for_the_jobs_after_it():
    s = mining()
    assert s.receive(set_extranonce(b"\xab\xcd", 10)) == [ExtranoncePrefixChanged(b"\xab\xcd", 10)]
    assert s.receive(set_extranonce(b"\xab\xcd", 10)) == []  # the same again
    s.receive(job("a2", clean=False))
    old = sent(s.submit(share(1, full())))  # job 1 keeps the old extranonce1 and size
    new = sent(s.submit(share(2, b"\xab\xcd" + b"\x07" * 10)))
    assert [r.params[2] for r in old + new] == [("0001" + "99" * 6), "07" * 10]
    assert s.submit(share(2, full())) == []
    assert s.not_forwarded == {"extranonce outside the pool's space": 1}


@pytest.mark.parametrize(
    ("extranonce1", "size", "words"), [(b"\x01", 5, "gives 5 extranonce2 bytes"), (bytes(30), 6, "longer than 32")]
)
def test_set_extranonce_without_room_for_us_is_fatal(extranonce1, size, words):
    s = mining()
    [fatal] = s.receive(set_extranonce(extranonce1, size))
    assert isinstance(fatal, Fatal) and words in fatal.reason


def test_set_extranonce_before_the_authorization_changes_what_it_announces():
    s = session()
    s.start()
    s.receive(subscribed() + job("old-space"))
    assert s.receive(set_extranonce(b"\x77", 7)) == []
    # The job kept from before was for the old extranonce1: none is given out.
    assert s.receive(result(AUTHORIZE, True)) == [Authorized(b"\x77", 7, None, DIFF1)]


def test_set_version_mask_narrows_what_is_forwarded():
    s = mining()
    rolled = dataclasses.replace(share(1, full()), version=0x20000000 | 0x00006000)
    [submit] = sent(s.submit(rolled))
    assert submit.params[5] == "00006000"
    assert s.receive(set_version_mask(0x00002000)) == []
    assert s.submit(rolled) == []
    assert s.not_forwarded == {"version bits the pool does not allow": 1}
    s.receive(set_version_mask(0))  # nothing rollable: no version bits at all
    s.receive(job("a2", clean=False))
    [submit] = sent(s.submit(share(2, full())))
    assert len(submit.params) == 5
    [tip] = s.receive(job("a3"))
    assert tip.work.version_rolling_allowed is False


def test_set_version_mask_without_version_rolling_is_ignored():
    s = mining(mask=None)
    [ignored] = s.receive(set_version_mask(MASK))
    assert isinstance(ignored, Ignored) and s.version_mask is None


# -- shares -----------------------------------------------------------------------------------


def test_a_share_for_the_pool_is_one_mining_submit_with_the_v1_job_id_and_extranonce2():
    s = mining()
    rolled = dataclasses.replace(share(1, full()), version=0x20000000 | 0x0001E000, ntime=NTIME + 5, nonce=0xDEADBEEF)
    [raw] = s.submit(rolled)
    assert raw.endswith(b"\n")
    assert json.loads(raw) == {
        "id": FIRST_SUBMIT,
        "method": "mining.submit",
        "params": ["proxy.worker", "a1", "0001999999999999", f"{NTIME + 5:08x}", "deadbeef", "0001e000"],
    }
    assert (s.forwarded, s.in_flight) == (1, 1)


def test_without_version_rolling_a_share_rolling_the_version_is_not_forwarded():
    s = mining(mask=None)
    [submit] = sent(s.submit(share(1, full())))
    assert len(submit.params) == 5
    assert s.submit(dataclasses.replace(share(1, full()), version=0x20002000)) == []


def test_shares_below_the_pool_target_stay_local_unless_they_are_blocks():
    s = mining()
    assert s.submit(share(1, full(), HARD_HASH)) == []
    assert s.below_target == 1 and s.in_flight == 0
    assert len(s.submit(share(1, full(), HARD_HASH, is_block=True))) == 1


@pytest.mark.parametrize(
    ("made", "reason"),
    [
        (share(9, full()), "unknown job"),
        (share(1, full()[:-1]), "extranonce outside the pool's space"),
        (share(1, b"\x00" * 4 + full()[4:]), "extranonce outside the pool's space"),
        (dataclasses.replace(share(1, full()), version=0x20000020), "version bits the pool does not allow"),
    ],
)
def test_shares_that_cannot_be_for_the_pool_are_not_forwarded(made, reason):
    s = mining()
    assert s.submit(made) == []
    assert s.not_forwarded == {reason: 1}


def test_shares_before_the_authorization_are_not_forwarded():
    s = session()
    s.start()
    s.receive(subscribed())
    assert s.submit(share(1, full())) == []
    assert s.not_forwarded == {"not authorized": 1}


def test_share_answers_are_mapped_back_and_counted():
    s = mining()
    for worker in "abcde":
        s.submit(share(1, full(), worker=worker, channel_id=ord(worker)))
    answers = (
        result(FIRST_SUBMIT, True)
        + error(FIRST_SUBMIT + 1, 23, "Low difficulty share")
        + result(FIRST_SUBMIT + 2, False)
        + line({"id": FIRST_SUBMIT + 3, "result": None, "error": {"code": 99, "message": "Above target"}})
        + line({"id": FIRST_SUBMIT + 4, "result": None, "error": [21, "Stale", None]})
    )
    assert s.receive(answers) == [
        ShareResult(FIRST_SUBMIT, True, None, 1, "a", ord("a")),
        ShareResult(FIRST_SUBMIT + 1, False, "difficulty-too-low", 1, "b", ord("b"), detail="23 Low difficulty share"),
        ShareResult(FIRST_SUBMIT + 2, False, "rejected", 1, "c", ord("c")),
        ShareResult(FIRST_SUBMIT + 3, False, "rejected", 1, "d", ord("d"), detail="99 Above target"),
        ShareResult(FIRST_SUBMIT + 4, False, "stale-share", 1, "e", ord("e"), detail="21 Stale"),
    ]
    assert (s.accepted, s.accepted_shares_sum, dict(s.rejected), s.in_flight) == (
        1,
        1.0,
        {"difficulty-too-low": 1, "rejected": 2, "stale-share": 1},
        0,
    )


def test_answers_to_nothing_in_flight_are_ignored():
    s = mining()
    for answer in (result(99, True), error(None, 20, "bad request"), result("5", True)):
        [ignored] = s.receive(answer)
        assert isinstance(ignored, Ignored) and "no request in flight" in ignored.reason
    assert s.is_open


def test_in_flight_shares_are_bounded():
    s = mining()
    for _ in range(MAX_IN_FLIGHT + 1):
        s.submit(share(1, full()))
    assert (s.in_flight, s.unanswered) == (MAX_IN_FLIGHT, 1)
    [ignored] = s.receive(result(FIRST_SUBMIT, True))  # given up on
    assert isinstance(ignored, Ignored)


# -- reconnect, framing, garbage --------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "action"),
    [
        (reconnect("", 0), ReconnectTo("pool.example", 3333)),
        (line({"id": None, "method": "client.reconnect", "params": []}), ReconnectTo("pool.example", 3333)),
        (reconnect("backup.example", 0), ReconnectTo("backup.example", 3333)),
        (reconnect("10.1.2.3", 4444, 5), ReconnectTo("10.1.2.3", 4444, 5.0)),
        (reconnect("10.1.2.3", 4444, 100_000), ReconnectTo("10.1.2.3", 4444, MAX_RECONNECT_WAIT)),
        (reconnect("evil host/", 1), None),
    ],
)
def test_client_reconnect_names_where_to_go_with_empty_meaning_the_same(message, action):
    s = mining()
    [got] = s.receive(message)
    if action is None:
        assert isinstance(got, Ignored)
    else:
        assert got == action


def test_an_over_long_line_is_fatal_even_before_its_newline():
    s = authorized(max_line_length=200)
    assert s.receive(b"x" * 200) == []
    [fatal] = s.receive(b"x")
    assert isinstance(fatal, Fatal) and "exceeded 200 bytes" in fatal.reason
    assert s.receive(job()) == [] and s.phase is Sv1Phase.CLOSED


def test_lines_may_come_in_any_chunks():
    whole = set_difficulty(2.0) + job("a1") + job("a2", clean=False)
    s = authorized()
    expected = s.receive(whole)
    s = authorized()
    trickled = [action for i in range(len(whole)) for action in s.receive(whole[i : i + 1])]
    assert trickled == expected and len(expected) == 3


@pytest.mark.parametrize(
    "garbage",
    [
        b"not json\n",
        b"[1, 2, 3]\n",
        b"{}\n",
        b'{"id": 1.5, "result": true}\n',
        b'{"id": null, "method": "client.show_message", "params": ["hello"]}\n',
        b'{"id": null, "method": "mining.notify", "params": ["too few"]}\n',
        b'{"id": null, "method": "mining.set_extranonce", "params": ["zz", 4]}\n',
        b"\xff\xfe\n",
    ],
)
def test_garbage_lines_are_ignored_and_do_not_count_as_messages(garbage):
    s = mining()
    before = s.messages
    [ignored] = s.receive(garbage)
    assert isinstance(ignored, Ignored) and s.is_open
    assert s.messages == before
    s.receive(set_difficulty(3))
    assert s.messages == before + 1


def test_the_constructor_refuses_an_impossible_minimum():
    for bad in (0, 33):
        with pytest.raises(ValueError, match="min_extranonce2_size"):
            Sv1UpstreamSession("x", min_extranonce2_size=bad)


# -- whatever a pool sends --------------------------------------------------------------------

ACTION_TYPES = (
    SendLine,
    Authorized,
    NewWork,
    NewTip,
    TargetChanged,
    ExtranoncePrefixChanged,
    ShareResult,
    ReconnectTo,
    Fatal,
    Ignored,
)
METHODS = [
    "mining.notify",
    "mining.set_difficulty",
    "mining.set_extranonce",
    "mining.set_version_mask",
    "client.reconnect",
    "client.get_version",
]

notifications = st.builds(
    lambda method, params, request_id: line({"id": request_id, "method": method, "params": params}),
    st.sampled_from(METHODS),
    st.lists(json_values, max_size=10),
    st.none() | st.integers(0, 10),
)
well_formed_jobs = st.builds(
    lambda job_id, prev, clean, ntime, nbits: job(job_id, prev, clean, ntime, nbits),
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from([PREV, OTHER_PREV]) | hash32,
    st.booleans(),
    u32,
    st.sampled_from([NBITS, 0x207FFFFF, 0x1D80FFFF]) | u32,
)
answers = st.builds(
    lambda request_id, value, err: line({"id": request_id, "result": value, "error": err}),
    st.integers(0, 12),
    json_values,
    st.none() | json_values,
)
setup_answers = st.sampled_from(
    [granted(), granted(None), subscribed(), subscribed(size=2), result(AUTHORIZE, True), result(AUTHORIZE, False)]
)
pool_lines = st.lists(
    st.one_of(
        notifications,
        well_formed_jobs,
        answers,
        setup_answers,
        st.builds(set_extranonce, small_bytes, st.integers(0, 32)),
        st.builds(set_difficulty, st.floats(min_value=1e-30, max_value=1e30)),
        st.binary(max_size=60),
    ),
    max_size=15,
)


@given(pool_lines, st.integers(0, 3), st.lists(st.integers(1, 8), max_size=3))
def test_no_sequence_of_lines_makes_the_session_raise(lines, shares, extranonce_sizes):
    s = session(min_extranonce2_size=1)
    s.start()
    for data in lines:
        for action in s.receive(data):
            assert isinstance(action, ACTION_TYPES)
        for source_id in range(1, shares + 1):
            for size in extranonce_sizes:
                for raw in s.submit(share(source_id, s.extranonce1 + bytes(size))):
                    request = parse_message(raw.rstrip(b"\n"))
                    assert isinstance(request, Request) and request.method == "mining.submit"


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_only_actions(data):
    s = mining()
    for action in s.receive(data + b"\n"):
        assert isinstance(action, ACTION_TYPES)
