"""AuxNode: Namecoin's merge-mining RPC shapes, and strict checks of submitted proofs."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from merge_mining.fakes import PAYOUT, Peer
from merge_mining.helpers import parent_for
from sv2proxy.bitcoin.hashing import sha256d
from sv2proxy.bitcoin.target import target_from_nbits
from sv2proxy.merge_mining.rpc import parse_aux_block
from sv2proxy.merge_mining.work import AuxWork
from sv2proxy.template.rpc import NodeError


@pytest.fixture
def peer() -> Peer:
    return Peer(Clock(), chain_id=7, name="nmc")


def test_createauxblock_shape(peer: Peer) -> None:
    result = peer.call("createauxblock", PAYOUT)
    assert set(result) == {"hash", "chainid", "previousblockhash", "coinbasevalue", "bits", "height", "_target"}
    assert result["chainid"] == 7 and result["height"] == 1 and result["bits"] == "207fffff"
    assert bytes.fromhex(result["_target"]) == target_from_nbits(0x207FFFFF).to_bytes(32, "little")
    assert result["previousblockhash"] == peer.node.tip[::-1].hex()
    # The same address gets the same block until the tip moves.
    assert peer.call("createauxblock", PAYOUT)["hash"] == result["hash"]
    # getauxblock without arguments pays the node's own wallet, here the same address.
    assert peer.call("getauxblock")["hash"] == result["hash"]


def test_createauxblock_refuses_a_bad_address(peer: Peer) -> None:
    with pytest.raises(NodeError, match="-5"):
        peer.call("createauxblock", "not-an-address")


def test_getblockchaininfo(peer: Peer) -> None:
    info = peer.call("getblockchaininfo")
    assert info["blocks"] == 0 and info["bestblockhash"] == peer.node.tip[::-1].hex()


def _proof_for(peer: Peer, answer: dict[str, object], version: int = 0x20000000) -> str:
    block = parse_aux_block("nmc", 7, answer)
    work = AuxWork((block,))
    parent = parent_for(work, version=version)
    return work.proof(0, parent.coinbase, parent.branch, parent.header).serialize().hex()


def test_a_valid_proof_extends_the_chain(peer: Peer) -> None:
    answer = peer.call("createauxblock", PAYOUT)
    assert peer.call("submitauxblock", answer["hash"], _proof_for(peer, answer)) is True
    assert peer.node.height == 1 and peer.node.tip[::-1].hex() == answer["hash"]
    # The tip moved: every block handed out before is forgotten, as Namecoin does.
    with pytest.raises(NodeError, match="block hash unknown"):
        peer.call("submitauxblock", answer["hash"], _proof_for(peer, answer))
    assert peer.call("createauxblock", PAYOUT)["height"] == 2


def test_getauxblock_submits_too(peer: Peer) -> None:
    answer = peer.call("getauxblock")
    assert peer.call("getauxblock", answer["hash"], _proof_for(peer, answer)) is True


def test_a_proof_for_another_block_is_refused(peer: Peer) -> None:
    answer = peer.call("createauxblock", PAYOUT)
    other = dict(answer, hash=sha256d(b"x")[::-1].hex())
    assert peer.call("submitauxblock", answer["hash"], _proof_for(peer, other)) is False
    assert peer.node.height == 0 and "not in the parent coinbase" in peer.node.rejected[0][1]


def test_a_parent_with_our_chain_id_is_refused(peer: Peer) -> None:
    answer = peer.call("createauxblock", PAYOUT)
    assert peer.call("submitauxblock", answer["hash"], _proof_for(peer, answer, version=7 << 16)) is False
    assert "chain id" in peer.node.rejected[0][1]


def test_the_parent_must_meet_the_aux_target() -> None:
    hard = Peer(Clock(), chain_id=7, name="nmc", bits=0x03000001)  # a target of 1: nothing meets it
    answer = hard.call("createauxblock", PAYOUT)
    block = parse_aux_block("nmc", 7, answer)
    work = AuxWork((block,))
    parent = parent_for(work)
    proof = work.proof(0, parent.coinbase, parent.branch, parent.header).serialize().hex()
    assert hard.call("submitauxblock", answer["hash"], proof) is False
    assert "aux target" in hard.node.rejected[0][1]


def test_garbage_auxpow_and_unknown_hashes(peer: Peer) -> None:
    answer = peer.call("createauxblock", PAYOUT)
    with pytest.raises(NodeError, match="-22"):
        peer.call("submitauxblock", answer["hash"], "00")
    with pytest.raises(NodeError, match="block hash unknown"):
        peer.call("submitauxblock", "00" * 32, "00")


def test_another_miner_moves_the_tip(peer: Peer) -> None:
    first = peer.call("createauxblock", PAYOUT)
    mined = peer.node.mine_block()
    second = peer.call("createauxblock", PAYOUT)
    assert second["previousblockhash"] == mined.display_hash != first["previousblockhash"]
    assert second["height"] == 2


def test_misbehaving(peer: Peer) -> None:
    peer.node.misbehave = "garbage"
    with pytest.raises(ValueError):
        parse_aux_block("nmc", 7, peer.call("createauxblock", PAYOUT))


def _namecoin_style_auxpow(display_hash: str, target: int) -> str:
    """A proof made the way Namecoin's own functional tests make one (test_framework/auxpow.py),
    with none of our proof code: a one-input, no-output coinbase whose script is the header,
    the hash as printed, size 1 and nonce 0; a version-1 parent whose only transaction it is."""
    script = b"\xfa\xbemm" + bytes.fromhex(display_hash) + (1).to_bytes(4, "little") + bytes(4)
    tx = (
        (1).to_bytes(4, "little")
        + b"\x01"
        + bytes(32)
        + b"\xff" * 4
        + bytes([len(script)])
        + script
        + b"\xff" * 4
        + b"\x00"  # no outputs
        + bytes(4)
    )
    for nonce in range(1 << 16):
        header = (1).to_bytes(4, "little") + bytes(32) + sha256d(tx) + bytes(8) + nonce.to_bytes(4, "little")
        if int.from_bytes(sha256d(header), "little") <= target:
            break
    # hashBlock (the parent's hash, as Namecoin's tests still write it), empty coinbase branch
    # at index 0, empty chain branch at index 0, the parent header.
    auxpow = tx + sha256d(header) + b"\x00" + bytes(4) + b"\x00" + bytes(4) + header
    return auxpow.hex()


def test_a_proof_made_as_namecoin_makes_one_is_accepted(peer: Peer) -> None:
    answer = peer.call("createauxblock", PAYOUT)
    target = int.from_bytes(bytes.fromhex(answer["_target"]), "little")  # as Namecoin's tests read it
    assert peer.call("submitauxblock", answer["hash"], _namecoin_style_auxpow(answer["hash"], target)) is True
    assert peer.node.height == 1 and peer.node.rejected == []


def test_the_root_in_internal_byte_order_is_refused(peer: Peer) -> None:
    # The commitment carries the root reversed (display order); the raw order is not found.
    answer = peer.call("createauxblock", PAYOUT)
    raw_order = bytes.fromhex(answer["hash"])[::-1].hex()
    assert peer.call("submitauxblock", answer["hash"], _namecoin_style_auxpow(raw_order, 1 << 255)) is False
    assert "not in the parent coinbase" in peer.node.rejected[0][1]
