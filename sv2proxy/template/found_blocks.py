"""Found blocks on disk, so none is lost (DESIGN.md "Data the system must never lose").

A block is written to ``<data_dir>/blocks/pending/<hash>.hex`` (write, fsync, rename) before it
is submitted, and moved to ``accepted/`` or ``rejected/`` once the node has answered.  After a
restart everything still pending is submitted again.  Found blocks are rare, so the few
milliseconds of a synchronous fsync on the reactor thread buy a simple, certain ordering.
"""

from __future__ import annotations

import os
from pathlib import Path


class FoundBlockJournal:
    """The directory of found blocks and their fate."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pending_dir = directory / "pending"
        self.accepted_dir = directory / "accepted"
        self.rejected_dir = directory / "rejected"

    def prepare(self) -> None:
        for path in (self.pending_dir, self.accepted_dir, self.rejected_dir):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def save(self, block_hash: str, block_hex: str) -> Path:
        """Make the block durable; returns its file.  Raises OSError if the disk refuses."""
        self.prepare()
        final = self.pending_dir / f"{block_hash}.hex"
        temporary = final.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            data = memoryview(block_hex.encode("ascii"))
            while data:  # os.write may write less than asked (a disk filling up)
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, final)
        directory = os.open(self.pending_dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return final

    def pending(self) -> list[tuple[str, str]]:
        """``(hash, block hex)`` of every block not yet answered by a node, oldest first."""
        if not self.pending_dir.is_dir():
            return []
        files = sorted(self.pending_dir.glob("*.hex"), key=lambda path: path.stat().st_mtime)
        return [(path.stem, path.read_text().strip()) for path in files]

    def settle(self, block_hash: str, accepted: bool, reason: str = "") -> None:
        """Move a block out of pending once the node has answered."""
        source = self.pending_dir / f"{block_hash}.hex"
        target_dir = self.accepted_dir if accepted else self.rejected_dir
        target_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if source.exists():
            os.replace(source, target_dir / source.name)
        if reason:
            (target_dir / f"{block_hash}.reason").write_text(reason + "\n")
