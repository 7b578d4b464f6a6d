"""The pool core: channels, extranonce space, jobs, share validation, vardiff, accounting.

Plain synchronous logic (DESIGN.md "Deferreds at the edges, plain functions in the middle"):
time comes in as ``now`` values; nothing here touches the network or the reactor.
"""

from sv2proxy.pool.api import StratumV2Pool

__all__ = ["StratumV2Pool"]
