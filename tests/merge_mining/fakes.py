"""AuxNodes in memory: their real JSON-RPC resource behind treq's StubTreq, on a Clock."""

from __future__ import annotations

from typing import Any

from treq.testing import StubTreq
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock

from sv2proxy.merge_mining.rpc import AuxChainRPC
from sv2proxy.template.rpc import BitcoinCoreRPC, RPCAuth
from sv2proxy.testing.aux_node import AuxNode

PAYOUT = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


class Peer:
    """One AuxNode and a client of it, both in memory."""

    def __init__(self, clock: Clock, chain_id: int, name: str = "aux", bits: int = 0x207FFFFF) -> None:
        self.node = AuxNode(clock, chain_id=chain_id, name=name, bits=bits)
        self.stub = StubTreq(self.node.resource)
        self.rpc = BitcoinCoreRPC("http://aux.invalid/", RPCAuth("aux", "secret"), self.stub, clock, timeout=5)
        self.client = AuxChainRPC(self.rpc, name, chain_id, PAYOUT)

    def call(self, method: str, *params: Any) -> Any:
        """The result of one RPC call (the in-memory server answers at once)."""
        done = ensureDeferred(self.rpc.call(method, *params))
        self.stub.flush()
        results: list[Any] = []
        done.addBoth(results.append)
        assert results, f"{method} did not answer"
        if isinstance(results[0], Exception) or hasattr(results[0], "raiseException"):
            results[0].raiseException()
        return results[0]
