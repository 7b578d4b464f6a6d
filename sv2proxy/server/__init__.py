"""The miner-facing side: SetupConnection negotiation, the miner protocol, the listener."""

from sv2proxy.server.api import StratumV2Server

__all__ = ["StratumV2Server"]
