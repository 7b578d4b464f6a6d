"""The miner-facing side: SetupConnection negotiation, the miner protocol, the listener."""
