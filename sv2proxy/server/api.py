"""StratumV2Server: the seed API's server (SEED-API.md), for embedding.

It owns the pool, the template generator and (once merge mining exists) its coordinator, and
answers raw Stratum V2 frames with :meth:`handle_message` -- the same negotiation and pool core
the daemon's miner protocols use, with the peer address standing for the connection.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger

from sv2proxy.bitcoin.address import Network, script_for_address
from sv2proxy.codec.common import SetupConnection, SetupConnectionSuccess
from sv2proxy.codec.constants import ERROR_EXTENDED_CHANNELS_NOT_SUPPORTED_FOR_STANDARD_JOBS, REQUIRES_STANDARD_JOBS
from sv2proxy.codec.framing import FrameDecoder
from sv2proxy.codec.mining import (
    OpenExtendedMiningChannel,
    OpenMiningChannelError,
    OpenStandardMiningChannel,
    SubmitSharesExtended,
    SubmitSharesStandard,
    UpdateChannel,
)
from sv2proxy.codec.registry import decode_frame
from sv2proxy.config import Config
from sv2proxy.errors import ProtocolError
from sv2proxy.events import (
    BlockMined,
    BlockTemplateUpdated,
    Event,
    EventBus,
    MiningDifficultyChanged,
    StratumV2MessageReceived,
)
from sv2proxy.merge_mining.coordinator import MergeMiningCoordinator, merge_mining_service
from sv2proxy.pool.api import StratumV2Pool
from sv2proxy.server.mining import pool_settings
from sv2proxy.server.setup import negotiate_mining_setup
from sv2proxy.template.generator import BlockTemplateGenerator
from sv2proxy.template.job_factory import JobFactory

log = Logger()


class StratumV2Server:
    """The pool, its templates and raw-frame handling behind Deferreds."""

    def __init__(self, config: Config, node_api: Any, reactor: Any = None) -> None:
        self.config = config
        self.node_api = node_api
        self.reactor = reactor
        factory = None
        if config.coinbase.payout is not None:
            network = Network.from_name(config.node.chain)
            payout = [(script_for_address(a, network), p) for a, p in config.coinbase.payout]
            factory = JobFactory(payout, config.coinbase.pool_tag.encode(), config.mining.extranonce_size)
        self.pool = StratumV2Pool(node_api, reactor, settings=pool_settings(config.mining), job_factory=factory)
        self.template_generator = BlockTemplateGenerator(node_api)
        #: The aux chains of ``config.merge_mining`` (none configured: an empty coordinator to
        #: which :meth:`~MergeMiningCoordinator.add_secondary_chain` adds them).
        self.merge_mining = self._merge_mining(config, node_api, reactor)
        self._setups: dict[str, SetupConnection] = {}
        self._pending: dict[str, list[Any]] = {}

    @staticmethod
    def _merge_mining(config: Config, node_api: Any, reactor: Any) -> MergeMiningCoordinator:
        if not config.merge_mining.chains:
            return MergeMiningCoordinator(node_api, clock=reactor)
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        events = getattr(node_api, "events", None) or EventBus()
        return merge_mining_service(config.merge_mining, reactor, events)

    def handle_event(self, event: Event) -> Deferred[None]:
        """React to a node event: new templates become jobs, raw frames are answered."""
        if isinstance(event, BlockTemplateUpdated):
            return self.update_block_template(event.template, self.node_api)
        if isinstance(event, StratumV2MessageReceived):
            return self.handle_message(event.data, event.peer_addr).addCallback(lambda _: None)
        if isinstance(event, MiningDifficultyChanged):
            try:
                out = self.pool.manager.set_difficulty(event.difficulty, self.pool._now(), event.channel_id)
            except ValueError as e:
                return fail(e)
            # There is no connection to write to here: the SetTargets go out with each peer's
            # next reply, before anything else, so no share is judged by a target never sent.
            for owner, message in out:
                self._pending.setdefault(str(owner), []).append(message)
        elif isinstance(event, BlockMined):
            # A new tip reaches the pool as a new template; the block itself needs nothing here.
            log.info("block mined: {hash}", hash=event.block_hash)
        return succeed(None)

    def handle_message(self, data: bytes, peer_addr: str) -> Deferred[bytes | None]:
        """One raw frame from ``peer_addr``; the encoded reply frames, or None."""
        try:
            frames = FrameDecoder().feed(data)
            if len(frames) != 1:
                raise ProtocolError(f"expected exactly one whole frame, got {len(frames)}")
            message = decode_frame(frames[0])
        except ProtocolError as e:
            return fail(e)
        manager = self.pool.manager
        now = self.pool._now()
        replies: list[Any]
        if isinstance(message, SetupConnection):
            answer = negotiate_mining_setup(message)
            if isinstance(answer, SetupConnectionSuccess):
                self._setups[peer_addr] = message
            replies = [answer]
        elif peer_addr not in self._setups:
            return fail(ProtocolError(f"{peer_addr} sent {type(message).__name__} before SetupConnection"))
        elif isinstance(message, OpenStandardMiningChannel):
            grouped = not self._setups[peer_addr].flags & REQUIRES_STANDARD_JOBS
            replies = [m for _, m in manager.open_standard(peer_addr, message, now, grouped)]
        elif isinstance(message, OpenExtendedMiningChannel):
            if self._setups[peer_addr].flags & REQUIRES_STANDARD_JOBS:
                replies = [
                    OpenMiningChannelError(message.request_id, ERROR_EXTENDED_CHANNELS_NOT_SUPPORTED_FOR_STANDARD_JOBS)
                ]
            else:
                replies = [m for _, m in manager.open_extended(peer_addr, message, now)]
        elif isinstance(message, UpdateChannel):
            replies = [m for _, m in manager.update_channel(peer_addr, message, now)]
        elif isinstance(message, SubmitSharesStandard | SubmitSharesExtended):
            out, _ = manager.submit(peer_addr, message, now)
            replies = [m for _, m in out]
        else:
            return fail(ProtocolError(f"unexpected {type(message).__name__} from a miner"))
        replies = self._pending.pop(peer_addr, []) + replies
        return succeed(b"".join(reply.to_frame() for reply in replies) or None)

    def update_block_template(self, template: Any, node_api: Any = None) -> Deferred[None]:
        """Install ``template`` and send its jobs to every channel."""
        return self.pool.set_template(template, node_api or self.node_api).addCallback(lambda _: None)
