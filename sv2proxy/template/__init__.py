"""Block templates and the work made from them: a Bitcoin node's getblocktemplate or a Stratum V2
Template Provider's NewTemplate/SetNewPrevHash, turned into pool work and, for a found share,
into the block to submit (DESIGN.md "template/"; PROTOCOL.md §6, §7, §11)."""

from sv2proxy.template.block_template import BlockTemplate
from sv2proxy.template.generator import BlockTemplateGenerator
from sv2proxy.template.node_api import BitcoinCoreNode, INodeAPI

__all__ = ["BitcoinCoreNode", "BlockTemplate", "BlockTemplateGenerator", "INodeAPI"]
