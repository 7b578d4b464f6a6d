"""Newline framing for Stratum V1 (one JSON object per ``\\n``-terminated line).

A peer that never sends a newline must not make us buffer without end, so the
limit applies to the partial line too (STYLE.md: limits are checked while
parsing).
"""

from __future__ import annotations

from sv2proxy.errors import ProtocolError
from sv2proxy.sv1.constants import MAX_LINE_LENGTH


class LineTooLong(ProtocolError):
    """A line (or the unfinished tail of one) exceeded the limit; close the connection."""


class LineBuffer:
    """Cuts a byte stream into lines, whatever the chunking.

    Returned lines have the ``\\n`` removed and one trailing ``\\r`` stripped
    (some firmwares send CRLF); lines holding only whitespace are skipped,
    since keep-alive blank lines are not errors.  The limit counts the bytes
    before the ``\\n``.
    """

    __slots__ = ("_buffer", "_max_length")

    def __init__(self, max_length: int = MAX_LINE_LENGTH) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be positive, got {max_length}")
        self._max_length = max_length
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The lines completed by ``data``; the unfinished rest is kept for the next call."""
        # Searching only the new chunk, and appending in place, keeps a peer that
        # trickles one byte at a time linear rather than quadratic.
        self._buffer += data
        if b"\n" not in data:
            self._check(len(self._buffer))
            return []
        pieces = self._buffer.split(b"\n")
        self._buffer = pieces.pop()
        lines: list[bytes] = []
        for piece in pieces:
            self._check(len(piece))
            if piece.endswith(b"\r"):
                piece = piece[:-1]
            if piece.strip():
                lines.append(bytes(piece))
        self._check(len(self._buffer))
        return lines

    def _check(self, length: int) -> None:
        if length > self._max_length:
            self._buffer = bytearray()
            raise LineTooLong(f"a Stratum V1 line exceeded {self._max_length} bytes")
