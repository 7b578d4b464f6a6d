"""INodeAPI: what the daemon needs from a Bitcoin node (SEED-API.md), and Bitcoin Core's answer.

Every method returns a Deferred.  :class:`BitcoinCoreNode` implements it over JSON-RPC; a
Stratum V2 Template Provider client is the second implementation (a later step).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from zope.interface import Attribute, Interface, implementer

from sv2proxy.events import Event, EventBus
from sv2proxy.template.block_template import BlockTemplate
from sv2proxy.template.rpc import BitcoinCoreRPC


class INodeAPI(Interface):
    """A Bitcoin node as the pool sees it."""

    events = Attribute("the EventBus node events are published on")

    def get_chain_tip() -> Deferred[str]:
        """The best block hash (display hex)."""

    def get_block_template() -> Deferred[BlockTemplate]:
        """A template for the next block, transactions selected by the node."""

    def get_mempool() -> Deferred[list[str]]:
        """The txids (display hex) in the node's mempool."""

    def submit_block(block_hex: str) -> Deferred[str | None]:
        """None if the node accepted the block, else its reason."""

    def publish_event(event: Event) -> None:
        """Publish a node event (BlockMined, BlockTemplateUpdated, ...) on the bus."""


@implementer(INodeAPI)
class BitcoinCoreNode:
    """INodeAPI over Bitcoin Core's JSON-RPC."""

    def __init__(self, rpc: BitcoinCoreRPC, events: EventBus | None = None) -> None:
        self.rpc = rpc
        self.events = events if events is not None else EventBus()

    def get_chain_tip(self) -> Deferred[str]:
        return ensureDeferred(self.rpc.getbestblockhash())

    def get_block_template(self) -> Deferred[BlockTemplate]:
        async def fetch() -> BlockTemplate:
            return BlockTemplate.from_getblocktemplate(await self.rpc.getblocktemplate())

        return ensureDeferred(fetch())

    def get_mempool(self) -> Deferred[list[str]]:
        async def fetch() -> list[str]:
            result: Any = await self.rpc.call("getrawmempool")
            return [str(txid) for txid in result or ()]

        return ensureDeferred(fetch())

    def submit_block(self, block_hex: str) -> Deferred[str | None]:
        return ensureDeferred(self.rpc.submitblock(block_hex))

    def publish_event(self, event: Event) -> None:
        self.events.publish(event)
