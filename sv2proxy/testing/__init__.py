"""Importable test peers, used by the tests, the benchmarks and the demo configuration.

:class:`RegtestNode` (a regtest Bitcoin node on libbitcoinkernel, serving Bitcoin Core's
JSON-RPC) needs the ``demo`` extra (py-bitcoinkernel); it is imported on first use so that the
other peers here work without it, as is :class:`AuxNode` (an AuxPoW chain serving Namecoin
Core's merge-mining RPC), which shares its JSON-RPC server.  :class:`MiningDevice` is a CPU miner
speaking Stratum V2, :class:`Sv1MiningDevice` one speaking Stratum V1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sv2proxy.testing.device import DeviceStats, MiningDevice, MiningDeviceFactory
from sv2proxy.testing.sv1_device import Sv1MiningDevice, Sv1MiningDeviceFactory

if TYPE_CHECKING:
    from sv2proxy.testing.aux_node import AuxNode
    from sv2proxy.testing.regtest import RegtestNode

__all__ = [
    "AuxNode",
    "DeviceStats",
    "MiningDevice",
    "MiningDeviceFactory",
    "RegtestNode",
    "Sv1MiningDevice",
    "Sv1MiningDeviceFactory",
]


def __getattr__(name: str) -> Any:
    if name == "RegtestNode":
        from sv2proxy.testing.regtest import RegtestNode

        return RegtestNode
    if name == "AuxNode":
        from sv2proxy.testing.aux_node import AuxNode

        return AuxNode
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
