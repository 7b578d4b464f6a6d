"""BlockTemplateGenerator (SEED-API.md): the next block's template, from any INodeAPI."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from sv2proxy.template.block_template import BlockTemplate
from sv2proxy.template.node_api import INodeAPI


class BlockTemplateGenerator:
    """Asks the node for a template: chain tip, selected transactions, coinbase value.

    The coinbase itself is built per job by :class:`~sv2proxy.template.job_factory.JobFactory`,
    which knows the payout; the template carries what it needs (height, value, commitment).
    """

    def __init__(self, node_api: INodeAPI) -> None:
        self.node_api = node_api

    def generate_template(self) -> Deferred[BlockTemplate]:
        """The node's current template for the next block."""
        return self.node_api.get_block_template()
