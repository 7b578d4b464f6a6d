"""Checking an AuxPoW proof as an aux chain does (Namecoin Core's ``CAuxPow::check`` + PoW).

The pool runs this on every proof before it submits one (a proof the chain would refuse is a
bug worth a log line, not an RPC round trip), and :class:`~sv2proxy.testing.aux_node.AuxNode`
runs it on every ``submitauxblock``.  The rules, in Namecoin's order:

1. the parent coinbase is leaf 0 of the parent block (nIndex 0);
2. the parent header does not carry the aux chain's own chain id (``version >> 16``);
3. the chain branch has at most 30 hashes;
4. the coinbase's branch leads to the parent header's merkle root;
5. the aux merkle root the chain branch leads to (from the aux block hash at ``chain_index``)
   appears, byte-reversed, in the coinbase scriptSig: right after the one and only
   merged-mining header when there is one, or within the scriptSig's first 20 bytes (the
   pre-header form Namecoin still accepts) when there is none;
6. size and nonce follow the root; the size is 2**(branch length) and ``chain_index`` is the
   slot the nonce and the chain id give;
7. the parent header's hash meets the aux block's target.

Pure code: :class:`AuxPowInvalid` carries the reason in words.
"""

from __future__ import annotations

from sv2proxy.bitcoin.hashing import sha256d
from sv2proxy.bitcoin.serialize import Transaction
from sv2proxy.merge_mining.commitment import MERGED_MINING_HEADER
from sv2proxy.merge_mining.proof import AuxPow
from sv2proxy.merge_mining.slot import MAX_TREE_HEIGHT, expected_slot
from sv2proxy.merge_mining.tree import root_from_branch

#: Where the root must start in a scriptSig without a merged-mining header (Namecoin's legacy rule).
LEGACY_ROOT_WINDOW = 20
#: Namecoin's block version layout: the chain id lives above bit 16.
CHAIN_ID_SHIFT = 16


class AuxPowInvalid(ValueError):
    """The proof does not prove work for this aux block; ``str()`` says which rule failed."""


def check_auxpow(auxpow: AuxPow, aux_hash: bytes, chain_id: int, target: int, *, strict_chain_id: bool = True) -> None:
    """Raise :class:`AuxPowInvalid` unless ``auxpow`` proves ``target`` work for ``aux_hash``.

    ``aux_hash`` is the aux block's hash in raw order (a leaf of the aux tree).
    """
    if auxpow.coinbase_index != 0:
        raise AuxPowInvalid("the parent transaction is not the coinbase (nIndex is not 0)")
    header = auxpow.header
    if strict_chain_id and header.version >> CHAIN_ID_SHIFT == chain_id:
        raise AuxPowInvalid(f"the parent block has our chain id {chain_id}")
    if len(auxpow.chain_branch) > MAX_TREE_HEIGHT:
        raise AuxPowInvalid(f"the chain merkle branch is longer than {MAX_TREE_HEIGHT}")
    try:
        coinbase = Transaction.parse(auxpow.coinbase)
    except ValueError as e:
        raise AuxPowInvalid(f"the parent coinbase is not a transaction: {e}") from None
    if root_from_branch(coinbase.txid, auxpow.coinbase_branch, 0) != header.merkle_root:
        raise AuxPowInvalid("the coinbase branch does not lead to the parent block's merkle root")
    if not coinbase.inputs:
        raise AuxPowInvalid("the parent coinbase has no input")
    script = coinbase.inputs[0].script_sig

    root = root_from_branch(aux_hash, auxpow.chain_branch, auxpow.chain_index)
    reversed_root = root[::-1]
    head = script.find(MERGED_MINING_HEADER)
    at = script.find(reversed_root)
    if at < 0:
        raise AuxPowInvalid("the aux merkle root is not in the parent coinbase")
    if head >= 0:
        if script.find(MERGED_MINING_HEADER, head + 1) >= 0:
            raise AuxPowInvalid("more than one merged-mining header in the parent coinbase")
        if head + len(MERGED_MINING_HEADER) != at:
            raise AuxPowInvalid("the merged-mining header is not just before the aux merkle root")
    elif at > LEGACY_ROOT_WINDOW:
        raise AuxPowInvalid(f"without a header the aux merkle root must start in the first {LEGACY_ROOT_WINDOW} bytes")

    tail = script[at + 32 : at + 40]
    if len(tail) < 8:
        raise AuxPowInvalid("the tree size and nonce are missing after the aux merkle root")
    size = int.from_bytes(tail[:4], "little")
    height = len(auxpow.chain_branch)
    if size != 1 << height:
        raise AuxPowInvalid(f"the committed tree size {size} does not match a branch of {height}")
    nonce = int.from_bytes(tail[4:], "little")
    slot = expected_slot(nonce, chain_id, size)
    if auxpow.chain_index != slot:
        raise AuxPowInvalid(f"the aux block sits at slot {auxpow.chain_index}, chain id {chain_id} owns slot {slot}")

    if int.from_bytes(sha256d(auxpow.parent_header), "little") > target:
        raise AuxPowInvalid("the parent block hash does not meet the aux target")
