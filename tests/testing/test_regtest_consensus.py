"""The regtest node's pure parts: Core's rules in Python and Core's JSON descriptions of scripts."""

from __future__ import annotations

import hashlib

import pytest

from sv2proxy.bitcoin.address import Network, script_for_address
from sv2proxy.bitcoin.descriptor import split_checksum
from sv2proxy.bitcoin.hashing import sha256d
from sv2proxy.bitcoin.script import p2pkh_script, p2sh_script, witness_program_script
from sv2proxy.bitcoin.serialize import Transaction, TxIn, TxOut
from sv2proxy.testing.regtest.consensus import (
    COIN,
    Coin,
    Rejected,
    block_subsidy,
    check_inputs,
    check_transaction,
    format_money,
    is_final,
    merkle_root_and_mutation,
    reason_class,
    sigop_count,
    transaction_sigop_cost,
)
from sv2proxy.testing.regtest.describe import script_address, script_asm, script_descriptor, script_type

# A valid compressed public key (secp256k1's generator point).
G = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
MULTISIG_1_OF_2 = b"\x51" + b"\x21" + G + b"\x21" + G + b"\x52\xae"


def test_the_subsidy_halves_every_150_regtest_blocks() -> None:
    assert [block_subsidy(h) for h in (0, 149, 150, 300)] == [50 * COIN, 50 * COIN, 25 * COIN, 1_250_000_000]
    assert block_subsidy(150 * 64) == 0


def test_money_is_formatted_like_core() -> None:
    assert [format_money(v) for v in (50 * COIN, 5_000_000_001, 10_000, 0)] == [
        "50.00",
        "50.00000001",
        "0.0001",
        "0.00",
    ]


def test_merkle_mutation_is_two_equal_siblings_not_an_odd_duplicate() -> None:
    a, b, c = (sha256d(bytes([i])) for i in range(3))
    assert merkle_root_and_mutation([a, b, c])[1] is False
    assert merkle_root_and_mutation([a, b, c, c])[1] is True
    assert merkle_root_and_mutation([a, b, c])[0] == merkle_root_and_mutation([a, b, c, c])[0]


def test_sigops_count_as_core_counts_them() -> None:
    assert sigop_count(p2pkh_script(bytes(20)), accurate=False) == 1
    assert sigop_count(MULTISIG_1_OF_2, accurate=False) == 20
    assert sigop_count(MULTISIG_1_OF_2, accurate=True) == 2
    assert sigop_count(b"\x4c", accurate=False) == 0  # malformed push: counting stops
    # P2SH multisig: 4 x accurate count of the redeem script, pushed last by the scriptSig.
    p2sh = p2sh_script(hashlib.new("ripemd160", hashlib.sha256(MULTISIG_1_OF_2).digest()).digest())
    spend = Transaction(2, (TxIn(b"\x01" * 32, 0, b"\x00\x4c\x47" + MULTISIG_1_OF_2),), (TxOut(1, b"\x51"),))
    assert transaction_sigop_cost(spend, [Coin(2, p2sh, 1, False)]) == 8
    # P2WPKH counts 1 witness sigop, unscaled.
    p2wpkh = witness_program_script(0, bytes(20))
    assert transaction_sigop_cost(spend, [Coin(2, p2wpkh, 1, False)]) == 1


def test_transaction_checks_name_cores_reasons() -> None:
    spend = Transaction(2, (TxIn(b"\x01" * 32, 0),), (TxOut(COIN, b"\x51"),))
    check_transaction(spend)
    with pytest.raises(Rejected, match="bad-txns-vout-negative"):
        check_transaction(Transaction(2, spend.inputs, (TxOut(-1, b""),)))
    with pytest.raises(Rejected, match="bad-txns-inputs-duplicate"):
        check_transaction(Transaction(2, spend.inputs * 2, spend.outputs))
    with pytest.raises(Rejected, match="bad-txns-vout-empty"):
        check_transaction(Transaction(2, spend.inputs, ()))
    assert check_inputs(spend, [Coin(COIN + 7, b"\x51", 1, True)], spend_height=101).fee == 7
    with pytest.raises(Rejected) as premature:
        check_inputs(spend, [Coin(COIN, b"\x51", 2, True)], spend_height=101)
    assert str(premature.value) == "bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth 99"
    locked = Transaction(2, (TxIn(b"\x01" * 32, 0, b"", 0),), spend.outputs, lock_time=200)
    assert not is_final(locked, 200, 0) and is_final(locked, 201, 0)


def test_reasons_belong_to_the_kernels_classes() -> None:
    assert reason_class("high-hash") == "INVALID_HEADER"
    assert reason_class("bad-version(0x00000001)") == "INVALID_HEADER"
    assert reason_class("bad-txnmrklroot") == "MUTATED"
    assert reason_class("time-too-new") == "TIME_FUTURE"
    assert reason_class("bad-cb-amount") == "CONSENSUS"


@pytest.mark.parametrize(
    ("script", "kind", "asm"),
    [
        (p2pkh_script(bytes(20)), "pubkeyhash", "OP_DUP OP_HASH160 " + "00" * 20 + " OP_EQUALVERIFY OP_CHECKSIG"),
        (p2sh_script(bytes(20)), "scripthash", "OP_HASH160 " + "00" * 20 + " OP_EQUAL"),
        (witness_program_script(0, bytes(20)), "witness_v0_keyhash", "0 " + "00" * 20),
        (witness_program_script(0, bytes(32)), "witness_v0_scripthash", "0 " + "00" * 32),
        (witness_program_script(1, G[1:]), "witness_v1_taproot", "1 " + G[1:].hex()),
        (bytes.fromhex("51024e73"), "anchor", "1 29518"),
        (b"\x21" + G + b"\xac", "pubkey", G.hex() + " OP_CHECKSIG"),
        (MULTISIG_1_OF_2, "multisig", f"1 {G.hex()} {G.hex()} 2 OP_CHECKMULTISIG"),
        (b"\x6a\x04\xde\xad\xbe\xef", "nulldata", "OP_RETURN -1874767326"),
        (b"\x51", "nonstandard", "1"),
        (b"\x4c", "nonstandard", "[error]"),
    ],
)
def test_scripts_are_described_like_core(script: bytes, kind: str, asm: str) -> None:
    assert script_type(script) == kind
    assert script_asm(script) == asm
    split_checksum(script_descriptor(script))  # a well-formed descriptor with a valid checksum


def test_addresses_and_descriptors_of_outputs() -> None:
    for script in (p2pkh_script(b"\x11" * 20), p2sh_script(b"\x22" * 20), witness_program_script(0, b"\x33" * 32)):
        address = script_address(script)
        assert address is not None and script_for_address(address, Network.REGTEST) == script
        assert script_descriptor(script).startswith(f"addr({address})#")
    assert script_address(bytes.fromhex("51024e73")) == "bcrt1pfeesnyr2tx"
    assert script_address(b"\x51") is None
    assert script_descriptor(b"\x51").startswith("raw(51)#")
    assert script_descriptor(b"\x21" + G + b"\xac").startswith(f"pk({G.hex()})#")
    assert script_descriptor(witness_program_script(1, G[1:])).startswith(f"rawtr({G[1:].hex()})#")
    assert script_descriptor(MULTISIG_1_OF_2).startswith(f"multi(1,{G.hex()},{G.hex()})#")
