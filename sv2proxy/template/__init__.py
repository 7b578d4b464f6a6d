"""Block templates and the work made from them: a Bitcoin node's getblocktemplate or a Stratum V2
Template Provider's NewTemplate/SetNewPrevHash, turned into pool work and, for a found share,
into the block to submit (DESIGN.md "template/"; PROTOCOL.md §6, §7, §11)."""
