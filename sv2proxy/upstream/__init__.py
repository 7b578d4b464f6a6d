"""Proxy mode's clients of remote pools (DESIGN.md "upstream/"; PROTOCOL.md §4-6, §8).

- :mod:`.session`: :class:`UpstreamSession`, one Stratum V2 upstream connection as a sans-IO
  state machine (setup, the one aggregated extended channel, jobs, share forwarding)
- :mod:`.client`: :class:`UpstreamProtocol`, the thin Protocol that feeds a session and carries
  out its actions on the mining service
- :mod:`.service`: :class:`UpstreamService`, the ordered list of pools with failover, backoff,
  Noise pinned to each pool's authority key, and the events of SEED-API.md
"""

from sv2proxy.upstream.client import UpstreamProtocol
from sv2proxy.upstream.service import UpstreamService
from sv2proxy.upstream.session import UpstreamSession

__all__ = ["UpstreamProtocol", "UpstreamService", "UpstreamSession"]
