"""Script pushes, the BIP34 height and the BIP141 witness commitment (sv2proxy.bitcoin.script).

Height pushes must equal Bitcoin Core's ``CScript() << nHeight`` byte for byte; the sv2-tp
vectors (shared/vectors/sv2-tp-frames.txt) give 102 → ``01 66`` and 204 → ``02 cc 00`` and
the empty-block commitment output.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.bitcoin.hashing import merkle_root, sha256d
from sv2proxy.bitcoin.script import (
    OP_PUSHDATA1,
    OP_PUSHDATA2,
    OP_PUSHDATA4,
    bip34_height_from_script_sig,
    bip34_height_push,
    decode_script_num,
    encode_script_num,
    p2pkh_script,
    p2sh_script,
    push_data,
    push_int,
    witness_commitment,
    witness_commitment_index,
    witness_commitment_script,
    witness_merkle_root,
    witness_program_script,
)
from sv2proxy.bitcoin.serialize import COINBASE_PREV_INDEX, NULL_HASH, Transaction, TxIn, TxOut

BIP34_VECTORS = [
    (0, "00"),  # OP_0
    (1, "51"),  # OP_1
    (16, "60"),  # OP_16
    (17, "0111"),  # push 1: 0x11
    (102, "0166"),  # sv2-tp NewTemplate coinbase_prefix at height 102
    (127, "017f"),
    (128, "028000"),  # 0x80 has the sign bit: extra 0x00
    (204, "02cc00"),  # sv2-tp NewTemplate coinbase_prefix at height 204
    (255, "02ff00"),
    (256, "020001"),
    (65535, "03ffff00"),
    (8388607, "03ffff7f"),
    (8388608, "0400008000"),  # 0x800000: sign bit in the third byte, 4-byte push
    (840000, "0340d10c"),  # mainnet's fourth halving block
    (0x7FFFFFFF, "04ffffff7f"),
]


@pytest.mark.parametrize(("height", "encoded"), BIP34_VECTORS)
def test_bip34_height_push(height: int, encoded: str) -> None:
    assert bip34_height_push(height).hex() == encoded
    assert bip34_height_from_script_sig(bytes.fromhex(encoded) + b"Sv2/pool/") == height


@pytest.mark.parametrize("height", [-1, 2**31])
def test_bip34_height_range(height: int) -> None:
    with pytest.raises(ValueError, match="block height"):
        bip34_height_push(height)


@pytest.mark.parametrize(
    ("script_sig", "reason"),
    [
        ("", "empty"),
        ("0105", "non-canonical"),  # 5 pushed as data, Core writes OP_5
        ("026600", "non-minimally"),  # 102 with a needless 0x00
        ("0181", "non-canonical"),  # -1 as data
        ("02cc", "ends inside"),
        ("4c0166", "does not start with a height push"),  # OP_PUSHDATA1
        ("6a", "does not start with a height push"),
    ],
)
def test_bip34_height_refusals(script_sig: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        bip34_height_from_script_sig(bytes.fromhex(script_sig))


@given(st.integers(min_value=0, max_value=0x7FFFFFFF))
def test_bip34_round_trip(height: int) -> None:
    assert bip34_height_from_script_sig(bip34_height_push(height)) == height


SCRIPT_NUM_VECTORS = [
    (0, ""),
    (1, "01"),
    (-1, "81"),
    (127, "7f"),
    (-127, "ff"),
    (128, "8000"),
    (-128, "8080"),
    (255, "ff00"),
    (-255, "ff80"),
    (256, "0001"),
    (-256, "0081"),
    (32767, "ff7f"),
    (32768, "008000"),
    (-32768, "008080"),
]


@pytest.mark.parametrize(("value", "encoded"), SCRIPT_NUM_VECTORS)
def test_script_num(value: int, encoded: str) -> None:
    assert encode_script_num(value).hex() == encoded
    assert decode_script_num(bytes.fromhex(encoded)) == value


@pytest.mark.parametrize("encoded", ["00", "80", "0100", "ff0000", "0080"])
def test_non_minimal_script_num_refused(encoded: str) -> None:
    with pytest.raises(ValueError, match="non-minimally"):
        decode_script_num(bytes.fromhex(encoded))


def test_script_num_size_limit() -> None:
    with pytest.raises(ValueError, match="exceeds 4"):
        decode_script_num(bytes.fromhex("0000000001"))


@given(st.integers(min_value=-(2**31) + 1, max_value=2**31 - 1))
def test_script_num_round_trip(value: int) -> None:
    assert decode_script_num(encode_script_num(value)) == value


@pytest.mark.parametrize(
    ("size", "prefix"),
    [
        (0, "00"),
        (1, "01"),
        (75, "4b"),  # the largest direct push
        (76, "4c4c"),  # OP_PUSHDATA1, length 1 byte
        (255, "4cff"),
        (256, "4d0001"),  # OP_PUSHDATA2, length LE2
        (65535, "4dffff"),
        (65536, "4e00000100"),  # OP_PUSHDATA4, length LE4
    ],
)
def test_push_data(size: int, prefix: str) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert push_data(data) == bytes.fromhex(prefix) + data
    assert OP_PUSHDATA1 < OP_PUSHDATA2 < OP_PUSHDATA4


def test_push_data_never_uses_small_int_opcodes() -> None:
    # CScript() << vector{5} writes 01 05, unlike CScript() << 5.
    assert push_data(b"\x05") == b"\x01\x05"
    assert push_int(5) == b"\x55"


@pytest.mark.parametrize(("value", "encoded"), [(-1, "4f"), (0, "00"), (16, "60"), (17, "0111"), (-2, "0182")])
def test_push_int(value: int, encoded: str) -> None:
    assert push_int(value).hex() == encoded


def test_output_templates() -> None:
    h160 = bytes.fromhex("62e907b15cbf27d5425399ebf6f0fb50ebb88f18")
    assert p2pkh_script(h160).hex() == "76a914" + h160.hex() + "88ac"
    assert p2sh_script(h160).hex() == "a914" + h160.hex() + "87"
    assert witness_program_script(0, h160).hex() == "0014" + h160.hex()
    assert witness_program_script(1, bytes(32)).hex() == "5120" + "00" * 32
    assert witness_program_script(16, b"\x75\x1e").hex() == "6002751e"
    with pytest.raises(ValueError, match="20 bytes"):
        p2pkh_script(bytes(19))
    with pytest.raises(ValueError, match="0..16"):
        witness_program_script(17, bytes(20))
    with pytest.raises(ValueError, match="2..40"):
        witness_program_script(2, bytes(41))


# --- BIP141 witness commitment ---------------------------------------------------------------

# sv2-tp NewTemplate (template_id=1, empty mempool): coinbase_tx_outputs, one TxOut.
SV2_TP_EMPTY_BLOCK_OUTPUT = bytes.fromhex(
    "0000000000000000"  # value LE8: 0
    "26"  # script length 38
    "6a"  # OP_RETURN
    "24"  # push 36
    "aa21a9ed"  # BIP141 commitment header
    "e2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9"  # commitment
)


def test_empty_block_commitment_matches_sv2_tp() -> None:
    commitment = witness_commitment([])
    assert commitment.hex() == "e2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9"
    assert commitment == sha256d(bytes(64))  # root of the lone zero wtxid ‖ zero reserved value
    assert TxOut(0, witness_commitment_script(commitment)).serialize() == SV2_TP_EMPTY_BLOCK_OUTPUT


def test_commitment_over_transactions() -> None:
    wtxids = [sha256d(bytes([i])) for i in range(5)]
    reserved = bytes(range(32))
    root = merkle_root([bytes(32), *wtxids])
    assert witness_merkle_root(wtxids) == root
    assert witness_commitment(wtxids, reserved) == sha256d(root + reserved)


def test_commitment_argument_sizes() -> None:
    with pytest.raises(ValueError, match="reserved value"):
        witness_commitment([], bytes(31))
    with pytest.raises(ValueError, match="32 bytes"):
        witness_commitment_script(bytes(33))


def test_commitment_index_is_the_last_match() -> None:
    commitment_script = witness_commitment_script(bytes(32))
    scripts = [b"\x51", commitment_script, b"\x00\x14" + bytes(20), commitment_script + b"extra", b"\x6a"]
    assert witness_commitment_index(scripts) == 3
    assert witness_commitment_index([b"\x51", commitment_script[:-1]]) is None


def test_coinbase_with_commitment_builds_a_consistent_block() -> None:
    """A coinbase built like sv2-tp's (PROTOCOL.md §11) commits to a spending transaction's wtxid."""
    spend = Transaction(
        2,
        (TxIn(sha256d(b"prev"), 0, b"", 0xFFFFFFFD, (b"\x30" * 71, b"\x02" + bytes(32))),),
        (TxOut(49_000, bytes.fromhex("0014") + bytes(20)),),
        0,
    )
    reserved = bytes(32)
    coinbase = Transaction(
        2,
        (TxIn(NULL_HASH, COINBASE_PREV_INDEX, bip34_height_push(204) + b"\x00", 0xFFFFFFFE, (reserved,)),),
        (
            TxOut(2_500_050_000, bytes.fromhex("0014") + bytes(20)),
            TxOut(0, witness_commitment_script(witness_commitment([spend.wtxid], reserved))),
        ),
        203,
    )
    scripts = [o.script_pubkey for o in coinbase.outputs]
    index = witness_commitment_index(scripts)
    assert index == 1
    expected = sha256d(merkle_root([bytes(32), spend.wtxid]) + coinbase.inputs[0].witness[0])
    assert scripts[index][6:] == expected
    assert bip34_height_from_script_sig(coinbase.inputs[0].script_sig) == 204
