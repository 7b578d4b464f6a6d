"""The merged-mining commitment a parent coinbase scriptSig carries (44 bytes).

Layout, as Namecoin's ``CAuxPow::check`` reads it::

    fa be 6d 6d          the merged-mining header, "\\xfabemm" (pchMergedMiningHeader)
    root    32 bytes     the aux merkle root, BYTE-REVERSED: the raw SHA256d root read as a
                         uint256 and written most significant byte first (Namecoin reverses
                         the branch result "to correct endian" before searching the script)
    size    LE u32       the tree's leaf count, 2**(branch length)
    nonce   LE u32       the nonce the slots were chosen with

For a single chain the tree is its block hash alone, so the reversed root is exactly the bytes
of the hash as ``createauxblock`` prints it (display hex).  The whole commitment goes into the
scriptSig as one data push, once.  Pure code.
"""

from __future__ import annotations

from dataclasses import dataclass

MERGED_MINING_HEADER = b"\xfa\xbemm"
COMMITMENT_SIZE = len(MERGED_MINING_HEADER) + 32 + 4 + 4


@dataclass(frozen=True, slots=True)
class Commitment:
    """What a commitment says: the aux merkle root (raw order), the tree size and the nonce."""

    root: bytes
    size: int
    nonce: int

    def __post_init__(self) -> None:
        if len(self.root) != 32:
            raise ValueError("the aux merkle root must be 32 bytes")
        if not 1 <= self.size <= 0xFFFF_FFFF or self.size & (self.size - 1):
            raise ValueError(f"the aux tree size must be a power of two, got {self.size}")
        if not 0 <= self.nonce <= 0xFFFF_FFFF:
            raise ValueError(f"the nonce is a 32-bit unsigned integer, got {self.nonce}")

    def serialize(self) -> bytes:
        """header ‖ root reversed ‖ size LE4 ‖ nonce LE4."""
        return b"".join(
            (
                MERGED_MINING_HEADER,
                self.root[::-1],
                self.size.to_bytes(4, "little"),
                self.nonce.to_bytes(4, "little"),
            )
        )

    @classmethod
    def find(cls, script_sig: bytes) -> Commitment:
        """The one commitment in ``script_sig``; ValueError if there is none, or more than one
        merged-mining header, or too few bytes after it."""
        start = script_sig.find(MERGED_MINING_HEADER)
        if start < 0:
            raise ValueError("no merged-mining header in the scriptSig")
        if script_sig.find(MERGED_MINING_HEADER, start + 1) >= 0:
            raise ValueError("more than one merged-mining header in the scriptSig")
        body = script_sig[start + len(MERGED_MINING_HEADER) : start + COMMITMENT_SIZE]
        if len(body) != COMMITMENT_SIZE - len(MERGED_MINING_HEADER):
            raise ValueError("the commitment is cut short")
        return cls(
            root=body[:32][::-1],
            size=int.from_bytes(body[32:36], "little"),
            nonce=int.from_bytes(body[36:40], "little"),
        )
