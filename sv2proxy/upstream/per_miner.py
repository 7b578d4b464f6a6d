"""The Protocol of a per-miner Stratum V2 upstream connection: frames in, :class:`MinerChannels` actions out.

The per-miner sibling of :class:`~sv2proxy.upstream.client.UpstreamProtocol` (``upstream.channels:
per-miner``): as thin, with the same deadlines and closing (:class:`~sv2proxy.upstream.link.UpstreamLink`),
but the work it hands the mining service is scoped to one local channel (``new_channel_work``,
``new_channel_prev_hash``), and local channels opening and closing (heard by the service from
the channel manager) open and close their upstream channels here.  The link is ready once
SetupConnection succeeds: then every local channel gets its upstream channel (after a failover
too, on the next pool); a miner whose upstream channel the pool refuses or closes has its local
channel closed (a V1 miner is sent away and comes back, trying again).
"""

from __future__ import annotations

from typing import Protocol as TypingProtocol

from twisted.logger import Logger

from sv2proxy.bitcoin.target import target_to_difficulty
from sv2proxy.errors import MiningJobError
from sv2proxy.pool.channel import Channel
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.upstream.client import Sv2UpstreamProtocol
from sv2proxy.upstream.link import ProxiedMining
from sv2proxy.upstream.miner_channels import ConnectionReady, ForMiner, MinerAction, MinerChannelClosed, MinerChannels
from sv2proxy.upstream.session import ChannelOpened, ExtranoncePrefixChanged, NewPrevHash, NewWork, SendMessage

log = Logger()


class PerMinerMining(ProxiedMining, TypingProtocol):
    """What per-miner mode needs of the mining service besides proxy mode's."""

    def miner_channels(self) -> list[Channel]: ...

    def new_channel_work(self, channel_id: int, work: Work) -> int: ...

    def new_channel_prev_hash(self, channel_id: int, source_id: int, prev: PrevHash) -> None: ...

    def close_miner_channel(self, channel_id: int, reason: str) -> None: ...

    def channel_hash_rate(self, channel_id: int) -> float: ...


class PerMinerProtocol(Sv2UpstreamProtocol):
    """One connection to a Stratum V2 pool with one upstream channel per local channel."""

    session: MinerChannels
    mining: PerMinerMining

    def update_channel(self, hash_rate: float) -> None:
        """Tell the pool each miner's own hash rate, on its own channel (not the aggregate)."""
        if not self._writable():
            return
        rates = {channel_id: self.mining.channel_hash_rate(channel_id) for channel_id in self.session.channels}
        for message in self.session.update_channels(rates):
            self.sendMessage(message)

    def miner_opened(self, channel: Channel) -> None:
        """A local channel opened: its own upstream channel, with its miner's identity."""
        if self._writable():
            for message in self.session.open(channel.channel_id, channel.user_identity, channel.nominal_hash_rate):
                self.sendMessage(message)

    def miner_closed(self, channel_id: int) -> None:
        """A local channel closed: so does its upstream channel."""
        if self._writable():
            for message in self.session.close(channel_id):
                self.sendMessage(message)

    # -- actions ---------------------------------------------------------------------------

    def execute(self, actions: list[MinerAction]) -> None:
        """Carry out the map's actions, in order; nothing after the link starts closing."""
        for action in actions:
            if self.close_reason is not None:
                return
            if isinstance(action, SendMessage):
                self.sendMessage(action.message)
            elif isinstance(action, ForMiner):
                self._for_miner(action.channel_id, action.action)
            elif isinstance(action, MinerChannelClosed):
                log.warn(
                    "upstream {where}: no channel for local channel {channel_id} any more ({reason}); closing it",
                    where=self.where,
                    channel_id=action.channel_id,
                    reason=action.reason,
                )
                self.mining.close_miner_channel(action.channel_id, "upstream-channel-closed")
            elif isinstance(action, ConnectionReady):
                self._connection_ready()
            else:
                self._common_action(action)

    def _connection_ready(self) -> None:
        self._ready()
        log.info("upstream {where}: set up; one channel per miner", where=self.where)
        self.listener.channel_opened(self, self.session)
        # After the listener: a link probing a pool (fail-back) has no miners until it is chosen.
        if self.close_reason is not None:
            return
        for channel in self.mining.miner_channels():
            self.miner_opened(channel)

    def _for_miner(self, channel_id: int, action: object) -> None:
        if isinstance(action, NewWork):
            try:
                self.mining.new_channel_work(channel_id, action.work)
            except MiningJobError as e:
                log.warn(
                    "upstream {where}: job {job_id} for channel {channel_id} not given out: {error}",
                    where=self.where,
                    job_id=action.work.source_id,
                    channel_id=channel_id,
                    error=e,
                )
        elif isinstance(action, NewPrevHash):
            try:
                self.mining.new_channel_prev_hash(channel_id, action.job_id, action.prev)
            except MiningJobError as e:
                log.warn(
                    "upstream {where}: prev hash for job {job_id} of channel {channel_id} not applied: {error}",
                    where=self.where,
                    job_id=action.job_id,
                    channel_id=channel_id,
                    error=e,
                )
        elif isinstance(action, ChannelOpened):
            log.info(
                "upstream {where}: channel {upstream} open for local channel {channel_id}, extranonce prefix"
                " {prefix} + {size} bytes, difficulty {difficulty:.6g}",
                where=self.where,
                upstream=action.channel_id,
                channel_id=channel_id,
                prefix=action.extranonce_prefix.hex() or "(none)",
                size=action.extranonce_size,
                difficulty=target_to_difficulty(action.target),
            )
        elif isinstance(action, ExtranoncePrefixChanged):
            # The miner's own bytes stay: the new prefix goes into the coinbase of the next jobs.
            log.info(
                "upstream {where} changed the extranonce prefix of local channel {channel_id} to {prefix}",
                where=self.where,
                channel_id=channel_id,
                prefix=action.extranonce_prefix.hex(),
            )
        else:
            self._common_action(action)

    def _not_ready(self) -> str:
        return "not set up"

    def _waiting_for(self) -> str:
        return self.session.phase.value
