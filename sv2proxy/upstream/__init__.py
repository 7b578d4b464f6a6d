"""Proxy mode's clients of remote pools (DESIGN.md "upstream/"; PROTOCOL.md §4-6, §8).

- :mod:`.session`: :class:`UpstreamSession`, one Stratum V2 upstream connection as a sans-IO
  state machine (setup, the one aggregated extended channel, jobs, share forwarding)
- :mod:`.sv1_session`: :class:`Sv1UpstreamSession`, the same for a Stratum V1 pool (configure,
  subscribe, authorize, notify/submit; V1 job ids mapped to our integer ones)
- :mod:`.link`: :class:`~sv2proxy.upstream.link.UpstreamLink`, what both Protocols share:
  deadlines, closing, handing work to the mining service
- :mod:`.client`: :class:`UpstreamProtocol`, the thin Protocol that feeds a V2 session and
  carries out its actions on the mining service; :mod:`.sv1_client`:
  :class:`Sv1UpstreamProtocol`, its V1 sibling
- :mod:`.miner_channels`: :class:`~sv2proxy.upstream.miner_channels.MinerChannels`, per-miner
  mode's sans-IO map of one upstream channel per local channel on one V2 connection;
  :mod:`.per_miner`: :class:`~sv2proxy.upstream.per_miner.PerMinerProtocol`, its Protocol
- :mod:`.service`: :class:`UpstreamService`, the ordered list of pools (V2 and V1 mixed) with
  failover, fail-back, backoff, Noise pinned to each V2 pool's authority key, and the events of
  SEED-API.md
"""

from sv2proxy.upstream.client import UpstreamProtocol
from sv2proxy.upstream.service import UpstreamService
from sv2proxy.upstream.session import UpstreamSession
from sv2proxy.upstream.sv1_client import Sv1UpstreamProtocol
from sv2proxy.upstream.sv1_session import Sv1UpstreamSession

__all__ = ["Sv1UpstreamProtocol", "Sv1UpstreamSession", "UpstreamProtocol", "UpstreamService", "UpstreamSession"]
