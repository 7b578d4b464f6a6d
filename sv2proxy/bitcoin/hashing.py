"""SHA256d and merkle roots, in raw (internal) byte order (PROTOCOL.md §6).

Hashes here are the raw 32-byte SHA256d output, which is what block headers
and Stratum V2 messages carry; explorers show the bytes reversed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256


def sha256d(data: bytes) -> bytes:
    """SHA256(SHA256(data)), the raw 32-byte digest (txids, block hashes, merkle nodes)."""
    return sha256(sha256(data).digest()).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The merkle root of ``leaves`` in block order (Bitcoin Core's ComputeMerkleRoot).

    A level with an odd count pairs its last node with itself, so one leaf is its own root.
    The block's tree hangs off txids with the coinbase first; the BIP141 witness tree off
    wtxids with 32 zero bytes standing for the coinbase.
    """
    if not leaves:
        raise ValueError("a merkle tree needs at least one leaf")
    level = list(leaves)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def merkle_root_from_path(leaf: bytes, path: Iterable[bytes]) -> bytes:
    """The root reached from the coinbase txid ``leaf`` through ``path`` (deepest node first).

    The coinbase is always the leftmost leaf, so every step hashes ``current || node``.
    """
    root = leaf
    for node in path:
        root = sha256(sha256(root + node).digest()).digest()
    return root


def merkle_path(txids: Sequence[bytes]) -> list[bytes]:
    """The path from the (absent) coinbase to the root, given the other txids in block order.

    Deepest first, coinbase excluded, as NewTemplate/NewExtendedMiningJob carry it.  At each
    depth the node beside the coinbase side is the path's next step; the nodes right of it
    pair up (the last with itself when they are odd in number) into the next level.
    """
    path: list[bytes] = []
    level = list(txids)  # the nodes right of the coinbase side at the current depth
    while level:
        path.append(level[0])
        rest = level[1:]
        if len(rest) % 2:
            rest.append(rest[-1])
        level = [sha256d(rest[i] + rest[i + 1]) for i in range(0, len(rest), 2)]
    return path


def display_hex(raw: bytes) -> str:
    """The hex an explorer shows for a raw hash (byte-reversed)."""
    return raw[::-1].hex()
