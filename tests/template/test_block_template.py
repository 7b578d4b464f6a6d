"""BlockTemplate from getblocktemplate JSON and from Template Distribution messages."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sv2proxy.bitcoin.coinbase import SEQUENCE_NONFINAL, serialize_outputs
from sv2proxy.bitcoin.hashing import merkle_path, merkle_root_from_path, sha256d
from sv2proxy.bitcoin.script import bip34_height_push, witness_commitment, witness_commitment_script
from sv2proxy.bitcoin.serialize import COINBASE_PREV_INDEX, NULL_HASH, Transaction, TxIn, TxOut
from sv2proxy.bitcoin.target import target_from_nbits
from sv2proxy.template.block_template import BlockTemplate, TemplateTransaction

from .fixtures import (
    DEFAULT_WITNESS_COMMITMENT,
    FEES,
    PREVIOUS_BLOCK_HASH,
    SUBSIDY,
    TX_A_DATA,
    TX_A_TXID,
    TX_A_WTXID,
    TX_B_DATA,
    TX_B_TXID,
    TX_C_DATA,
    TX_C_TXID,
    TX_C_WTXID,
    getblocktemplate_result,
    tp_templates,
)

EMPTY_COMMITMENT = witness_commitment_script(witness_commitment([]))


def raw(display: str) -> bytes:
    return bytes.fromhex(display)[::-1]


# --- getblocktemplate -----------------------------------------------------------------------


def test_from_getblocktemplate_reads_every_field() -> None:
    template = BlockTemplate.from_getblocktemplate(getblocktemplate_result())
    assert template.version == 0x20000000
    assert template.prev_hash == raw(PREVIOUS_BLOCK_HASH)  # display hex reversed into raw order
    assert template.bits == 0x207FFFFF
    assert template.target == target_from_nbits(0x207FFFFF)
    assert template.height == 205
    assert (template.curtime, template.mintime, template.start_ntime) == (1_795_571_900, 1_795_571_303, 1_795_571_900)
    assert template.coinbase_value == SUBSIDY + sum(FEES)
    assert template.template_id is None and not template.future
    assert template.transactions == (
        TemplateTransaction(bytes.fromhex(TX_A_DATA), raw(TX_A_TXID), raw(TX_A_WTXID), FEES[0]),
        TemplateTransaction(bytes.fromhex(TX_B_DATA), raw(TX_B_TXID), raw(TX_B_TXID), FEES[1]),
        TemplateTransaction(bytes.fromhex(TX_C_DATA), raw(TX_C_TXID), raw(TX_C_WTXID), FEES[2]),
    )


def test_the_coinbase_is_shaped_as_cores_own_miner_shapes_it() -> None:
    template = BlockTemplate.from_getblocktemplate(getblocktemplate_result())
    assert template.coinbase_prefix == bip34_height_push(205) == bytes.fromhex("02cd00")
    assert (template.coinbase_version, template.coinbase_sequence, template.coinbase_lock_time) == (
        2,
        SEQUENCE_NONFINAL,
        204,
    )
    assert template.coinbase_outputs == (TxOut(0, template.witness_commitment_script or b""),)


def test_merkle_path_is_deepest_first_without_the_coinbase() -> None:
    template = BlockTemplate.from_getblocktemplate(getblocktemplate_result())
    a, b, c = raw(TX_A_TXID), raw(TX_B_TXID), raw(TX_C_TXID)
    # 4 leaves (coinbase, A, B, C): the coinbase's sibling A, then the hash of the B‖C pair.
    assert template.merkle_path == (a, sha256d(b + c))
    assert list(template.merkle_path) == merkle_path([a, b, c])
    coinbase_txid = sha256d(b"any coinbase")
    full = sha256d(sha256d(coinbase_txid + a) + sha256d(b + c))
    assert merkle_root_from_path(coinbase_txid, template.merkle_path) == full


def test_witness_commitment_equals_default_witness_commitment() -> None:
    template = BlockTemplate.from_getblocktemplate(getblocktemplate_result())
    assert template.witness_commitment_script == bytes.fromhex(DEFAULT_WITNESS_COMMITMENT)
    # The fixture's commitment is computed, not copied: check it against the wtxids by hand.
    wtxids = [raw(TX_A_WTXID), raw(TX_B_TXID), raw(TX_C_WTXID)]
    root = sha256d(sha256d(bytes(32) + wtxids[0]) + sha256d(wtxids[1] + wtxids[2]))
    assert DEFAULT_WITNESS_COMMITMENT == "6a24aa21a9ed" + sha256d(root + bytes(32)).hex()


def test_without_default_witness_commitment_it_is_computed() -> None:
    result = getblocktemplate_result()
    del result["default_witness_commitment"]
    template = BlockTemplate.from_getblocktemplate(result)
    assert template.witness_commitment_script == bytes.fromhex(DEFAULT_WITNESS_COMMITMENT)


def test_an_empty_template_commits_to_the_empty_witness_tree() -> None:
    result = getblocktemplate_result()
    result["transactions"] = []
    result["default_witness_commitment"] = EMPTY_COMMITMENT.hex()
    template = BlockTemplate.from_getblocktemplate(result)
    assert template.merkle_path == () and template.transactions == ()
    assert template.witness_commitment_script == bytes.fromhex(
        "6a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9"
    )


def test_start_ntime_is_never_below_mintime() -> None:
    result = getblocktemplate_result()
    result["curtime"] = result["mintime"] - 5
    assert BlockTemplate.from_getblocktemplate(result).start_ntime == result["mintime"]
    del result["mintime"]
    assert BlockTemplate.from_getblocktemplate(result).start_ntime == result["curtime"]


def _set(path: str, value: Any) -> Any:
    def mutate(result: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = result
        for name in parents:
            target = target[int(name)] if isinstance(target, list) else target[name]
        key: int | str = int(last) if isinstance(target, list) else last
        if value is KeyError:
            del target[key]
        else:
            target[key] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_set("height", KeyError), "'height' is missing"),
        (_set("version", "0x20000000"), "'version' must be an integer"),
        (_set("version", True), "'version' must be an integer"),
        (_set("curtime", -1), "'curtime' must be 0..4294967295"),
        (_set("coinbasevalue", 21_000_000 * 100_000_000 + 1), "'coinbasevalue' must be"),
        (_set("previousblockhash", "00" * 31), "'previousblockhash' must be 64 hex digits"),
        (_set("previousblockhash", "zz" * 32), "'previousblockhash' is not hex"),
        (_set("bits", "7fffff"), "'bits' must be 8 hex digits"),
        (_set("bits", 0x207FFFFF), "'bits' must be a hex string"),
        (_set("bits", "04923456"), "'bits': nBits 0x04923456 encodes a negative target"),
        (_set("target", "00" * 32), "'target' must be a non-zero target"),
        (_set("transactions", {}), "'transactions' must be a list"),
        (_set("transactions.1", "00"), "'transactions[1]' must be a JSON object"),
        (_set("transactions.0.data", TX_A_DATA[:-2]), "'transactions[0].data': not a transaction: truncated"),
        (_set("transactions.0.data", KeyError), "'transactions[0].data' is missing"),
        (_set("transactions.1.txid", TX_A_TXID), "'transactions[1].txid' is cd84"),
        (_set("transactions.2.hash", TX_C_TXID), "'transactions[2].hash' is 1ede"),
        (_set("transactions.2.fee", -1), "'transactions[2].fee' must be"),
        (_set("default_witness_commitment", EMPTY_COMMITMENT.hex()), "'default_witness_commitment' does not commit"),
    ],
)
def test_malformed_json_names_the_field(mutate: Any, field: str) -> None:
    result = getblocktemplate_result()
    mutate(result)
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        BlockTemplate.from_getblocktemplate(result)


def test_a_coinbase_among_the_transactions_is_refused() -> None:
    result = getblocktemplate_result()
    coinbase = Transaction(
        1, (TxIn(NULL_HASH, COINBASE_PREV_INDEX, bip34_height_push(205) + b"\x00"),), (TxOut(1, b"\x51"),)
    )
    result["transactions"][0] = {"data": coinbase.serialize().hex()}
    with pytest.raises(ValueError, match="cannot be a coinbase"):
        BlockTemplate.from_getblocktemplate(result)


def test_a_result_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="must be a JSON object"):
        BlockTemplate.from_getblocktemplate([])  # type: ignore[arg-type]


# --- Template Distribution ------------------------------------------------------------------


def test_from_template_distribution_with_the_sv2_tp_vectors() -> None:
    future, _, prev = tp_templates()
    template = BlockTemplate.from_template_distribution(future, prev)
    assert template.template_id == 1 and template.future
    assert template.version == 0x20000000
    assert template.height == 102  # from the BIP34 push 01 66
    assert template.prev_hash == raw("4a67801a0d55b8c8a3c6e8de1ae40b51d9502e62710378f7d87e27a93830ec2d")
    assert template.bits == 0x207FFFFF
    assert template.target == target_from_nbits(0x207FFFFF)
    assert (template.curtime, template.mintime, template.start_ntime) == (1_795_571_302, None, 1_795_571_302)
    assert template.coinbase_value == 5_000_000_000
    assert template.coinbase_prefix == bytes.fromhex("0166")
    assert (template.coinbase_version, template.coinbase_sequence, template.coinbase_lock_time) == (
        2,
        0xFFFFFFFE,
        101,
    )
    assert template.coinbase_outputs == (TxOut(0, EMPTY_COMMITMENT),)
    assert template.witness_commitment_script == EMPTY_COMMITMENT
    # An empty merkle path means the block holds only the coinbase: the transactions are known.
    assert template.merkle_path == () and template.transactions == ()


def test_a_non_future_template_applies_to_the_current_tip() -> None:
    _, current, prev = tp_templates()
    template = BlockTemplate.from_template_distribution(current, prev)
    assert template.template_id == 6 and not template.future
    assert template.version == 0x30000000
    assert template.height == 204
    assert template.coinbase_value == 2_500_050_000
    assert template.merkle_path == (raw("8d040652a5c807ae5c1e5294cd903e74c9e053a2d095e9ee1bf87945bea20dc6"),)
    assert template.transactions is None  # one transaction, named only by its txid
    assert template.witness_commitment_script is not None
    assert template.witness_commitment_script.startswith(bytes.fromhex("6a24aa21a9ed8a89"))


def test_a_future_template_needs_its_own_set_new_prev_hash() -> None:
    future, _, prev = tp_templates()
    with pytest.raises(ValueError, match="template_id 2 does not activate the future NewTemplate.template_id 1"):
        BlockTemplate.from_template_distribution(future, dataclasses.replace(prev, template_id=2))


def test_a_non_future_template_cannot_predate_its_prev_hash() -> None:
    _, current, prev = tp_templates()
    with pytest.raises(ValueError, match="template_id 7 is newer than the non-future NewTemplate.template_id 6"):
        BlockTemplate.from_template_distribution(current, dataclasses.replace(prev, template_id=7))


def test_transactions_must_rebuild_the_merkle_path() -> None:
    _, current, prev = tp_templates()
    with pytest.raises(ValueError, match="do not rebuild NewTemplate.merkle_path"):
        BlockTemplate.from_template_distribution(current, prev, [bytes.fromhex(TX_B_DATA)])


def _template_with(transactions: list[str]) -> Any:
    """The future vector template, rewritten to hold ``transactions`` (hex) and commit to them."""
    future, _, prev = tp_templates()
    parsed = [Transaction.parse(bytes.fromhex(data)) for data in transactions]
    commitment = witness_commitment_script(witness_commitment([tx.wtxid for tx in parsed]))
    new_template = dataclasses.replace(
        future,
        merkle_path=tuple(merkle_path([tx.txid for tx in parsed])),
        coinbase_tx_outputs=serialize_outputs([TxOut(0, commitment)]),
    )
    return new_template, prev


def test_requested_transactions_are_kept_and_checked() -> None:
    new_template, prev = _template_with([TX_A_DATA, TX_B_DATA])
    template = BlockTemplate.from_template_distribution(
        new_template, prev, [bytes.fromhex(TX_A_DATA), bytes.fromhex(TX_B_DATA)]
    )
    assert template.transactions is not None
    assert [tx.txid for tx in template.transactions] == [raw(TX_A_TXID), raw(TX_B_TXID)]
    assert [tx.fee for tx in template.transactions] == [None, None]


def test_requested_transactions_must_match_the_witness_commitment() -> None:
    new_template, prev = _template_with([TX_A_DATA])
    # Same txid, another witness: the merkle path holds, the commitment does not.
    other_witness = TX_A_DATA.replace("ab5b6208", "ab5b6209")
    with pytest.raises(ValueError, match="do not match the witness commitment"):
        BlockTemplate.from_template_distribution(new_template, prev, [bytes.fromhex(other_witness)])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"coinbase_prefix": bytes.fromhex("4c")}, "NewTemplate.coinbase_prefix: scriptSig does not start"),
        ({"coinbase_tx_outputs_count": 2}, "NewTemplate.coinbase_tx_outputs: truncated"),
        ({"coinbase_tx_outputs": b"\x00" * 9 + b"\x01"}, "NewTemplate.coinbase_tx_outputs: 1 trailing bytes"),
    ],
)
def test_malformed_new_template_names_the_field(changes: dict[str, Any], message: str) -> None:
    future, _, prev = tp_templates()
    with pytest.raises(ValueError, match=message):
        BlockTemplate.from_template_distribution(dataclasses.replace(future, **changes), prev)


def test_a_negative_nbits_is_refused() -> None:
    future, _, prev = tp_templates()
    with pytest.raises(ValueError, match="SetNewPrevHash.n_bits"):
        BlockTemplate.from_template_distribution(future, dataclasses.replace(prev, n_bits=0x04923456))


def test_transactions_added_later_reuse_the_ones_parsed_before() -> None:
    new_template, prev = _template_with([TX_A_DATA, TX_B_DATA])
    bare = BlockTemplate.from_template_distribution(new_template, prev)
    assert bare.transactions is None
    first = bare.with_transactions([bytes.fromhex(TX_A_DATA), bytes.fromhex(TX_B_DATA)])
    assert first.transactions is not None
    known = {tx.data: tx for tx in first.transactions}
    again = bare.with_transactions([bytes.fromhex(TX_A_DATA), bytes.fromhex(TX_B_DATA)], known=known)
    assert again.transactions is not None
    assert all(a is b for a, b in zip(again.transactions, first.transactions, strict=True))
    with pytest.raises(ValueError, match="do not match the witness commitment"):
        bare.with_transactions(
            [bytes.fromhex(TX_A_DATA), bytes.fromhex(TX_B_DATA)], witness_reserved_value=b"\x01" * 32
        )
