"""The Host, Origin and reconnect-target checks, as plain functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.web.hosts import is_loopback_host, is_loopback_origin, is_reconnect_host, is_same_origin


@pytest.mark.parametrize(
    "host",
    [b"localhost", b"localhost:8080", b"LOCALHOST", b"localhost.", b"127.0.0.1", b"127.0.0.1:8080", b"127.1.2.3:1",
     b"[::1]", b"[::1]:8080", "127.0.0.1"],
)
def test_loopback_hosts(host: bytes | str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [
        None,
        b"",
        b"attacker.example",  # DNS rebinding: the page's own name
        b"attacker.example:8080",
        b"localhost.attacker.example",
        b"evil.localhost",
        b"127.0.0.1.nip.io",
        b"10.0.0.1",
        b"0.0.0.0",
        b"::1",  # an IPv6 literal in Host is bracketed
        b"[::1",
        b"[::1]x",
        b"[fe80::1%lo]",
        b"127.0.0.1:",
        b"127.0.0.1:80x",
        b"localhost:8080:1",
        b"2130706433",  # 127.0.0.1 as one number
        b"127.1",
        b"\xff",
    ],
)
def test_other_hosts(host: bytes | None) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize(
    ("origin", "loopback"),
    [
        (b"http://localhost:8080", True),
        (b"https://127.0.0.1", True),
        (b"http://[::1]:9000", True),
        (b"null", False),
        (b"http://attacker.example", False),
        (b"http://attacker.example:8080", False),
        (b"file://localhost", False),
        (b"http://localhost:8080/path", False),
        (b"http://user@localhost:8080", False),
        (b"", False),
    ],
)
def test_loopback_origins(origin: bytes, loopback: bool) -> None:
    assert is_loopback_origin(origin) is loopback


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        (b"https://pool.example", b"pool.example", True),
        (b"https://pool.example", b"pool.example:443", True),
        (b"http://pool.example:8080", b"pool.example:8080", True),
        (b"HTTPS://Pool.Example", b"pool.example", True),
        (b"https://pool.example", b"pool.example:8080", False),
        (b"https://other.example", b"pool.example", False),
        (b"null", b"pool.example", False),
        (b"https://pool.example", None, False),
    ],
)
def test_same_origin(origin: bytes, host: bytes | None, same: bool) -> None:
    assert is_same_origin(origin, host) is same


@pytest.mark.parametrize(
    "host",
    ["", "backup.example", "backup.example.", "pool-2.example.com", "a" * 63 + ".example", "1.2.3.4", "::1",
     "2001:db8::1", "localhost", "3com.example"],
)
def test_reconnect_hosts(host: str) -> None:
    assert is_reconnect_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "http://evil.example",
        "evil.example:3333",
        "evil.example/path",
        "[2001:db8::1]",
        "fe80::1%eth0",
        "two words.example",
        " backup.example",
        "backup.example\n",
        "back\x00up.example",
        "-lead.example",
        "trail-.example",
        "a..b",
        ".",
        "a" * 64 + ".example",
        ".".join(["a" * 63] * 4) + ".ab",  # 256 bytes
        "ünïcode.example",  # must come as punycode
        "1.2.3.999",
        "under_score.example",
    ],
)
def test_refused_reconnect_hosts(host: str) -> None:
    assert not is_reconnect_host(host)


@given(st.text(max_size=300))
def test_a_reconnect_host_is_plain_ascii_without_separators(host: str) -> None:
    if is_reconnect_host(host):
        assert host.isascii() and len(host) <= 255
        assert not any(c.isspace() or ord(c) < 0x20 or c in "/@[]%" for c in host)
