"""StratumV2Pool: the seed API's pool (SEED-API.md), over the channel manager.

For embedding sv2proxy's pool in another program: every method returns a Deferred and miners
are named by an endpoint string.  The daemon itself drives the same
:class:`~sv2proxy.pool.manager.ChannelManager` through its miner protocols.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger

from sv2proxy.bitcoin.hashing import display_hex
from sv2proxy.bitcoin.target import difficulty_to_target, target_to_u256
from sv2proxy.codec.mining import (
    OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
    SubmitSharesExtended,
    SubmitSharesStandard,
)
from sv2proxy.errors import MiningJobError, PoolError, ProtocolError
from sv2proxy.pool.jobs import ChannelJob
from sv2proxy.pool.manager import ChannelManager, PoolSettings

log = Logger()
#: Templates kept for rebuilding found blocks (shares may come for slightly older jobs).
MAX_ASSEMBLERS = 32

if TYPE_CHECKING:
    from sv2proxy.template.block_template import BlockTemplate
    from sv2proxy.template.job_factory import BlockAssembler, JobFactory


class StratumV2Pool:
    """Miners, channels, jobs and share validation behind Deferreds."""

    def __init__(
        self,
        node_api: Any,
        reactor: Any = None,
        *,
        settings: PoolSettings | None = None,
        job_factory: JobFactory | None = None,
    ) -> None:
        self.node_api = node_api
        self._reactor = reactor
        self.manager = ChannelManager(settings)
        self.job_factory = job_factory
        self.assemblers: OrderedDict[int, BlockAssembler] = OrderedDict()
        self._requests = itertools.count(1)
        self._source_ids = itertools.count(1)
        self._prev_hash: bytes | None = None

    def _now(self) -> float:
        return self._reactor.seconds() if self._reactor is not None else time.time()

    def calculate_channel_target(self, min_difficulty: float) -> bytes:
        """The 32-byte (U256, little-endian) target for a difficulty; 1 = Bitcoin's difficulty 1."""
        return target_to_u256(difficulty_to_target(min_difficulty))

    def add_miner(self, endpoint: str, min_difficulty: float) -> Deferred[int]:
        """Open a standard channel for ``endpoint`` no easier than ``min_difficulty``; its id."""
        request = OpenStandardMiningChannel(
            next(self._requests), endpoint, 0.0, self.calculate_channel_target(min_difficulty)
        )
        # Each endpoint is one miner with its own channel: jobs go to it by channel id, not group.
        (_, answer), *_ = self.manager.open_standard(endpoint, request, self._now(), grouped=False)
        if not isinstance(answer, OpenStandardMiningChannelSuccess):
            return fail(PoolError(f"cannot open a channel for {endpoint}: {answer.error_code}"))  # type: ignore[attr-defined]
        return succeed(answer.channel_id)

    def set_template(
        self, template: BlockTemplate, node_api: Any = None
    ) -> Deferred[tuple[int, list[tuple[str, int]]]]:
        """New work from ``template``: its job id and the (endpoint, channel id) it went to."""
        if self.job_factory is None:
            return fail(MiningJobError("no job factory: the pool has no payout to build a coinbase for"))
        try:
            source_id = next(self._source_ids)
            new_tip = template.prev_hash != self._prev_hash
            work, assembler = self.job_factory.work_for(template, future=new_tip, source_id=source_id)
            if new_tip:
                self._prev_hash = template.prev_hash
                job_id, out = self.manager.new_tip(work, self.job_factory.prev_hash_for(template))
            else:
                job_id, out = self.manager.new_work(work)
        except (ValueError, MiningJobError) as e:
            return fail(e)
        self.assemblers[source_id] = assembler
        while len(self.assemblers) > MAX_ASSEMBLERS:
            self.assemblers.popitem(last=False)
        # Every channel gets every job (a group broadcast is addressed to the group, not to them).
        manager = self.manager
        recipients = sorted((str(manager.owner_of(cid)), cid) for cid in manager.channels)
        return succeed((job_id, recipients))

    def validate_share(self, channel_id: int, job_id: int, share_data: bytes) -> Deferred[bool]:
        """Judge an encoded SubmitSharesStandard/Extended payload for ``channel_id``/``job_id``.

        A share that is a block is rebuilt and handed to ``node_api.submit_block``; the node's
        answer is logged.
        """
        try:
            share: SubmitSharesStandard | SubmitSharesExtended = (
                SubmitSharesStandard.decode(share_data)
                if len(share_data) == 24
                else SubmitSharesExtended.decode(share_data)
            )
        except ProtocolError as e:
            return fail(e)
        if (share.channel_id, share.job_id) != (channel_id, job_id):
            return fail(ProtocolError(f"the share is for channel {share.channel_id} job {share.job_id}"))
        owner = self.manager.owner_of(channel_id)
        _, result = self.manager.submit(owner, share, self._now())
        if result is not None and result.is_block and result.job is not None:
            self._submit_block(share, result.job)
        return succeed(result is not None and result.accepted)

    def _submit_block(self, share: SubmitSharesStandard | SubmitSharesExtended, job: ChannelJob) -> None:
        assembler = self.assemblers.get(job.work.source_id)
        if assembler is None or self.node_api is None:
            log.critical("cannot submit a found block: its template is no longer kept or no node is set")
            return
        rolled = share.extranonce if isinstance(share, SubmitSharesExtended) else b""
        block = assembler.assemble(job.extranonce_prefix + rolled, share.version, share.ntime, share.nonce)
        block_hash = display_hex(block.hash)
        log.info("BLOCK found on channel {channel}: {hash}", channel=share.channel_id, hash=block_hash)
        submitted = self.node_api.submit_block(block.data.hex())
        submitted.addCallbacks(
            lambda reason: log.info("block {hash}: {answer}", hash=block_hash, answer=reason or "accepted"),
            lambda failure: log.failure("submitting block {hash} failed", failure, hash=block_hash),
        )
