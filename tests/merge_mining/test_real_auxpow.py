"""A real AuxPoW from mainnet, checked without any code of ours having made it.

Crown block 1671882 (2017-12-16, chain id 0x14 = 20) was merge-mined under a Bitcoin block by
BTC.TOP: its parent coinbase commits, after ``/BTC.TOP/``, to an aux tree of 128 slots (nonce 0)
in which Crown sits at slot 2.  That the proof verifies pins every byte-order convention against
a chain that accepted it: the reversed root after ``fabe6d6d``, size and nonce LE32, the slot
function, both branch walks, the serialization (with the old non-zero hashBlock) and the PoW
comparison.  The bytes are the block as bitcore-lib-crown's test data lists them.
"""

from __future__ import annotations

import dataclasses

import pytest

from sv2proxy.bitcoin.hashing import sha256d
from sv2proxy.bitcoin.serialize import BlockHeader, Transaction
from sv2proxy.bitcoin.target import target_from_nbits
from sv2proxy.merge_mining.commitment import Commitment
from sv2proxy.merge_mining.proof import AuxPow
from sv2proxy.merge_mining.slot import expected_slot
from sv2proxy.merge_mining.verify import AuxPowInvalid, check_auxpow

CROWN_HEADER = bytes.fromhex(
    "020114005301293074c5ac60c575c6b7ace39cae11b38f7590bf6a92940460f2297de881855fb19e30a844ee2ed2c5f5"
    "96487cab9009ca9aac99288fafed57594ea1d87e1b35355a496d501800000000"
)
CROWN_AUXPOW = bytes.fromhex(
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff55039f9f0741d6"
    "8d4d59e784d541d68d4d58e114de2f4254432e544f502ffabe6d6dbb243fc024480237bc9af6e579774c68ad925d5898"
    "799cd6978fa5671e921ee18000000000000000c0004aea0000979175430100ffffffff020402b561000000001976a914"
    "ba507bae8f1643d2556000ca26b9301b9069dc6b88ac0000000000000000266a24aa21a9edf376b48cd1bab1103c99e6"
    "880e2e711d1ddcea3186a3052df93bdedbfbf165ac00000000e85a2fd2c4d2a65ca88aee5cf72d1e6a697344f66b4287"
    "3200000000000000000b87731c6293b37ff0200714b03fe69574442af141976de0a6d6a458a0df57cdc44fe8832f2c0f"
    "83b45a28e808ca4413b38006f11a9226c5d0312ddf6872f7617cf91423ca3c7c8c3a8eb5e34455386b49ee75a77187bf"
    "79deeec046dfdc8aa998a3afff07b5db3a1ee375ff19934502639fc903aaf815e72bab1c203ddf22bd39397fa897e51a"
    "756dfadb870b0c603dcf12df6f1491d86f088095d3066dfb0ddc7b2516658b6f183771169eb2999ad002272c3ba1b1b4"
    "c56923ba3ead388f66153297f47f4ca230b82316f9771a4e9e17d992100fa3ce3c0de386cbb5e25438c7bffa1976d507"
    "10c9678ea03b1a6102c97f0dea99a9b8b27a1ba0ddeabd1ce3917b7131ee0c2d425d3d7f634120b42f29d7e0e248fd51"
    "a40a9b28f129e88f8c91e7fd420871bc37f28101a06abd2c1797f4db5b2a758740f624e0b1bec7fffff56970d010808f"
    "94ab5dfcb41d18857bb93ede63a0c4b9895a8adbe9db65498f4d00000000070000000000000000000000000000000000"
    "000000000000000000000000000000e2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf97d"
    "24db2bfa41474bfb2f877d688fac5faa5e10a2808cf9de307370b93352e54894857d3e08918f70395d9206410fbfa942"
    "f1a889aa5ab8188ec33c2f6e207dc7cfd4029a8f50bac38bf2a7bd7edd9e36d635104c7036936e9037ccf2510e9904ad"
    "83a7857080ddaac962e156e92e3f07d488bc7f06ca9c070ec0daeb7370ee887114a7df8021eaf60766b7c022c3a6edbb"
    "a8e67c1321967b3ebdf9e891c511a8020000000000002067bb809cad25f88cf1b6fec6ecfca1c102fe944859e6350000"
    "000000000000009084137d0d05ecfba2e72141a0a9d70a55b685c9a0c25ca02ff4e451b9e485c56335355aedb00018c0"
    "c96b35"
)
CROWN_HASH = "72a79139b132951724255181232988eeabc19e9b855a87727a3d8d59b369e2f7"
CROWN_CHAIN_ID = 0x14


def _crown() -> tuple[AuxPow, bytes, int]:
    header = BlockHeader.parse(CROWN_HEADER)
    return AuxPow.parse(CROWN_AUXPOW), sha256d(CROWN_HEADER), target_from_nbits(header.bits)


def test_the_block_is_what_it_says() -> None:
    header = BlockHeader.parse(CROWN_HEADER)
    assert sha256d(CROWN_HEADER)[::-1].hex() == CROWN_HASH
    assert header.version >> 16 == CROWN_CHAIN_ID


def test_a_real_mainnet_auxpow_verifies() -> None:
    proof, aux_hash, target = _crown()
    assert (len(proof.coinbase_branch), len(proof.chain_branch), proof.chain_index) == (11, 7, 2)
    check_auxpow(proof, aux_hash, CROWN_CHAIN_ID, target)


def test_its_commitment_reads_as_ours() -> None:
    proof, _, _ = _crown()
    script = Transaction.parse(proof.coinbase).inputs[0].script_sig
    commitment = Commitment.find(script)
    assert (commitment.size, commitment.nonce) == (128, 0)
    assert expected_slot(commitment.nonce, CROWN_CHAIN_ID, commitment.size) == proof.chain_index
    # Written back, the commitment is the bytes the parent coinbase carries.
    assert commitment.serialize() in script


def test_it_only_proves_what_it_proves() -> None:
    proof, aux_hash, target = _crown()
    with pytest.raises(AuxPowInvalid, match="slot"):
        check_auxpow(proof, aux_hash, CROWN_CHAIN_ID + 1, target)  # the root is found, the slot is not its
    # Ids agreeing modulo the tree size share a slot (slot.py): the proof holds for both.
    check_auxpow(proof, aux_hash, CROWN_CHAIN_ID + 128, target)
    with pytest.raises(AuxPowInvalid, match="not in the parent coinbase"):
        check_auxpow(proof, aux_hash[::-1], CROWN_CHAIN_ID, target)  # the hash in the wrong byte order
    with pytest.raises(AuxPowInvalid, match="aux target"):
        value = int.from_bytes(sha256d(proof.parent_header), "little")
        check_auxpow(proof, aux_hash, CROWN_CHAIN_ID, value - 1)
    with pytest.raises(AuxPowInvalid):
        check_auxpow(dataclasses.replace(proof, chain_index=3), aux_hash, CROWN_CHAIN_ID, target)
