"""Extranonce space: unique prefixes for every live channel (PROTOCOL.md §6 "extended extranonce").

The full extranonce in the coinbase is ``fixed ‖ local ‖ rollable``:

- ``fixed``: bytes we do not choose (an upstream pool's prefix in proxy mode; empty in pool mode);
- ``local``: ``local_size`` bytes we allocate, unique across every live channel of the process
  and never handed out again while their channel lives;
- ``rollable``: what the miner varies (extended channels).

A standard channel's prefix fills the whole extranonce (``local`` padded with zeros), so every
channel of a group has the same scriptSig length and the pool can compute its merkle root.
"""

from __future__ import annotations

from dataclasses import dataclass

from sv2proxy.codec.constants import MAX_EXTRANONCE_SIZE
from sv2proxy.errors import PoolError

ERROR_CAPACITY_EXHAUSTED = "channel-capacity-exhausted"


@dataclass(frozen=True, slots=True)
class ExtranonceLayout:
    """How the full extranonce is split; validated once, at configuration time."""

    total_size: int
    local_size: int
    fixed: bytes = b""

    def __post_init__(self) -> None:
        if not 0 < self.total_size <= MAX_EXTRANONCE_SIZE:
            raise ValueError(f"the extranonce is 1..{MAX_EXTRANONCE_SIZE} bytes, got {self.total_size}")
        if not 1 <= self.local_size <= 8:
            raise ValueError(f"the per-channel part is 1..8 bytes, got {self.local_size}")
        if len(self.fixed) + self.local_size > self.total_size:
            raise ValueError(
                f"a {len(self.fixed)}-byte fixed part and {self.local_size} per-channel bytes"
                f" leave no room in a {self.total_size}-byte extranonce"
            )

    @property
    def prefix_size(self) -> int:
        """Bytes of an extended channel's prefix (fixed ‖ local)."""
        return len(self.fixed) + self.local_size

    @property
    def rollable_size(self) -> int:
        """Bytes an extended channel's miner rolls."""
        return self.total_size - self.prefix_size


class ExtranonceAllocator:
    """Hands out the ``local`` part; freed values wait until every other value was used once.

    Values are issued in increasing order and a freed value is reused only after the counter
    wraps, so a prefix that just went away is the last one to come back (shares still in flight
    for a closed channel can never be credited to a new one).
    """

    def __init__(self, layout: ExtranonceLayout) -> None:
        self.layout = layout
        self.capacity = 1 << (8 * layout.local_size)
        self._live: set[int] = set()
        self._next = 0

    @property
    def live(self) -> int:
        """How many prefixes are in use."""
        return len(self._live)

    def allocate(self) -> int:
        """A local value no live channel holds; PoolError with the spec-style code when full."""
        if len(self._live) >= self.capacity:
            raise PoolError(
                f"all {self.capacity} channel prefixes are in use; close channels or configure a"
                f" larger per-channel extranonce part ({ERROR_CAPACITY_EXHAUSTED})"
            )
        value = self._next
        while value in self._live:
            value = (value + 1) % self.capacity
        self._live.add(value)
        self._next = (value + 1) % self.capacity
        return value

    def release(self, value: int) -> None:
        """Give a value back when its channel closes."""
        self._live.discard(value)

    def extended_prefix(self, value: int) -> bytes:
        """The prefix of an extended channel: fixed ‖ local (big-endian, so prefixes sort)."""
        return self.layout.fixed + value.to_bytes(self.layout.local_size, "big")

    def standard_prefix(self, value: int) -> bytes:
        """The prefix of a standard channel: the whole extranonce, rollable part zeroed."""
        return self.prefix(value, 0)

    def prefix(self, value: int, rollable_size: int) -> bytes:
        """The prefix of a channel whose miner rolls ``rollable_size`` bytes.

        fixed ‖ local, zero-padded so that prefix and rolled bytes fill the whole extranonce
        (a Stratum V1 miner rolls exactly its extranonce2 size, a standard channel nothing).
        """
        size = self.layout.total_size - rollable_size
        if rollable_size < 0 or size < self.layout.prefix_size:
            raise ValueError(
                f"{rollable_size} rollable bytes do not fit a {self.layout.total_size}-byte extranonce"
                f" after a {self.layout.prefix_size}-byte prefix"
            )
        return self.extended_prefix(value).ljust(size, b"\0")

    def rebase(self, layout: ExtranonceLayout) -> None:
        """Move to a new fixed part and total size (a new upstream); live values stay live."""
        if layout.local_size != self.layout.local_size:
            raise ValueError(
                f"the per-channel part cannot change size while channels live ({self.layout.local_size}"
                f" -> {layout.local_size} bytes)"
            )
        self.layout = layout
