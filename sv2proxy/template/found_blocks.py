"""Found blocks on disk, so none is lost (DESIGN.md "Data the system must never lose").

A block is written to ``<data_dir>/blocks/pending/<hash>.hex`` (write, fsync, rename) before it
is submitted, and moved to ``accepted/`` or ``rejected/`` once the node has answered.  After a
restart everything still pending is submitted again.  Found blocks are rare, so the few
milliseconds of a synchronous fsync on the reactor thread buy a simple, certain ordering.

A block whose template's transactions are not known (a Template Provider's template before
RequestTransactionData.Success, PROTOCOL.md §7) cannot be written whole: what is known of it,
its header and coinbase, goes to ``pending/<hash>.incomplete.json`` instead, never to a
``.hex`` file a node would refuse.  Writing the whole block later removes that file.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The suffix of a block known only by its header and coinbase.
INCOMPLETE_SUFFIX = ".incomplete.json"


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
        """Make the whole block durable; returns its file.  Raises OSError if the disk refuses.

        A file of the same block's header and coinbase alone (:meth:`save_incomplete`) goes.
        """
        final = self._write(f"{block_hash}.hex", block_hex)
        (self.pending_dir / f"{block_hash}{INCOMPLETE_SUFFIX}").unlink(missing_ok=True)
        return final

    def save_incomplete(self, block_hash: str, text: str) -> Path:
        """Make durable what is known of a block that cannot be written whole (``text``, JSON:
        its header and coinbase and why the rest is missing); returns its file."""
        return self._write(f"{block_hash}{INCOMPLETE_SUFFIX}", text)

    def _write(self, name: str, text: str) -> Path:
        self.prepare()
        final = self.pending_dir / name
        temporary = final.with_name(name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            data = memoryview(text.encode("ascii"))
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

    def incomplete(self) -> list[Path]:
        """The files of pending blocks known only by their header and coinbase, oldest first."""
        if not self.pending_dir.is_dir():
            return []
        return sorted(self.pending_dir.glob(f"*{INCOMPLETE_SUFFIX}"), key=lambda path: path.stat().st_mtime)

    def settle(self, block_hash: str, accepted: bool, reason: str = "") -> None:
        """Move a block (whole, or its header and coinbase) out of pending once the node has answered."""
        target_dir = self.accepted_dir if accepted else self.rejected_dir
        target_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in (f"{block_hash}.hex", f"{block_hash}{INCOMPLETE_SUFFIX}"):
            source = self.pending_dir / name
            if source.exists():
                os.replace(source, target_dir / name)
        if (target_dir / f"{block_hash}.hex").exists():
            # The whole block, written after its header and coinbase were settled, supersedes them.
            (target_dir / f"{block_hash}{INCOMPLETE_SUFFIX}").unlink(missing_ok=True)
        if reason:
            (target_dir / f"{block_hash}.reason").write_text(reason + "\n")
