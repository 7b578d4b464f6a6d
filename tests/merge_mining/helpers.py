"""A parent block mined just enough to carry aux proofs, for the merge-mining tests."""

from __future__ import annotations

from dataclasses import dataclass

from sv2proxy.bitcoin.coinbase import build_coinbase
from sv2proxy.bitcoin.hashing import merkle_path, merkle_root_from_path, sha256d
from sv2proxy.bitcoin.serialize import COINBASE_PREV_INDEX, NULL_HASH, BlockHeader, Transaction, TxIn, TxOut
from sv2proxy.merge_mining.work import AuxBlock, AuxWork

EASY = (1 << 256) - 1  # every hash meets it
SCRIPT = bytes.fromhex("0014") + bytes(20)


def aux_block(chain: str, chain_id: int, *, target: int = EASY, height: int = 10, seed: bytes = b"") -> AuxBlock:
    return AuxBlock(
        chain=chain,
        chain_id=chain_id,
        hash=sha256d(chain.encode() + seed),
        target=target,
        height=height,
        coinbase_value=5_000_000_000,
        prev_hash=sha256d(b"prev" + chain.encode()),
    )


@dataclass(frozen=True)
class Parent:
    coinbase: bytes  # legacy serialization
    branch: tuple[bytes, ...]
    header: bytes


def parent_for(
    work: AuxWork | None,
    *,
    aux_push: bytes | None = None,
    script_sig: bytes | None = None,
    txs: int = 3,
    version: int = 0x20000000,
) -> Parent:
    """A parent block whose coinbase carries ``work``'s commitment (or ``aux_push``, or is
    exactly ``script_sig``)."""
    if script_sig is not None:
        tx = Transaction(2, (TxIn(NULL_HASH, COINBASE_PREV_INDEX, script_sig),), (TxOut(50, SCRIPT),))
        coinbase = tx.serialize(with_witness=False)
    else:
        push = aux_push if aux_push is not None else (work.script_push if work is not None else b"")
        coinbase = build_coinbase(
            extranonce_size=8, payouts=((SCRIPT, 50),), height=200, pool_tag=b"/t/", aux_push=push
        ).serialize(bytes(8), with_witness=False)
    branch = tuple(merkle_path([sha256d(bytes([i])) for i in range(txs)]))
    root = merkle_root_from_path(sha256d(coinbase), branch)
    header = BlockHeader(version, sha256d(b"tip"), root, 1_700_000_000, 0x207FFFFF, 0).serialize()
    return Parent(coinbase, branch, header)
