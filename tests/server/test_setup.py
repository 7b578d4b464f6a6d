"""SetupConnection negotiation: every answer and its spec error code."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.codec import SetupConnection, SetupConnectionError, SetupConnectionSuccess
from sv2proxy.server.setup import SUPPORTED_MINING_FLAGS, negotiate_mining_setup


def request(protocol=0, low=2, high=2, flags=0):
    return SetupConnection(protocol, low, high, flags, "h", 1, "v", "hw", "fw", "id")


@pytest.mark.parametrize(
    ("req", "answer"),
    [
        (request(), SetupConnectionSuccess(2, 0)),
        (request(flags=0b001), SetupConnectionSuccess(2, 0)),  # standard jobs only: fine
        (request(flags=0b100), SetupConnectionSuccess(2, 0)),  # version rolling: fine
        (request(low=1, high=3), SetupConnectionSuccess(2, 0)),
        (request(protocol=1), SetupConnectionError(0, "unsupported-protocol")),
        (request(protocol=2), SetupConnectionError(0, "unsupported-protocol")),
        (request(low=3, high=4), SetupConnectionError(0, "protocol-version-mismatch")),
        (request(low=1, high=1), SetupConnectionError(0, "protocol-version-mismatch")),
        (request(flags=0b010), SetupConnectionError(0b010, "unsupported-feature-flags")),
        (request(flags=0b110 | 1 << 31), SetupConnectionError(0b010 | 1 << 31, "unsupported-feature-flags")),
    ],
)
def test_negotiation(req, answer):
    assert negotiate_mining_setup(req) == answer


@given(st.integers(0, 2**32 - 1))
def test_error_flags_are_exactly_the_unsupported_ones(flags):
    answer = negotiate_mining_setup(request(flags=flags))
    if flags & ~SUPPORTED_MINING_FLAGS:
        assert isinstance(answer, SetupConnectionError)
        assert answer.flags == flags & ~SUPPORTED_MINING_FLAGS
    else:
        assert answer == SetupConnectionSuccess(2, 0)


@pytest.mark.parametrize("text", ["a\u0000b", "\u001b[2J", "line\nbreak", "\u007f"])
def test_control_characters_in_the_text_fields_are_only_text(text):
    """vendor, hardware_version, firmware and device_id are logged (repr'd), never stored or
    checked: a NUL in them decodes and is answered like any other name."""
    sent = SetupConnection(0, 2, 2, 0, text, 1, text, text, text, text)
    received = SetupConnection.decode(sent.encode())
    assert received == sent
    assert negotiate_mining_setup(received) == SetupConnectionSuccess(2, 0)
