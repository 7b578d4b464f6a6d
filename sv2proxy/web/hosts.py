"""Host names the web side judges: ``Host`` and ``Origin`` headers, and where miners may be sent.

Pure functions, no Twisted.  Without a ``web.token`` the API is meant for this machine only;
binding to loopback is not enough for that, because a web page can reach loopback through
the browser (DNS rebinding makes ``attacker.example`` resolve to 127.0.0.1, and the page is
then same-origin with the daemon).  Such a request still names the attacker's host in its
``Host`` header, so only loopback names are served: ``localhost``, 127.0.0.0/8 literals
and ``[::1]``, each with or without a port (RFC 9110 §7.2 for Host, RFC 6454 for Origin).
A reconnect target is an IP literal or an RFC 1123 host name (§2.1), never a URL.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

#: The longest host a Reconnect can carry (STR0_255).
MAX_HOST_BYTES = 255
#: The longest DNS name in text, without its trailing dot (RFC 1035 §2.3.4: 255 octets on the wire).
MAX_NAME_CHARS = 253

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")


def _split_authority(authority: str) -> tuple[str, str | None] | None:
    """``host[:port]`` or ``[v6][:port]`` as (host, port text); None if it is neither."""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return None
        host, rest = authority[1:end], authority[end + 1 :]
        if not rest:
            return host, None
        if not rest.startswith(":"):
            return None
        return host, rest[1:]
    host, colon, port = authority.partition(":")
    return host, port if colon else None


def is_loopback_host(header: bytes | str | None) -> bool:
    """Whether a ``Host`` header (or an Origin's authority) names this machine's loopback."""
    if header is None:
        return False
    try:
        text = header.decode("ascii") if isinstance(header, bytes) else header
    except UnicodeDecodeError:
        return False
    split = _split_authority(text.strip().lower())
    if split is None:
        return False
    host, port = split
    if port is not None and not _PORT.match(port):
        return False
    if host in ("localhost", "localhost."):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback and "%" not in host


def _origin_authority(origin: bytes | str) -> str | None:
    """The ``host[:port]`` of a serialized origin (``scheme://host[:port]``), or None."""
    try:
        text = origin.decode("ascii") if isinstance(origin, bytes) else origin
    except UnicodeDecodeError:
        return None
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or parts.path or parts.query or parts.fragment:
        return None
    if not parts.netloc or "@" in parts.netloc:
        return None
    return parts.netloc.lower()


def is_loopback_origin(origin: bytes | str) -> bool:
    """Whether an ``Origin`` header is a page served from loopback (``null`` is not)."""
    authority = _origin_authority(origin)
    return authority is not None and is_loopback_host(authority)


def _default_port(scheme: str) -> str:
    return "443" if scheme == "https" else "80"


def is_same_origin(origin: bytes | str, host: bytes | None) -> bool:
    """Whether ``origin`` is a page of the site the ``Host`` header names (a proxy's name too)."""
    authority = _origin_authority(origin)
    if authority is None or host is None:
        return False
    try:
        host_text = host.decode("ascii").strip().lower()
    except UnicodeDecodeError:
        return False
    theirs, ours = _split_authority(authority), _split_authority(host_text)
    if theirs is None or ours is None or theirs[0] != ours[0]:
        return False
    if theirs[1] == ours[1]:
        return True
    # "https://pool.example" and "Host: pool.example:443" are one origin.
    scheme = urlsplit(origin.decode("ascii") if isinstance(origin, bytes) else origin).scheme.lower()
    return (theirs[1] or _default_port(scheme)) == (ours[1] or _default_port(scheme))


def is_reconnect_host(host: str) -> bool:
    """Whether miners may be sent to ``host``: empty (here), an IP literal, or an RFC 1123 name.

    Never a URL, a ``host:port`` (the port travels apart), or text with spaces or control
    characters: Stratum V1 firmware pastes the host into its own connection strings.
    """
    if host == "":
        return True
    if len(host.encode()) > MAX_HOST_BYTES:
        return False
    if _is_ip(host):
        return "%" not in host  # a zone id means nothing on the miner's machine
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > MAX_NAME_CHARS:
        return False
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return False
    # RFC 1123 §2.1: a name is never all-numeric at the top (that is a malformed address).
    return not labels[-1].isdigit()


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
