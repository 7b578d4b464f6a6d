"""The coinbase builder (sv2proxy.bitcoin.coinbase): layout, the prefix/suffix split, payouts.

The layout vector is written one field per line with its byte order (STYLE.md); the rest checks
the split against the one transaction serializer and parser there is (sv2proxy.bitcoin.serialize).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.bitcoin.coinbase import (
    COINBASE_WITNESS,
    MAX_COINBASE_SCRIPT_SIG_SIZE,
    MAX_MONEY,
    SEQUENCE_NONFINAL,
    CoinbaseTemplate,
    build_coinbase,
    check_shares,
    parse_outputs,
    serialize_outputs,
    split_reward,
)
from sv2proxy.bitcoin.hashing import sha256d
from sv2proxy.bitcoin.script import (
    bip34_height_from_script_sig,
    bip34_height_push,
    witness_commitment,
    witness_commitment_script,
    witness_program_script,
)
from sv2proxy.bitcoin.serialize import Transaction, TxOut

P2WPKH = witness_program_script(0, bytes(range(20)))
P2TR = witness_program_script(1, bytes(range(32)))
EMPTY_COMMITMENT = witness_commitment_script(witness_commitment([]))
EXTRANONCE = bytes.fromhex("0000000700a1b2c3")


def segwit_coinbase(**overrides: object) -> CoinbaseTemplate:
    arguments: dict[str, object] = {
        "height": 204,
        "pool_tag": b"/sv2proxy/",
        "extranonce_size": 8,
        "payouts": [(P2WPKH, 2_500_000_000)],
        "extra_outputs": [TxOut(0, EMPTY_COMMITMENT)],
        "sequence": SEQUENCE_NONFINAL,
        "lock_time": 203,
        "witness": True,
    }
    arguments.update(overrides)
    return build_coinbase(**arguments)  # type: ignore[arg-type]


# --- layout ---------------------------------------------------------------------------------


def fields(*parts: str) -> bytes:
    """Hex fields, one per argument, so each can carry its own comment."""
    return bytes.fromhex("".join(parts))


def test_layout_field_by_field() -> None:
    coinbase = segwit_coinbase()
    assert coinbase.prefix == fields(
        "02000000",  # version LE4 = 2
        "01",  # input count
        "00" * 32,  # prev_txid: the null hash
        "ffffffff",  # prev_index 0xffffffff
        "17",  # scriptSig length 23 = 3 + 11 + 1 + 8: the same for every extranonce
        "02cc00",  # BIP34 height push: 204 (0xcc has its sign bit set, hence 00)
        "0a",  # OP_PUSHBYTES_10
        b"/sv2proxy/".hex(),  # the pool tag
        "08",  # OP_PUSHBYTES_8: the extranonce push's opcode ends the prefix
    )
    assert coinbase.suffix == fields(
        "feffffff",  # sequence LE4 0xfffffffe
        "02",  # output count
        "00f9029500000000",  # value LE8 2_500_000_000
        "16",  # scriptPubKey length 22
        P2WPKH.hex(),  # OP_0 PUSH20
        "0000000000000000",  # value 0
        "26",  # scriptPubKey length 38
        EMPTY_COMMITMENT.hex(),  # OP_RETURN PUSH36 aa21a9ed ‖ commitment
        "cb000000",  # lock_time LE4 203
    )
    assert (
        coinbase.witness_prefix
        == coinbase.prefix[:4]
        + fields(
            "00",  # BIP144 marker
            "01",  # BIP144 flag
        )
        + coinbase.prefix[4:]
    )
    assert (
        coinbase.witness_suffix
        == coinbase.suffix[:-4]
        + fields(
            "01",  # one witness item for the one input
            "20",  # item length 32
            "00" * 32,  # the witness reserved value
        )
        + coinbase.suffix[-4:]
    )
    assert coinbase.script_sig_size == 23


@given(extranonce=st.binary(min_size=8, max_size=8), witness=st.booleans())
def test_prefix_extranonce_suffix_is_the_legacy_serialization(extranonce: bytes, witness: bool) -> None:
    coinbase = segwit_coinbase(witness=witness)
    tx = coinbase.build(extranonce)
    legacy = coinbase.prefix + extranonce + coinbase.suffix
    assert legacy == tx.serialize(with_witness=False) == coinbase.serialize(extranonce, with_witness=False)
    assert coinbase.txid(extranonce) == sha256d(legacy) == tx.txid
    assert coinbase.serialize(extranonce) == coinbase.witness_prefix + extranonce + coinbase.witness_suffix
    assert coinbase.serialize(extranonce) == tx.serialize(with_witness=True)


def test_witness_serialization_parses_back_with_the_zero_reserved_value() -> None:
    coinbase = segwit_coinbase()
    parsed = Transaction.parse(coinbase.serialize(EXTRANONCE, with_witness=True))
    assert parsed == coinbase.build(EXTRANONCE)
    assert parsed.is_coinbase and parsed.has_witness
    assert parsed.inputs[0].witness == COINBASE_WITNESS == (bytes(32),)
    assert parsed.inputs[0].script_sig.endswith(bytes((8,)) + EXTRANONCE)
    assert parsed.txid == coinbase.txid(EXTRANONCE)
    assert parsed.wtxid == sha256d(coinbase.serialize(EXTRANONCE))


def test_without_witness_both_forms_are_the_legacy_one() -> None:
    coinbase = segwit_coinbase(witness=False, extra_outputs=())
    assert (coinbase.witness_prefix, coinbase.witness_suffix) == (coinbase.prefix, coinbase.suffix)
    assert not Transaction.parse(coinbase.serialize(EXTRANONCE)).has_witness


@pytest.mark.parametrize("height", [1, 17, 204, 840_000])
def test_script_sig_starts_with_the_bip34_height(height: int) -> None:
    coinbase = segwit_coinbase(height=height)
    script_sig = coinbase.build(EXTRANONCE).inputs[0].script_sig
    assert script_sig.startswith(bip34_height_push(height))
    assert bip34_height_from_script_sig(script_sig) == height


def test_a_template_providers_prefix_is_used_verbatim() -> None:
    coinbase = segwit_coinbase(height=None, coinbase_prefix=bytes.fromhex("02cc00"))
    assert coinbase == segwit_coinbase(height=204)


def test_no_pool_tag_means_no_push() -> None:
    coinbase = segwit_coinbase(pool_tag=b"")
    assert coinbase.script_sig_prefix == bytes.fromhex("02cc0008")


# --- bounds ---------------------------------------------------------------------------------


def test_a_script_sig_of_exactly_100_bytes_is_accepted() -> None:
    # A tag of 76+ bytes is pushed with OP_PUSHDATA1: 3 (height) + 2 + 78 (tag) + 1 + 16 (extranonce) = 100.
    coinbase = segwit_coinbase(pool_tag=b"t" * 78, extranonce_size=16)
    assert coinbase.script_sig_size == MAX_COINBASE_SCRIPT_SIG_SIZE


def test_a_script_sig_over_100_bytes_is_refused_with_the_sizes() -> None:
    with pytest.raises(ValueError) as caught:
        segwit_coinbase(pool_tag=b"t" * 79, extranonce_size=16)
    message = str(caught.value)
    for part in ("101 bytes", "100-byte limit", "3-byte height prefix", "81-byte pool tag push", "16-byte extranonce"):
        assert part in message


@pytest.mark.parametrize("size", [0, 76, 300])
def test_extranonce_size_must_be_one_direct_push(size: int) -> None:
    with pytest.raises(ValueError, match="extranonce is 1..75 bytes"):
        segwit_coinbase(extranonce_size=size, pool_tag=b"")


def test_an_extranonce_of_the_wrong_size_is_refused() -> None:
    coinbase = segwit_coinbase()
    for method in (coinbase.build, coinbase.serialize, coinbase.txid):
        with pytest.raises(ValueError, match="extranonce is 8 bytes, got 7"):
            method(EXTRANONCE[:7])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"height": None}, "exactly one of height and coinbase_prefix"),
        ({"coinbase_prefix": b"\x01\x66"}, "exactly one of height and coinbase_prefix"),
        ({"height": None, "coinbase_prefix": b""}, "coinbase_prefix is empty"),
        ({"payouts": [], "extra_outputs": []}, "at least one output"),
        ({"payouts": [(P2WPKH, -1)]}, "output 0 value -1"),
        ({"payouts": [(P2WPKH, MAX_MONEY), (P2TR, 1)]}, "sum to"),
    ],
)
def test_bad_arguments_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        segwit_coinbase(**overrides)


def test_script_sig_prefix_must_end_with_the_extranonce_push() -> None:
    with pytest.raises(ValueError, match="must end with the extranonce push opcode 0x08"):
        CoinbaseTemplate(2, bytes.fromhex("02cc0007"), 8, 0xFFFFFFFF, (TxOut(1, P2WPKH),), 0, False)


# --- outputs blob (NewTemplate.coinbase_tx_outputs) -----------------------------------------


def test_parse_outputs_reads_the_template_providers_blob() -> None:
    # sv2-tp NewTemplate at height 102 (shared/vectors/sv2-tp-frames.txt): one output, no count.
    blob = bytes.fromhex("000000000000000026" + EMPTY_COMMITMENT.hex())
    assert parse_outputs(blob, 1) == (TxOut(0, EMPTY_COMMITMENT),)
    assert serialize_outputs(parse_outputs(blob, 1)) == blob
    assert parse_outputs(b"", 0) == ()


@pytest.mark.parametrize(
    ("blob", "count", "message"),
    [
        ("00000000000000", 1, "output 0 value needs 8 bytes"),
        ("000000000000000002aa", 1, "output 0 script_pubkey needs 2 bytes"),
        ("0000000000000000", 1, "truncated"),
        ("000000000000000000ff", 1, "1 trailing bytes"),
        ("0000000000000000fd0100", 1, "non-canonical"),
    ],
)
def test_parse_outputs_refuses_malformed_blobs(blob: str, count: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_outputs(bytes.fromhex(blob), count)


@given(st.lists(st.tuples(st.integers(0, MAX_MONEY), st.binary(max_size=300)), max_size=5))
def test_outputs_round_trip(pairs: list[tuple[int, bytes]]) -> None:
    outputs = tuple(TxOut(value, script) for value, script in pairs)
    assert parse_outputs(serialize_outputs(outputs), len(outputs)) == outputs


# --- reward split ---------------------------------------------------------------------------


def test_split_reward_gives_the_remainder_to_the_first() -> None:
    assert split_reward(1001, [(P2WPKH, 50), (P2TR, 50)]) == ((P2WPKH, 501), (P2TR, 500))
    assert split_reward(10, [(P2WPKH, 1), (P2TR, 99)]) == ((P2WPKH, 1), (P2TR, 9))
    assert split_reward(0, [(P2WPKH, 100)]) == ((P2WPKH, 0),)


def test_float_and_decimal_percentages_are_taken_as_written() -> None:
    shares = [(P2WPKH, 33.3), (P2TR, 33.3), (b"\x51", 33.4)]
    assert sum(value for _, value in split_reward(1000, shares)) == 1000
    assert check_shares(shares) == (Fraction(333, 10), Fraction(333, 10), Fraction(334, 10))
    assert split_reward(3, [(P2WPKH, Decimal("66.5")), (P2TR, Fraction(67, 2))]) == ((P2WPKH, 2), (P2TR, 1))


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ([], "at least one"),
        ([(P2WPKH, 60), (P2TR, 30)], "sum to 100, they sum to 90"),
        ([(P2WPKH, 101), (P2TR, -1)], "must be positive"),
        ([(P2WPKH, 100), (P2TR, 0)], "must be positive"),
        ([(P2WPKH, True)], "must be a number"),
        ([(P2WPKH, "100")], "must be a number"),
        ([(P2WPKH, float("nan"))], "not a finite percentage"),
        ([(P2WPKH, Decimal("Infinity"))], "not a finite percentage"),
        ([(b"", 100)], "non-empty bytes"),
    ],
)
def test_bad_percentages_are_refused(shares: list[tuple[bytes, object]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_reward(100, shares)  # type: ignore[arg-type]


@pytest.mark.parametrize("total", [-1, MAX_MONEY + 1, True, 1.5])
def test_the_total_must_be_an_amount(total: object) -> None:
    with pytest.raises(ValueError, match="the reward is"):
        split_reward(total, [(P2WPKH, 100)])  # type: ignore[arg-type]


@st.composite
def percentages(draw: st.DrawFn) -> list[Decimal]:
    """1..10 positive percentages with up to two decimals that sum to exactly 100."""
    cuts = draw(st.lists(st.integers(1, 9999), unique=True, max_size=9))
    edges = [0, *sorted(cuts), 10000]
    return [Decimal(high - low) / 100 for low, high in zip(edges, edges[1:], strict=False)]


@given(total=st.integers(0, MAX_MONEY), percents=percentages())
def test_split_reward_always_sums_exactly(total: int, percents: list[Decimal]) -> None:
    scripts = [bytes((0x51 + i % 16,)) for i in range(len(percents))]
    payouts = split_reward(total, list(zip(scripts, percents, strict=True)))
    assert sum(value for _, value in payouts) == total
    assert [script for script, _ in payouts] == scripts
    for (_, value), percent in zip(payouts[1:], percents[1:], strict=True):
        assert value == int(total * percent / 100)  # exact floor: Decimal's 28 digits hold it
    assert 0 <= payouts[0][1] - int(total * percents[0] / 100) < len(percents)
