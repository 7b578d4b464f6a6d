"""Merge mining (AuxPoW): several secondary chains secured by the same parent proof of work.

Pure pieces, one concept per module (no reactor, no clock, no logging): :mod:`.slot` (the
merged-mining slot function and the tree size/nonce choice), :mod:`.tree` (the aux merkle tree
and branches), :mod:`.commitment` (the ``fabe6d6d`` coinbase commitment), :mod:`.proof`
(Namecoin's CAuxPow serialization), :mod:`.verify` (the checks an aux chain makes) and
:mod:`.work` (the aux blocks one coinbase commits to).  The Twisted side: :mod:`.rpc` (the aux
chain's JSON-RPC) and :mod:`.coordinator` (:class:`MergeMiningCoordinator`, SEED-API.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sv2proxy.merge_mining.commitment import COMMITMENT_SIZE, MERGED_MINING_HEADER, Commitment
from sv2proxy.merge_mining.proof import AuxPow
from sv2proxy.merge_mining.slot import MAX_TREE_HEIGHT, TreeLayout, expected_slot, plan_tree
from sv2proxy.merge_mining.tree import AuxMerkleTree, root_from_branch
from sv2proxy.merge_mining.verify import AuxPowInvalid, check_auxpow
from sv2proxy.merge_mining.work import AuxBlock, AuxWork

if TYPE_CHECKING:
    from sv2proxy.merge_mining.coordinator import MergeMiningCoordinator, SecondaryChain

__all__ = [
    "COMMITMENT_SIZE",
    "MAX_TREE_HEIGHT",
    "MERGED_MINING_HEADER",
    "AuxBlock",
    "AuxMerkleTree",
    "AuxPow",
    "AuxPowInvalid",
    "AuxWork",
    "Commitment",
    "MergeMiningCoordinator",
    "SecondaryChain",
    "TreeLayout",
    "check_auxpow",
    "expected_slot",
    "plan_tree",
    "root_from_branch",
]


def __getattr__(name: str) -> Any:
    # The coordinator pulls in Twisted and treq; the pure pieces above do not need them.
    if name in ("MergeMiningCoordinator", "SecondaryChain"):
        from sv2proxy.merge_mining import coordinator

        return getattr(coordinator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
