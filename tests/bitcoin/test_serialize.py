"""Consensus serialization: CompactSize, transactions, headers, blocks (sv2proxy.bitcoin.serialize).

Vectors: the genesis block (PROTOCOL.md §6's byte-order check), the regtest genesis, and the
BIP143 P2WPKH / P2SH-P2WPKH transactions (a real signed witness transaction and its unsigned
legacy form).  Byte strings are written one field per line with the field's byte order.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.bitcoin.hashing import display_hex, merkle_root, sha256d
from sv2proxy.bitcoin.serialize import (
    COINBASE_PREV_INDEX,
    NULL_HASH,
    BlockHeader,
    Transaction,
    TxIn,
    TxOut,
    decode_compact_size,
    encode_compact_size,
    parse_block,
    serialize_block,
)

# --- CompactSize ---------------------------------------------------------------------------

COMPACT_SIZE_VECTORS = [
    (0, "00"),
    (252, "fc"),
    (253, "fdfd00"),  # 0xfd tag, LE2
    (0xFFFF, "fdffff"),
    (0x10000, "fe00000100"),  # 0xfe tag, LE4
    (0xFFFF_FFFF, "feffffffff"),
    (0x1_0000_0000, "ff0000000001000000"),  # 0xff tag, LE8
    (2**64 - 1, "ffffffffffffffffff"),
]


@pytest.mark.parametrize(("value", "encoded"), COMPACT_SIZE_VECTORS)
def test_compact_size_vectors(value: int, encoded: str) -> None:
    assert encode_compact_size(value).hex() == encoded
    assert decode_compact_size(bytes.fromhex(encoded)) == (value, len(encoded) // 2)


@pytest.mark.parametrize(
    "encoded",
    [
        "fd0000",  # 0 in the 3-byte form
        "fdfc00",  # 252: fits one byte
        "feffff0000",  # 0xffff: fits the 0xfd form
        "ffffffffff00000000",  # 0xffffffff: fits the 0xfe form
    ],
)
def test_non_canonical_compact_size_refused(encoded: str) -> None:
    with pytest.raises(ValueError, match="non-canonical"):
        decode_compact_size(bytes.fromhex(encoded))


@pytest.mark.parametrize("encoded", ["", "fd", "fdff", "fe000001", "ff00000000000001"])
def test_truncated_compact_size_refused(encoded: str) -> None:
    with pytest.raises(ValueError, match="truncated"):
        decode_compact_size(bytes.fromhex(encoded))


@pytest.mark.parametrize("value", [-1, 2**64])
def test_compact_size_range(value: int) -> None:
    with pytest.raises(ValueError, match="CompactSize"):
        encode_compact_size(value)


def test_compact_size_at_offset() -> None:
    assert decode_compact_size(bytes.fromhex("aabbfd0001cc"), 2) == (0x100, 5)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_compact_size_round_trip(value: int) -> None:
    encoded = encode_compact_size(value)
    assert decode_compact_size(encoded + b"\x99") == (value, len(encoded))


# --- the genesis block -----------------------------------------------------------------------

GENESIS_SCRIPT_SIG = bytes.fromhex(
    "04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e"
    "206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73"
)
GENESIS_PUBKEY_SCRIPT = bytes.fromhex(
    "4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51e"
    "c112de5c384df7ba0b8d578a4c702b6bf11d5fac"
)
GENESIS_COINBASE = Transaction(
    version=1,
    inputs=(TxIn(NULL_HASH, COINBASE_PREV_INDEX, GENESIS_SCRIPT_SIG, 0xFFFFFFFF),),
    outputs=(TxOut(50 * 100_000_000, GENESIS_PUBKEY_SCRIPT),),
    lock_time=0,
)
GENESIS_COINBASE_BYTES = b"".join(
    (
        bytes.fromhex("01000000"),  # version LE4
        bytes.fromhex("01"),  # input count
        bytes(32),  # prev_txid: the null hash
        bytes.fromhex("ffffffff"),  # prev_index LE4 (0xffffffff: coinbase)
        bytes.fromhex("4d"),  # scriptSig length 77
        GENESIS_SCRIPT_SIG,
        bytes.fromhex("ffffffff"),  # sequence LE4
        bytes.fromhex("01"),  # output count
        bytes.fromhex("00f2052a01000000"),  # value LE8: 5_000_000_000 sat
        bytes.fromhex("43"),  # scriptPubKey length 67
        GENESIS_PUBKEY_SCRIPT,
        bytes.fromhex("00000000"),  # lock_time LE4
    )
)
GENESIS_TXID_RAW = "3ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a"
GENESIS_HEADER_BYTES = bytes.fromhex(
    "01000000"  # version LE4
    "0000000000000000000000000000000000000000000000000000000000000000"  # prev_hash raw32
    + GENESIS_TXID_RAW  # merkle_root raw32
    + "29ab5f49"  # time LE4: 1231006505
    "ffff001d"  # bits LE4: 0x1d00ffff
    "1dac2b7c"  # nonce LE4: 2083236893
)
GENESIS_HASH_RAW = "6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000"


def _genesis_header(time: int = 1231006505, bits: int = 0x1D00FFFF, nonce: int = 2083236893) -> BlockHeader:
    return BlockHeader(1, NULL_HASH, bytes.fromhex(GENESIS_TXID_RAW), time, bits, nonce)


def test_genesis_coinbase() -> None:
    assert GENESIS_COINBASE.serialize() == GENESIS_COINBASE_BYTES
    assert GENESIS_COINBASE.serialize(with_witness=False) == GENESIS_COINBASE_BYTES
    assert GENESIS_COINBASE.txid.hex() == GENESIS_TXID_RAW
    assert display_hex(GENESIS_COINBASE.txid) == "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
    assert GENESIS_COINBASE.wtxid == GENESIS_COINBASE.txid
    assert GENESIS_COINBASE.is_coinbase
    assert Transaction.parse(GENESIS_COINBASE_BYTES) == GENESIS_COINBASE


def test_genesis_merkle_root_is_the_coinbase_txid() -> None:
    assert merkle_root([GENESIS_COINBASE.txid]).hex() == GENESIS_TXID_RAW


def test_genesis_header() -> None:
    header = _genesis_header()
    assert header.serialize() == GENESIS_HEADER_BYTES
    assert len(GENESIS_HEADER_BYTES) == 80
    assert header.hash.hex() == GENESIS_HASH_RAW
    assert display_hex(header.hash) == "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    assert BlockHeader.parse(GENESIS_HEADER_BYTES) == header


def test_regtest_genesis_header() -> None:
    # Same coinbase; time 1296688602, bits 0x207fffff, nonce 2.
    header = _genesis_header(time=1296688602, bits=0x207FFFFF, nonce=2)
    assert display_hex(header.hash) == "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"


def test_genesis_block() -> None:
    block = serialize_block(_genesis_header(), [GENESIS_COINBASE])
    assert block == GENESIS_HEADER_BYTES + b"\x01" + GENESIS_COINBASE_BYTES
    assert len(block) == 285
    assert parse_block(block) == (_genesis_header(), (GENESIS_COINBASE,))


def test_header_parse_wants_exactly_80_bytes() -> None:
    for data in (GENESIS_HEADER_BYTES[:79], GENESIS_HEADER_BYTES + b"\x00"):
        with pytest.raises(ValueError, match="80 bytes"):
            BlockHeader.parse(data)


def test_header_field_ranges() -> None:
    with pytest.raises(ValueError, match="prev_hash"):
        BlockHeader(1, bytes(31), NULL_HASH, 0, 0, 0)
    with pytest.raises(ValueError, match="nonce"):
        BlockHeader(1, NULL_HASH, NULL_HASH, 0, 0, 2**32)


def test_rolled_version_round_trips() -> None:
    header = BlockHeader(0xFFFFFFFF, NULL_HASH, NULL_HASH, 0, 0x207FFFFF, 0)
    assert header.serialize()[:4] == b"\xff\xff\xff\xff"
    assert BlockHeader.parse(header.serialize()) == header


# --- BIP143 witness transactions -------------------------------------------------------------

# BIP143 "Native P2WPKH": input 0 spends a P2PK (scriptSig), input 1 a P2WPKH (witness).
BIP143_P2WPKH_SIGNED = bytes.fromhex(
    "01000000"  # version LE4
    "00"  # marker
    "01"  # flag
    "02"  # input count
    "fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f"  # prev_txid raw32
    "00000000"  # prev_index LE4
    "49"  # scriptSig length 73
    "4830450221008b9d1dc26ba6a9cb62127b02742fa9d754cd3bebf337f7a55d114c8e5cdd30be022040529b194ba3f9"
    "281a99f2b1c0a19c0489bc22ede944ccf4ecbab4cc618ef3ed01"
    "eeffffff"  # sequence LE4
    "ef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a"  # prev_txid raw32
    "01000000"  # prev_index LE4
    "00"  # empty scriptSig
    "ffffffff"  # sequence LE4
    "02"  # output count
    "202cb20600000000"  # value LE8
    "1976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac"  # script (P2PKH)
    "9093510d00000000"  # value LE8
    "1976a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988ac"  # script (P2PKH)
    "00"  # input 0 witness: no items
    "02"  # input 1 witness: two items
    "47304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a12fb1366d7f01cc44a0220573a954c4518331561"
    "406f90300e8f3358f51928d43c212a8caed02de67eebee01"  # signature
    "21025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee6357"  # pubkey
    "11000000"  # lock_time LE4
)
BIP143_P2WPKH_UNSIGNED = bytes.fromhex(
    "0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f0000000000eeffffff"
    "ef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb20600"
    "0000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde42dbee7e"
    "4dbe6a21b2d50ce2f0167faa815988ac11000000"
)
BIP143_P2SH_P2WPKH_SIGNED = bytes.fromhex(
    "01000000000101db6b1b20aa0fd7b23880be2ecbd4a98130974cf4748fb66092ac4d3ceb1a5477010000001716001479"
    "091972186c449eb1ded22b78e40d009bdf0089feffffff02b8b4eb0b000000001976a914a457b684d7f0d539a46a45bb"
    "c043f35b59d0d96388ac0008af2f000000001976a914fd270b1ee6abcaea97fea7ad0402e8bd8ad6d77c88ac02473044"
    "022047ac8e878352d3ebbde1c94ce3a10d057c24175747116f8288e5d794d12d482f0220217f36a485cae903c713331d"
    "877c1f64677e3622ad4010726870540656fe9dcb012103ad1d8e89212f0b92c74d23bb710c00662ad1470198ac48c43f"
    "7d6f93a2a2687392040000"
)
BIP143_P2SH_P2WPKH_UNSIGNED = bytes.fromhex(
    "0100000001db6b1b20aa0fd7b23880be2ecbd4a98130974cf4748fb66092ac4d3ceb1a54770100000000feffffff02b8"
    "b4eb0b000000001976a914a457b684d7f0d539a46a45bbc043f35b59d0d96388ac0008af2f000000001976a914fd270b"
    "1ee6abcaea97fea7ad0402e8bd8ad6d77c88ac92040000"
)


def _unsigned(tx: Transaction) -> Transaction:
    inputs = tuple(TxIn(i.prev_txid, i.prev_index, b"", i.sequence) for i in tx.inputs)
    return Transaction(tx.version, inputs, tx.outputs, tx.lock_time)


@pytest.mark.parametrize(
    ("signed", "unsigned"),
    [(BIP143_P2WPKH_SIGNED, BIP143_P2WPKH_UNSIGNED), (BIP143_P2SH_P2WPKH_SIGNED, BIP143_P2SH_P2WPKH_UNSIGNED)],
)
def test_bip143_transactions(signed: bytes, unsigned: bytes) -> None:
    tx = Transaction.parse(signed)
    assert tx.has_witness
    assert tx.serialize() == signed
    legacy = tx.serialize(with_witness=False)
    assert Transaction.parse(legacy) == _without_witness(tx)
    assert tx.txid == sha256d(legacy)
    assert tx.wtxid == sha256d(signed)
    assert tx.txid != tx.wtxid
    assert _unsigned(tx).serialize() == unsigned
    assert Transaction.parse(unsigned) == _unsigned(tx)
    # BIP141: weight = legacy size * 3 + full size.
    assert tx.weight == 3 * len(legacy) + len(signed)
    assert tx.vsize == -(-tx.weight // 4)


def _without_witness(tx: Transaction) -> Transaction:
    inputs = tuple(TxIn(i.prev_txid, i.prev_index, i.script_sig, i.sequence) for i in tx.inputs)
    return Transaction(tx.version, inputs, tx.outputs, tx.lock_time)


def test_bip143_p2wpkh_fields() -> None:
    tx = Transaction.parse(BIP143_P2WPKH_SIGNED)
    assert (tx.version, tx.lock_time) == (1, 0x11)
    assert tx.inputs[0].prev_index == 0 and tx.inputs[0].sequence == 0xFFFFFFEE
    assert len(tx.inputs[0].script_sig) == 0x49 and tx.inputs[0].witness == ()
    assert tx.inputs[1].script_sig == b"" and len(tx.inputs[1].witness) == 2
    assert tx.inputs[1].witness[1].hex() == "025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee6357"
    assert [o.value for o in tx.outputs] == [0x06B22C20, 0x0D519390]
    # BIP143's hashOutputs = SHA256d(the serialized outputs) pins the TxOut layout.
    outputs = b"".join(o.serialize() for o in tx.outputs)
    assert sha256d(outputs).hex() == "863ef3e1a92afbfdb97f31ad0fc7683ee943e9abcf2501590ff8f6551f47e5e5"


def test_witness_block_round_trip() -> None:
    txs = (GENESIS_COINBASE, Transaction.parse(BIP143_P2WPKH_SIGNED))
    block = serialize_block(_genesis_header(), txs)
    assert parse_block(block) == (_genesis_header(), txs)


# --- malformed input -------------------------------------------------------------------------


@pytest.mark.parametrize("data", [GENESIS_COINBASE_BYTES, BIP143_P2WPKH_SIGNED, BIP143_P2SH_P2WPKH_UNSIGNED])
def test_every_truncation_is_a_value_error(data: bytes) -> None:
    for end in range(len(data)):
        with pytest.raises(ValueError):
            Transaction.parse(data[:end])


def test_trailing_bytes_refused() -> None:
    with pytest.raises(ValueError, match="1 trailing bytes after the transaction"):
        Transaction.parse(GENESIS_COINBASE_BYTES + b"\x00")
    with pytest.raises(ValueError, match="trailing bytes after the block"):
        parse_block(serialize_block(_genesis_header(), [GENESIS_COINBASE]) + b"\x00")


def test_superfluous_witness_refused() -> None:
    # Witness flag set but the only stack is empty: Core's "Superfluous witness record".
    tx = GENESIS_COINBASE_BYTES
    data = tx[:4] + b"\x00\x01" + tx[4:-4] + b"\x00" + tx[-4:]
    with pytest.raises(ValueError, match="superfluous witness"):
        Transaction.parse(data)


def test_unknown_flag_refused() -> None:
    tx = GENESIS_COINBASE_BYTES
    data = tx[:4] + b"\x00\x02" + tx[4:]
    with pytest.raises(ValueError, match="unknown transaction optional data"):
        Transaction.parse(data)


def test_non_canonical_count_refused() -> None:
    tx = GENESIS_COINBASE_BYTES
    data = tx[:4] + b"\xfd\x01\x00" + tx[5:]
    with pytest.raises(ValueError, match="non-canonical CompactSize for input count"):
        Transaction.parse(data)


def test_huge_count_is_a_truncation_not_an_allocation() -> None:
    data = bytes.fromhex("01000000" "ffffffffffffffffff")
    with pytest.raises(ValueError, match="truncated: input 0 prev_txid"):
        Transaction.parse(data)


def test_empty_transaction_follows_core() -> None:
    # No inputs and no witness: version ‖ 00 ‖ 00 ‖ lock_time.  Core reads the second 00 as an
    # empty witness flag and then no outputs, so an empty transaction round-trips.
    empty = Transaction(2, (), (), 0)
    assert empty.serialize().hex() == "02000000" "00" "00" "00000000"
    assert Transaction.parse(empty.serialize()) == empty


def test_zero_inputs_with_outputs_needs_allow_witness_false() -> None:
    tx = Transaction(2, (), (TxOut(1, b"\x51"),), 0)
    data = tx.serialize()
    assert Transaction.parse(data, allow_witness=False) == tx
    with pytest.raises(ValueError):
        Transaction.parse(data)


def test_field_validation() -> None:
    with pytest.raises(ValueError, match="prev_txid"):
        TxIn(bytes(31), 0)
    with pytest.raises(ValueError, match="sequence"):
        TxIn(NULL_HASH, 0, b"", -1)
    with pytest.raises(ValueError, match="signed 64-bit"):
        TxOut(2**63, b"")
    with pytest.raises(ValueError, match="version"):
        Transaction(2**32, (), ())
    with pytest.raises(ValueError, match="witness"):
        TxIn(NULL_HASH, 0, witness=[b""])  # type: ignore[arg-type]


def test_negative_value_round_trips() -> None:
    # Serialization keeps CAmount's sign; MAX_MONEY is a consensus rule, not a format rule.
    tx = Transaction(1, (TxIn(NULL_HASH, 0),), (TxOut(-1, b""),), 0)
    assert Transaction.parse(tx.serialize()) == tx


# --- properties ------------------------------------------------------------------------------

_hashes = st.binary(min_size=32, max_size=32)
_u32 = st.integers(min_value=0, max_value=2**32 - 1)
_scripts = st.binary(max_size=300)
_witness = st.lists(st.binary(max_size=80), max_size=4).map(tuple)
_txins = st.builds(TxIn, _hashes, _u32, _scripts, _u32, _witness)
_txouts = st.builds(TxOut, st.integers(min_value=-(2**63), max_value=2**63 - 1), _scripts)
_transactions = st.builds(
    Transaction,
    _u32,
    st.lists(_txins, min_size=1, max_size=4).map(tuple),
    st.lists(_txouts, max_size=4).map(tuple),
    _u32,
)


@given(_transactions)
def test_transaction_round_trip(tx: Transaction) -> None:
    full = tx.serialize()
    assert Transaction.parse(full) == tx
    legacy = tx.serialize(with_witness=False)
    assert Transaction.parse(legacy) == _without_witness(tx)
    assert tx.txid == sha256d(legacy)
    assert tx.wtxid == sha256d(full)
    assert (tx.txid == tx.wtxid) == (not tx.has_witness)


@given(st.builds(BlockHeader, _u32, _hashes, _hashes, _u32, _u32, _u32), st.lists(_transactions, max_size=3))
def test_block_round_trip(header: BlockHeader, txs: list[Transaction]) -> None:
    assert BlockHeader.parse(header.serialize()) == header
    assert parse_block(serialize_block(header, txs)) == (header, tuple(txs))


@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_value_error(data: bytes) -> None:
    try:
        tx = Transaction.parse(data)
    except ValueError:
        return
    assert tx.serialize() == data or tx.serialize(with_witness=False) == data
