"""LineBuffer: the same lines whatever the chunking, and the length limit enforced."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.errors import ProtocolError
from sv2proxy.sv1 import MAX_LINE_LENGTH, LineBuffer, LineTooLong

_lines = st.lists(st.binary(max_size=60).filter(lambda b: b"\n" not in b), max_size=10)


def expected_lines(lines: list[bytes]) -> list[bytes]:
    """What LineBuffer promises: one trailing CR dropped, blank lines skipped."""
    stripped = [line.removesuffix(b"\r") for line in lines]
    return [line for line in stripped if line.strip()]


@given(_lines, st.data())
def test_any_chunking_gives_the_same_lines(lines: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    buffer = LineBuffer()
    got: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got.extend(buffer.feed(stream[start:end]))
    assert got == expected_lines(lines)
    assert buffer.feed(b"") == []


def test_partial_line_is_kept_until_its_newline() -> None:
    buffer = LineBuffer()
    assert buffer.feed(b'{"id":1,') == []
    assert buffer.feed(b'"method":"mining.subscribe"}\r\n{"id"') == [b'{"id":1,"method":"mining.subscribe"}']
    assert buffer.feed(b":2}\n") == [b'{"id":2}']


def test_blank_and_crlf_lines() -> None:
    assert LineBuffer().feed(b"\n\r\n  \r\na\r\nb\n\n") == [b"a", b"b"]


def test_line_of_exactly_the_limit_passes() -> None:
    buffer = LineBuffer(max_length=10)
    assert buffer.feed(b"x" * 10) == []
    assert buffer.feed(b"\n") == [b"x" * 10]


def test_partial_line_over_the_limit_raises() -> None:
    buffer = LineBuffer(max_length=10)
    buffer.feed(b"x" * 6)
    with pytest.raises(LineTooLong):
        buffer.feed(b"x" * 5)


def test_complete_line_over_the_limit_raises() -> None:
    with pytest.raises(LineTooLong):
        LineBuffer(max_length=10).feed(b"ok\n" + b"x" * 11 + b"\nok\n")


def test_default_limit_is_16_kib() -> None:
    buffer = LineBuffer()
    assert buffer.feed(b"x" * MAX_LINE_LENGTH) == []
    with pytest.raises(LineTooLong) as caught:
        buffer.feed(b"x")
    assert isinstance(caught.value, ProtocolError)


def test_trickled_bytes_are_checked_too() -> None:
    buffer = LineBuffer(max_length=100)
    with pytest.raises(LineTooLong):
        for _ in range(101):
            buffer.feed(b"x")


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LineBuffer(max_length=0)
