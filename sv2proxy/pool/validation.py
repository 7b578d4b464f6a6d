"""Share validation, the pool's hot path (PROTOCOL.md §4 error codes, §6 "header & share check").

Checks run in the order the spec's error codes imply: job, extranonce size, version, ntime,
then the header hash: duplicate, network target, job target.  The network target is checked
before the job's target so that a block is never refused because the channel's target was
harder than the network's (regtest, or a miner asking for a high difficulty).

Per share this hashes the coinbase tail (extended channels; the SHA256 state of the coinbase
head is kept per job), walks the merkle path, and hashes the 80-byte header: nothing else is
computed or allocated beyond the result.
"""

from __future__ import annotations

import struct
from hashlib import sha256

from sv2proxy.codec.constants import (
    ERROR_BAD_EXTRANONCE_SIZE,
    ERROR_DIFFICULTY_TOO_LOW,
    ERROR_DUPLICATE_SHARE,
    ERROR_INVALID_JOB_ID,
    ERROR_INVALID_NON_ROLLABLE_VERSION_BIT,
    ERROR_INVALID_SHARE,
    ERROR_STALE_SHARE,
    ERROR_VERSION_ROLLING_NOT_ALLOWED,
    VERSION_ROLLING_MASK,
)
from sv2proxy.pool.channel import Channel
from sv2proxy.pool.jobs import STALE, ChannelJob

#: How far ahead of our clock a share's ntime may be: Bitcoin's own limit for block times.
MAX_FUTURE_NTIME = 2 * 60 * 60

_HEADER = struct.Struct("<I32s32sIII")
_NON_ROLLABLE = ~VERSION_ROLLING_MASK & 0xFFFFFFFF


class ShareResult:
    """What validation concluded; ``error_code`` None means accepted."""

    __slots__ = ("error_code", "hash", "is_block", "job")

    def __init__(
        self, error_code: str | None, job: ChannelJob | None = None, share_hash: bytes = b"", is_block: bool = False
    ) -> None:
        self.error_code = error_code
        self.job = job
        self.hash = share_hash
        self.is_block = is_block

    @property
    def accepted(self) -> bool:
        return self.error_code is None

    def __repr__(self) -> str:
        return f"ShareResult({self.error_code or 'accepted'}, block={self.is_block})"


def validate_share(
    channel: Channel,
    job_id: int,
    nonce: int,
    ntime: int,
    version: int,
    extranonce: bytes | None,
    now: float,
) -> ShareResult:
    """Judge one share for ``channel``; ``extranonce`` is None for a standard channel's share."""
    job = channel.jobs.lookup(job_id)
    if not isinstance(job, ChannelJob):
        return ShareResult(ERROR_STALE_SHARE if job is STALE else ERROR_INVALID_JOB_ID)

    merkle_root = job.merkle_root
    if merkle_root is None:
        # Extended: the miner's extranonce completes the coinbase.
        if extranonce is None or len(extranonce) != channel.rollable_size:
            return ShareResult(ERROR_BAD_EXTRANONCE_SIZE, job)
        head = job.coinbase_head.copy()  # type: ignore[union-attr]
        head.update(extranonce)
        head.update(job.work.coinbase_suffix)
        root = sha256(head.digest()).digest()
        for node in job.work.merkle_path:
            root = sha256(sha256(root + node).digest()).digest()
        merkle_root = root
    elif extranonce:
        return ShareResult(ERROR_BAD_EXTRANONCE_SIZE, job)

    job_version = job.work.version
    if version != job_version:
        if not job.work.version_rolling_allowed:
            return ShareResult(ERROR_VERSION_ROLLING_NOT_ALLOWED, job)
        if (version ^ job_version) & _NON_ROLLABLE:
            return ShareResult(ERROR_INVALID_NON_ROLLABLE_VERSION_BIT, job)

    prev = job.prev
    assert prev is not None  # lookup only returns jobs that were bound to a prev hash
    if ntime < prev.min_ntime or ntime > now + MAX_FUTURE_NTIME:
        return ShareResult(ERROR_INVALID_SHARE, job)

    header = _HEADER.pack(version, prev.prev_hash, merkle_root, ntime, prev.nbits, nonce)
    share_hash = sha256(sha256(header).digest()).digest()
    if not channel.remember(share_hash):
        return ShareResult(ERROR_DUPLICATE_SHARE, job, share_hash)
    value = int.from_bytes(share_hash, "little")
    if value <= job.network_target:
        return ShareResult(None, job, share_hash, is_block=True)
    if value > job.target:
        # A share that misses the target was never credited: forget it, so the same header
        # is answered difficulty-too-low again rather than duplicate-share.
        del channel.seen[share_hash]
        return ShareResult(ERROR_DIFFICULTY_TOO_LOW, job, share_hash)
    return ShareResult(None, job, share_hash)
