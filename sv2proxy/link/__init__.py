"""Stratum V2 links over Twisted: frames on a byte stream, optionally inside Noise.

Every SV2 endpoint -- the miner-facing server, an upstream pool client, a
Template Provider client -- is a :class:`FramedProtocol`.  Encryption comes by
composition: wrap its factory in :class:`NoiseServerFactory` or
:class:`NoiseClientFactory` and the protocol receives decrypted frames and
writes plaintext frames, unaware of the handshake.
"""

from sv2proxy.link.framed import FramedProtocol
from sv2proxy.link.noise import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    NoiseClientFactory,
    NoiseProtocol,
    NoiseServerFactory,
    ServerCredentials,
)

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "FramedProtocol",
    "NoiseClientFactory",
    "NoiseProtocol",
    "NoiseServerFactory",
    "ServerCredentials",
]
