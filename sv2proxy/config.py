"""Configuration: YAML or TOML files parsed into frozen dataclasses (SEED-API.md "Configuration").

Every setting is declared exactly once, as a field of the dataclasses below made with
:func:`setting`: its default spelled as a file would spell it, the parser that turns file values
into the typed value, and one line of help that the command line reuses.  Adding a key is adding
one such line; the loader, the command-line overrides and :func:`describe` walk the dataclasses,
so they need no change.  Code below this module only ever sees the dataclasses, never a raw dict.

Every mistake is a :class:`~sv2proxy.errors.ConfigError` whose ``str()`` is one line naming where
the value came from (``FILE: dotted.key`` or the command-line option) and what was expected.
"""

from __future__ import annotations

import contextlib
import difflib
import enum
import ipaddress
import math
import re
import tomllib
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import yaml

from sv2proxy.errors import ConfigError
from sv2proxy.merge_mining.slot import plan_tree
from sv2proxy.noise.keys import decode_authority_public_key

T = TypeVar("T")

# -- how a setting is declared ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    """What a parser may need to know about where a value was written."""

    #: Relative paths are taken relative to this: the config file's directory for file values
    #: (so a daemon started from any directory reads the same files), the working directory for
    #: command-line values.
    base_dir: Path
    #: True for command-line values, which arrive as text whatever their type.
    from_text: bool = False


Parser = Callable[[object, _Context], Any]


@dataclass(frozen=True, slots=True)
class _Setting:
    default: object
    parse: Parser
    help: str
    secret: bool
    #: How :func:`describe` shows the value when not as is: a URL without its password.
    shown: Callable[[Any], str] | None = None


_SETTING = "sv2proxy.setting"
_SECTION = "sv2proxy.section"


def _default(spec: _Setting) -> object:
    # Defaults go through the same parser as file values, so the dataclass default and the same
    # text written in conf/sv2proxy.yaml cannot disagree (a test checks the file too).
    return spec.parse(spec.default, _Context(base_dir=Path.cwd()))


def setting(
    default: object, parse: Parser, help: str, *, secret: bool = False, shown: Callable[[Any], str] | None = None
) -> Any:
    """Declare one setting: its default as a file spells it, its parser and one line of help.

    ``secret=True`` keeps the value out of :func:`describe` (and so out of the logs); ``shown``
    says how describe shows a value that is partly secret (a URL that may carry a password).
    """
    spec = _Setting(default, parse, help, secret, shown)
    return field(default_factory=partial(_default, spec), metadata={_SETTING: spec})


def section(cls: type[T]) -> Any:
    """Declare a nested mapping of settings, parsed into ``cls``."""
    return field(default_factory=cls, metadata={_SECTION: cls})


# -- parsers: file value -> typed value; ValueError says what was expected ----------------------


def _number(value: object, ctx: _Context) -> float | int | None:
    if isinstance(value, bool):  # YAML's `yes` is a bool, and bool is an int subclass
        return None
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if ctx.from_text and isinstance(value, str):
        text = value.strip()
        with contextlib.suppress(ValueError):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def parse_positive_int(value: object, ctx: _Context) -> int:
    number = _number(value, ctx)
    if not isinstance(number, int) or number <= 0:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return number


def parse_positive_number(value: object, ctx: _Context) -> float:
    number = _number(value, ctx)
    if number is None or number <= 0:
        raise ValueError(f"expected a positive number, got {value!r}")
    return number


def parse_non_negative_number(value: object, ctx: _Context) -> float:
    number = _number(value, ctx)
    if number is None or number < 0:
        raise ValueError(f"expected a number >= 0, got {value!r}")
    return number


def parse_path(value: object, ctx: _Context) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a path, got {value!r}")
    try:
        result = Path(value.strip()).expanduser()
    except RuntimeError:
        raise ValueError(f"cannot expand '~' in {value!r} (no home directory)") from None
    return result if result.is_absolute() else ctx.base_dir / result


_NULL_WORDS = frozenset({"", "null", "none", "false", "off"})


def optional(parse: Callable[[object, _Context], T]) -> Callable[[object, _Context], T | None]:
    """``parse``, or None for null; TOML has no null, so ``false`` means "none" as well."""

    def parse_optional(value: object, ctx: _Context) -> T | None:
        if value is None or value is False:
            return None
        if ctx.from_text and isinstance(value, str) and value.strip().lower() in _NULL_WORDS:
            return None
        return parse(value, ctx)

    return parse_optional


class Mode(enum.StrEnum):
    """Where jobs come from: a local node (pool, including solo) or a remote pool (proxy)."""

    POOL = "pool"
    PROXY = "proxy"


def parse_mode(value: object, ctx: _Context) -> Mode:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return Mode(value)
    raise ValueError(f"expected 'pool' or 'proxy', got {value!r}")


# HOST is an IP literal or a DNS name; the name is resolved only when it is used.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _host(text: str) -> str | None:
    """``text`` as a host (IPv6 without brackets), or None if it is neither an IP nor a name."""
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(text))
    labels = text.rstrip(".").split(".")
    if len(text) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    if all(label.isdigit() for label in labels):  # 999.1.1.1 is a bad IP, not a name
        return None
    return text


def _port(text: str, lowest: int) -> int | None:
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if lowest <= number <= 65535 else None


def _split_host_port(text: str) -> tuple[str, str] | None:
    """``HOST:PORT`` or ``[V6]:PORT`` split in two (HOST may be empty); None if neither."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or text[close + 1 : close + 2] != ":":
            return None
        return text[1:close], text[close + 2 :]
    host, colon, port = text.rpartition(":")
    if not colon or ":" in host:  # a bare IPv6 address: which colon starts the port?
        return None
    return host, port


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where to accept connections: a Twisted server endpoint description, and the text given.

    ``endpoint`` is what ``twisted.internet.endpoints.serverFromString`` takes; ``text`` is what
    the operator wrote, for logs and error messages.
    """

    endpoint: str
    text: str


def _quote(argument: str) -> str:
    # Endpoint descriptions separate arguments with ':' (an IPv6 address needs escaping).
    return argument.replace("\\", "\\\\").replace(":", "\\:")


def _endpoint_arguments(description: str) -> tuple[list[str], dict[str, str]]:
    """The positional and keyword arguments of an endpoint description (after its type)."""
    parts: list[str] = [""]
    escaped = False
    for char in description:
        if escaped:
            parts[-1] += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            parts.append("")
        else:
            parts[-1] += char
    args: list[str] = []
    kwargs: dict[str, str] = {}
    for part in parts[1:]:
        key, equals, value = part.partition("=")
        if equals:
            kwargs[key] = value
        else:
            args.append(part)
    return args, kwargs


# The endpoint types an address may name, each with the keywords it takes and its usage; an
# unknown keyword would otherwise only fail when the listener starts.
_TCP_KEYWORDS = frozenset({"port", "interface", "backlog"})
_ENDPOINT_TYPES: Mapping[str, tuple[frozenset[str], str]] = MappingProxyType(
    {
        "tcp": (_TCP_KEYWORDS, "tcp:PORT[:interface=ADDRESS]"),
        "tcp6": (_TCP_KEYWORDS, "tcp6:PORT[:interface=ADDRESS]"),
        "ssl": (
            _TCP_KEYWORDS | {"privateKey", "certKey", "extraCertChain", "sslmethod", "dhParameters"},
            "ssl:PORT:privateKey=FILE[:certKey=FILE]",
        ),
        "unix": (frozenset({"address", "mode", "backlog", "lockfile"}), "unix:PATH"),
        "systemd": (frozenset({"domain", "index", "name"}), "systemd:domain=INET:index=N"),
    }
)


def _endpoint_address(text: str, kind: str) -> ListenAddress:
    keywords, usage = _ENDPOINT_TYPES[kind]
    args, kwargs = _endpoint_arguments(text)
    unknown = sorted(set(kwargs) - keywords)
    if unknown:
        raise ValueError(f"expected {usage} (no {unknown[0]!r} option), got {text!r}")
    if kind in ("tcp", "tcp6", "ssl"):
        port = args[0] if args else kwargs.get("port", "")
        if len(args) > 1 or _port(port, lowest=0) is None:
            raise ValueError(f"expected {usage} with a port in 0-65535, got {text!r}")
    elif kind == "unix":
        if not (args[:1] or [kwargs.get("address", "")])[0]:
            raise ValueError(f"expected {usage}, got {text!r}")
    elif "domain" not in kwargs or ("index" not in kwargs and "name" not in kwargs):
        raise ValueError(f"expected {usage}, got {text!r}")
    return ListenAddress(endpoint=text, text=text)


def parse_listen_address(value: object, ctx: _Context) -> ListenAddress:
    """``HOST:PORT``, ``[V6]:PORT``, ``:PORT`` (all interfaces) or a Twisted endpoint string."""
    if not isinstance(value, str):
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    text = value.strip()
    kind = text.partition(":")[0]
    if kind in _ENDPOINT_TYPES:
        return _endpoint_address(text, kind)
    split = _split_host_port(text)
    if split is None:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host_text, port_text = split
    port = _port(port_text, lowest=0)
    if port is None:
        raise ValueError(f"expected HOST:PORT with a port in 0-65535, got {value!r}")
    if not host_text:
        return ListenAddress(endpoint=f"tcp:{port}", text=text)
    host = _host(host_text)
    if host is None:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    kind = "tcp6" if ":" in host else "tcp"
    return ListenAddress(endpoint=f"{kind}:{port}:interface={_quote(host)}", text=text)


class PoolProtocol(enum.IntEnum):
    """The protocol an upstream pool speaks, by the scheme of its URL."""

    V1 = 1  # stratum+tcp://
    V2 = 2  # stratum2+tcp://, Noise-encrypted and pinned to the pool's authority key


_POOL_SCHEMES: Mapping[str, PoolProtocol] = MappingProxyType(
    {"stratum2+tcp": PoolProtocol.V2, "stratum+tcp": PoolProtocol.V1}
)
_POOL_URL_FORMS = "stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY or stratum+tcp://HOST:PORT"


@dataclass(frozen=True, slots=True)
class PoolUrl:
    """An upstream pool: where it is and, for Stratum V2, the authority key its Noise is pinned to.

    ``authority_key`` is the 32-byte x-only key (None for Stratum V1); ``text`` is the URL as
    written, for logs.
    """

    text: str
    protocol: PoolProtocol
    host: str
    port: int
    authority_key: bytes | None


def parse_pool_url(value: object, ctx: _Context) -> PoolUrl:
    if not isinstance(value, str):
        raise ValueError(f"expected {_POOL_URL_FORMS}, got {value!r}")
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        raise ValueError(f"expected {_POOL_URL_FORMS}, got {value!r}") from None
    protocol = _POOL_SCHEMES.get(parts.scheme.lower())
    if protocol is None or "://" not in text:
        raise ValueError(f"expected {_POOL_URL_FORMS}, got {value!r}")
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"expected {_POOL_URL_FORMS} (no user, query or fragment), got {value!r}")
    split = _split_host_port(parts.netloc)
    if split is None and ":" not in parts.netloc.rpartition("]")[2]:
        raise ValueError(f"expected {_POOL_URL_FORMS}, got {value!r} (no port)")
    host = _host(split[0]) if split else None
    if split is None or host is None:
        raise ValueError(f"expected {_POOL_URL_FORMS}, got {value!r}")
    port = _port(split[1], lowest=1)
    if port is None:
        raise ValueError(f"expected a port in 1-65535, got {split[1]!r} in {value!r}")
    key_text = parts.path.strip("/")
    if protocol is PoolProtocol.V1:
        if key_text:
            raise ValueError(f"expected stratum+tcp://HOST:PORT (no path), got {value!r}")
        return PoolUrl(text, protocol, host, port, None)
    if not key_text:
        raise ValueError(
            "expected stratum2+tcp://HOST:PORT/AUTHORITY_PUBKEY (the pool's authority public key"
            f" pins its Noise handshake), got {value!r}"
        )
    try:
        key = decode_authority_public_key(key_text)
    except ValueError as e:
        raise ValueError(f"invalid authority public key {key_text!r}: {e}") from None
    return PoolUrl(text, protocol, host, port, key)


# -- the schema ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListenConfig:
    """Where miners connect; an address equal to the other one means one port serves both."""

    sv2: ListenAddress | None = setting(
        "0.0.0.0:34254",
        optional(parse_listen_address),
        "where Stratum V2 miners connect; null disables",
    )
    sv1: ListenAddress | None = setting(
        None,
        optional(parse_listen_address),
        "where Stratum V1 miners connect; null disables; the sv2 address => one port for both",
    )

    @property
    def shared(self) -> bool:
        """True when SV1 and SV2 miners share one port (the protocol is told by the first bytes)."""
        if self.sv1 is None or self.sv2 is None:
            return False
        return self.sv1.endpoint == self.sv2.endpoint


@dataclass(frozen=True, slots=True)
class NoiseConfig:
    """The Noise NX responder: our authority key and the certificates it signs."""

    authority_key_file: Path | None = setting(
        None, optional(parse_path), "authority secret key file; null => DATA_DIR/authority.key"
    )
    certificate_validity: int = setting(3600, parse_positive_int, "seconds each signed certificate is valid")
    handshake_timeout: float = setting(
        10, parse_positive_number, "seconds a client has to complete the Noise handshake"
    )
    clock_leeway: float = setting(
        10, parse_non_negative_number, "seconds of clock skew tolerated on certificate validity"
    )


def parse_byte_count(low: int, high: int) -> Callable[[object, _Context], int]:
    """A parser for a whole number of bytes in ``low..high``."""

    def parse(value: object, ctx: _Context) -> int:
        number = _number(value, ctx)
        if not isinstance(number, int) or not low <= number <= high:
            raise ValueError(f"expected a whole number of bytes from {low} to {high}, got {value!r}")
        return number

    return parse


@dataclass(frozen=True, slots=True)
class MiningConfig:
    """Channels, difficulty and share acknowledgements for miners."""

    shares_per_minute: float = setting(
        6, parse_positive_number, "vardiff aims at this many shares per minute on each channel"
    )
    min_difficulty: float = setting(
        0.0001, parse_positive_number, "lowest difficulty vardiff sets (fractions allowed for small miners)"
    )
    max_difficulty: float | None = setting(
        None, optional(parse_positive_number), "highest difficulty vardiff sets; null: no limit"
    )
    share_batch_size: int = setting(
        10, parse_positive_int, "accepted shares acknowledged together by one SubmitShares.Success"
    )
    share_batch_window: float = setting(
        1, parse_positive_number, "seconds an accepted share waits at most for its SubmitShares.Success"
    )
    extranonce_size: int = setting(
        16, parse_byte_count(2, 32), "bytes of extranonce in the coinbase: channel prefix plus what miners roll"
    )
    channel_prefix_size: int = setting(
        4, parse_byte_count(1, 8), "bytes of the extranonce that tell channels apart (256**N live channels)"
    )
    max_channels_per_connection: int = setting(256, parse_positive_int, "channels one miner connection may open")
    keepalive_interval: float = setting(
        30, parse_non_negative_number, "seconds without new work before a fresh-ntime job is sent; 0: never"
    )
    max_messages_per_second: float = setting(
        200, parse_positive_number, "messages a miner connection may send per second (bursts of twice that)"
    )
    sv1_extranonce2_size: int = setting(
        4, parse_byte_count(2, 8), "bytes a Stratum V1 miner rolls (its extranonce2 size)"
    )


def parse_host_port(value: object, ctx: _Context) -> str:
    text = str(value).strip() if isinstance(value, str | int) else ""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return text


def parse_authority_key(value: object, ctx: _Context) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"expected a base58check authority public key, got {value!r}")
    try:
        return decode_authority_public_key(value)
    except ValueError as e:
        raise ValueError(f"{e}, got {value!r}") from None


CHAINS = ("main", "test", "testnet4", "signet", "regtest")
#: The demo's payout: a regtest address (BIP173's example key), so the defaults mine at once.
DEMO_PAYOUT = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


def parse_bool(value: object, ctx: _Context) -> bool:
    if isinstance(value, bool):
        return value
    if ctx.from_text and isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
        return value.lower() in ("true", "yes", "on")
    raise ValueError(f"expected true or false, got {value!r}")


def parse_chain(value: object, ctx: _Context) -> str:
    if value not in CHAINS:
        raise ValueError(f"expected one of {', '.join(CHAINS)}, got {value!r}")
    return str(value)


def parse_url(value: object, ctx: _Context) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
        raise ValueError(f"expected an http:// URL, got {value!r}")
    return value


#: What a log shows in place of a password.
MASK = "********"

#: libpq connection parameters that are secrets when a URL's query gives them.
_SECRET_QUERY_KEYS = frozenset({"password", "sslpassword"})


def redact_url(url: str) -> str:
    """``url`` as a log may show it: the password of its user info and of its query masked.

    Text surgery rather than :func:`urllib.parse.urlsplit`'s accessors, which raise on a port
    that is not a number or a libpq URL's list of hosts: a malformed URL is shown masked too.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, hosts = netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if at and colon:
        netloc = f"{user}:{MASK}@{hosts}"
    before_fragment, hash_, fragment = tail.partition("#")
    path, question, query = before_fragment.partition("?")
    if question:
        pieces = []
        for piece in query.split("&"):
            key, equals, _ = piece.partition("=")
            if equals and urllib.parse.unquote_plus(key).strip().lower() in _SECRET_QUERY_KEYS:
                piece = f"{key}={MASK}"
            pieces.append(piece)
        tail = f"{path}?{'&'.join(pieces)}{hash_}{fragment}"
    return f"{scheme}://{netloc}{tail}"


def parse_text(value: object, ctx: _Context) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value


def parse_payout(value: object, ctx: _Context) -> tuple[tuple[str, float], ...]:
    """``{ADDRESS: PERCENT, ...}``, or one ADDRESS for all of it; the addresses are checked
    against node.chain once the whole configuration is read."""
    if isinstance(value, str) and value.strip():
        return ((value.strip(), 100.0),)
    if not isinstance(value, dict) or not value:
        raise ValueError(f"expected an address or a mapping of address: percent, got {value!r}")
    payout = []
    for address, percent in value.items():
        number = _number(percent, ctx)
        if not isinstance(address, str) or number is None or number <= 0:
            raise ValueError(f"expected ADDRESS: PERCENT with a positive percent, got {address!r}: {percent!r}")
        payout.append((address, float(number)))
    total = sum(percent for _, percent in payout)
    if abs(total - 100) > 1e-9:
        raise ValueError(f"expected percentages that add up to 100, got {total:g}")
    return tuple(payout)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """The Bitcoin node pool mode takes its templates from and submits blocks to."""

    embedded: bool = setting(
        True, parse_bool, "run a demo regtest node inside the daemon (needs the demo extra); false in production"
    )
    rpc_url: str = setting(
        "http://127.0.0.1:8332", parse_url, "the node's JSON-RPC URL (unused when embedded)", shown=redact_url
    )
    chain: str = setting("regtest", parse_chain, "the node's chain: main, test, testnet4, signet or regtest")
    datadir: Path = setting("~/.bitcoin", parse_path, "the node's datadir, where its RPC cookie is")
    rpc_user: str | None = setting(None, optional(parse_text), "rpcuser; null: use the cookie")
    rpc_password: str | None = setting(None, optional(parse_text), "rpcpassword", secret=True)
    tip_poll_interval: float = setting(
        1, parse_positive_number, "seconds between checks of the node's best block beside longpoll"
    )
    template_provider: str | None = setting(
        None,
        optional(parse_host_port),
        "HOST:PORT of a Stratum V2 Template Provider (sv2-tp: 8442) to take templates from instead of RPC",
    )
    template_provider_key: bytes | None = setting(
        None,
        optional(parse_authority_key),
        "the Template Provider's authority public key (it prints it at start); null: not authenticated",
    )


@dataclass(frozen=True, slots=True)
class CoinbaseConfig:
    """Who the coinbase pays in pool mode, and the tag it carries."""

    payout: tuple[tuple[str, float], ...] | None = setting(
        DEMO_PAYOUT, optional(parse_payout), "ADDRESS, or {ADDRESS: PERCENT}; null: pool mode serves no jobs"
    )
    pool_tag: str = setting("/sv2proxy/", parse_text, "text put in every coinbase scriptSig")
    solo: bool = setting(
        False,
        parse_bool,
        "solo pool: usernames are ADDRESS or ADDRESS.WORKER and each miner's blocks pay its address in full",
    )


def parse_pool_urls(value: object, ctx: _Context) -> tuple[PoolUrl, ...]:
    if value is None or value is False or value == []:
        return ()
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else None
    if items is None:
        raise ValueError(f"expected a list of pool URLs ({_POOL_URL_FORMS}), got {value!r}")
    return tuple(parse_pool_url(item, ctx) for item in items)


class UpstreamChannels(enum.StrEnum):
    """How local miners map to channels on a Stratum V2 upstream pool."""

    AGGREGATED = "aggregated"
    PER_MINER = "per-miner"


def parse_upstream_channels(value: object, ctx: _Context) -> UpstreamChannels:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return UpstreamChannels(value)
    raise ValueError(f"expected 'aggregated' or 'per-miner', got {value!r}")


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """Proxy mode: who the remote pools are and who we are to them."""

    backup_urls: tuple[PoolUrl, ...] = setting(
        [], parse_pool_urls, "pools tried in this order when pool_url is unreachable (failover)"
    )
    user_identity: str = setting(
        "sv2proxy", parse_text, "the user identity (worker name) of our channel on the upstream pool"
    )
    password: str = setting("x", parse_text, "mining.authorize password for Stratum V1 pools", secret=True)
    channels: UpstreamChannels = setting(
        "aggregated",
        parse_upstream_channels,
        "aggregated (one upstream channel for all miners) or per-miner (one each, with the miner's username)",
    )
    failback_interval: float = setting(
        60,
        parse_non_negative_number,
        "seconds between checks, while on a backup, that a preferred pool is back; 0: never",
    )
    request_extensions: bool = setting(
        True, parse_bool, "send RequestExtensions (worker names) to Stratum V2 pools; false for pools that choke on it"
    )


_STORE_FORMS = "sqlite, sqlite:PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def parse_store_url(value: object, ctx: _Context) -> str:
    """``sqlite`` (the data directory's file), ``sqlite:PATH``, or a ``postgresql://`` URL."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected {_STORE_FORMS}, got {value!r}")
    text = value.strip()
    if text == "sqlite":
        return text
    if text.startswith("sqlite:"):
        path = text.removeprefix("sqlite:").removeprefix("//")
        return f"sqlite:{parse_path(path, ctx)}"
    if text.startswith(("postgresql://", "postgres://")):
        _check_postgresql_url(text)
        return text
    raise ValueError(f"expected {_STORE_FORMS}, got {redact_url(text)!r}")


def _check_postgresql_url(url: str) -> None:
    """Refuse what libpq would only refuse once the daemon runs: no host, a bad host or port."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValueError(f"expected {_STORE_FORMS}, got {shown!r}") from None
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    hosts = parts.netloc.rpartition("@")[2]
    if not hosts and not any(value.strip() for value in query.get("host", ())):
        raise ValueError(f"expected a host in the PostgreSQL URL, got {shown!r}")
    # libpq takes a comma-separated list of HOST[:PORT] to try in turn.
    for entry in hosts.split(",") if hosts else ():
        split = _split_host_port(entry)
        host, port = split if split is not None else (entry.strip("[]"), None)
        if _store_host(host) is None:
            raise ValueError(f"expected a host name or IP address in the PostgreSQL URL, got {host!r} in {shown!r}")
        if port is not None and _port(port, lowest=1) is None:
            raise ValueError(f"expected a port in 1-65535 in the PostgreSQL URL, got {port!r} in {shown!r}")
    for value in query.get("port", ()):
        for port in value.split(","):
            if _port(port.strip(), lowest=1) is None:
                raise ValueError(f"expected a port in 1-65535 in the PostgreSQL URL, got {port!r} in {shown!r}")
    if not parts.path.strip("/"):
        raise ValueError(f"expected a database name in the PostgreSQL URL, got {shown!r}")


def _store_host(text: str) -> str | None:
    """A PostgreSQL URL's host: an IP, a name (container names may hold "_"), or a
    percent-encoded socket directory (``%2Fvar%2Frun%2Fpostgresql``); None if none of these."""
    if text.lower().startswith("%2f"):
        return text if urllib.parse.unquote(text).startswith("/") else None
    if _host(text) is not None or _host(text.replace("_", "-")) is not None:
        return text
    return None


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where accepted shares, found blocks and upstream events are kept."""

    url: str | None = setting(
        "sqlite",
        optional(parse_store_url),
        f"{_STORE_FORMS}; null keeps no records (shares are acknowledged without being stored)",
        shown=redact_url,
    )
    daemon_name: str | None = setting(
        None, optional(parse_text), "this daemon's name in a shared store (default: the host name)"
    )


_AUX_CHAIN_KEYS = ("name", "rpc_url", "rpc_user", "rpc_password", "payout_address", "chain_id")
_AUX_CHAIN_REQUIRED = ("name", "rpc_url", "payout_address", "chain_id")


@dataclass(frozen=True, slots=True, repr=False)
class AuxChainConfig:
    """One merge-mined chain: its node's RPC, who its blocks pay, its AuxPoW chain id."""

    name: str
    rpc_url: str
    rpc_user: str | None
    rpc_password: str | None
    payout_address: str
    chain_id: int

    def __repr__(self) -> str:
        # This is what describe() logs: never the password.
        return f"{self.name}(chain_id={self.chain_id}, {redact_url(self.rpc_url)}, pays {self.payout_address})"


def parse_aux_chains(value: object, ctx: _Context) -> tuple[AuxChainConfig, ...]:
    """A list of ``{name, rpc_url, rpc_user, rpc_password, payout_address, chain_id}``."""
    if value is None or value is False or value == []:
        return ()
    if not isinstance(value, list):
        raise ValueError(f"expected a list of chains ({', '.join(_AUX_CHAIN_KEYS)}), got {value!r}")
    chains: list[AuxChainConfig] = []
    for index, item in enumerate(value):
        label = f"chain {index}"
        if not isinstance(item, Mapping):
            raise ValueError(f"{label}: expected a mapping of {', '.join(_AUX_CHAIN_KEYS)}, got {item!r}")
        if isinstance(item.get("name"), str):
            label = f"chain {index} ({item['name']})"
        unknown = [key for key in item if key not in _AUX_CHAIN_KEYS]
        if unknown:
            raise ValueError(f"{label}: unknown key {unknown[0]!r} (expected {', '.join(_AUX_CHAIN_KEYS)})")
        missing = [key for key in _AUX_CHAIN_REQUIRED if item.get(key) in (None, "")]
        if missing:
            raise ValueError(f"{label}: {missing[0]} is required")
        try:
            name = parse_text(item["name"], ctx)
            rpc_url = parse_url(item["rpc_url"], ctx)
            payout = parse_text(item["payout_address"], ctx).strip()
            user = optional(parse_text)(item.get("rpc_user"), ctx)
            password = optional(parse_text)(item.get("rpc_password"), ctx)
            chain_id = _number(item["chain_id"], ctx)
            if not isinstance(chain_id, int) or not 0 <= chain_id <= 0xFFFF_FFFF:
                raise ValueError(f"chain_id: expected an integer 0..4294967295, got {item['chain_id']!r}")
        except ValueError as e:
            raise ValueError(f"{label}: {e}") from None
        if (user is None) != (password is None):
            raise ValueError(f"{label}: give both rpc_user and rpc_password, or neither")
        chains.append(AuxChainConfig(name, rpc_url, user, password, payout, chain_id))
    for attribute in ("name", "chain_id"):
        seen = [getattr(chain, attribute) for chain in chains]
        twice = next((v for v in seen if seen.count(v) > 1), None)
        if twice is not None:
            # Two chains with one id would always want the same slot of the aux tree.
            raise ValueError(f"every chain needs its own {attribute}, {twice!r} is given twice")
    return tuple(chains)


@dataclass(frozen=True, slots=True)
class MergeMiningConfig:
    """Pool mode: secondary (AuxPoW) chains mined with the same work as Bitcoin."""

    chains: tuple[AuxChainConfig, ...] = setting(
        [],
        parse_aux_chains,
        "aux chains: a list of {name, rpc_url, rpc_user, rpc_password, payout_address, chain_id}; [] mines none",
    )
    refresh_interval: float = setting(30, parse_positive_number, "seconds between createauxblock calls to each chain")
    poll_interval: float = setting(1, parse_positive_number, "seconds between checks of each aux chain's tip")
    timeout: float = setting(
        5, parse_positive_number, "seconds an aux chain has to answer before it drops out of the commitment"
    )


#: RFC 6750's b64token: what an ``Authorization: Bearer`` header carries, and what the
#: dashboard's cookie may hold without quoting (";", ",", '"' and spaces would end or break it).
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]+")
MIN_TOKEN_LENGTH = 16


def parse_token(value: object, ctx: _Context) -> str:
    hint = "(e.g. the output of `openssl rand -hex 32`)"
    if not isinstance(value, str) or not _TOKEN.fullmatch(value.strip()):
        raise ValueError(f"expected a token of letters, digits and . _ ~ + / = - only {hint}")
    token = value.strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"expected a token of at least {MIN_TOKEN_LENGTH} characters, got {len(token)} {hint}")
    return token


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The HTTP JSON API, Prometheus /metrics and the dashboard."""

    listen: ListenAddress | None = setting(
        "127.0.0.1:8080",
        optional(parse_listen_address),
        "where the HTTP API, /metrics and the dashboard listen; null disables; beyond loopback needs web.token",
    )
    token: str | None = setting(
        None,
        optional(parse_token),
        "bearer token every request must carry (Authorization: Bearer TOKEN); null: none",
        secret=True,
    )


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration of one daemon."""

    mode: Mode = setting("pool", parse_mode, "pool (jobs from a local node) or proxy (jobs from pool_url)")
    data_dir: Path = setting("~/.local/share/sv2proxy", parse_path, "directory for keys, shares and found blocks")
    pool_url: PoolUrl | None = setting(
        None, optional(parse_pool_url), f"upstream pool for proxy mode: {_POOL_URL_FORMS}"
    )
    listen: ListenConfig = section(ListenConfig)
    noise: NoiseConfig = section(NoiseConfig)
    mining: MiningConfig = section(MiningConfig)
    node: NodeConfig = section(NodeConfig)
    coinbase: CoinbaseConfig = section(CoinbaseConfig)
    upstream: UpstreamConfig = section(UpstreamConfig)
    store: StoreConfig = section(StoreConfig)
    merge_mining: MergeMiningConfig = section(MergeMiningConfig)
    web: WebConfig = section(WebConfig)

    @property
    def pool_urls(self) -> tuple[PoolUrl, ...]:
        """The upstream pools in failover order: pool_url, then upstream.backup_urls."""
        return ((self.pool_url,) if self.pool_url is not None else ()) + self.upstream.backup_urls

    @property
    def authority_key_path(self) -> Path:
        """Where the authority secret key is read (or created on first start)."""
        return self.noise.authority_key_file or self.data_dir / "authority.key"


# -- walking the schema -------------------------------------------------------------------------


def _fields_of(cls: type) -> Iterator[tuple[str, Field[Any]]]:
    for f in fields(cls):
        yield f.name, f


def _leaves(cls: type, prefix: str = "") -> Iterator[tuple[str, _Setting]]:
    for name, f in _fields_of(cls):
        if _SECTION in f.metadata:
            yield from _leaves(f.metadata[_SECTION], f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", f.metadata[_SETTING]


def keys() -> list[str]:
    """Every setting's dotted key, in declaration order."""
    return [key for key, _ in _leaves(Config)]


def help_text(key: str) -> str:
    """The one line of help declared with the setting ``key``."""
    return dict(_leaves(Config))[key].help


def option_name(key: str) -> str:
    """The command-line option that overrides ``key``: ``listen.sv2`` -> ``--listen-sv2``."""
    return "--" + key.replace(".", "-").replace("_", "-")


@dataclass(frozen=True, slots=True)
class _Value:
    """One raw value and where it came from, for parsing and for error messages."""

    raw: object
    where: str  # "FILE: dotted.key" or "--option"
    ctx: _Context


def _unknown_key(where: str, key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return ConfigError(f"{where}: unknown key (did you mean {close[0]!r}?)")
    return ConfigError(f"{where}: unknown key (expected one of: {', '.join(known)})")


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _collect(
    cls: type,
    raw: Mapping[Any, Any],
    prefix: str,
    file: str,
    ctx: _Context,
    out: dict[str, _Value],
    also_known: tuple[str, ...] = (),
) -> None:
    """Check the keys of one mapping against ``cls`` and note every leaf value in ``out``.

    ``also_known`` are keys handled elsewhere, offered as suggestions for a misspelt key.
    """
    known = {name: f for name, f in _fields_of(cls)}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        f = known.get(key) if isinstance(key, str) else None
        if f is None:
            raise _unknown_key(f"{file}: {dotted}", str(key), [*known, *also_known])
        if _SECTION in f.metadata:
            if value is None:  # a section whose keys are all commented out
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(f"{file}: {dotted}: expected a mapping, got {value!r}")
            _collect(f.metadata[_SECTION], value, f"{dotted}.", file, ctx, out)
        else:
            out[dotted] = _Value(value, f"{file}: {dotted}", ctx)


def _build(cls: type[T], prefix: str, values: Mapping[str, _Value]) -> T:
    kwargs: dict[str, object] = {}
    for name, f in _fields_of(cls):
        dotted = f"{prefix}{name}"
        if _SECTION in f.metadata:
            kwargs[name] = _build(f.metadata[_SECTION], f"{dotted}.", values)
        elif dotted in values:
            value = values[dotted]
            try:
                kwargs[name] = f.metadata[_SETTING].parse(value.raw, value.ctx)
            except ValueError as e:
                raise ConfigError(f"{value.where}: {e}") from None
    return cls(**kwargs)


# -- reading files ------------------------------------------------------------------------------


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which YAML would otherwise silently overwrite."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str):
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(file: str, text: str) -> object:
    try:
        return yaml.load(text, Loader=_YamlLoader)  # a SafeLoader: builds plain data only
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{file}: line {mark.line + 1}" if mark else file
        raise ConfigError(f"{where}: invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{file}: invalid YAML: {str(e).splitlines()[0]}") from None


def _read_toml(file: str, text: str) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{file}: invalid TOML: {e}") from None


_READERS: Mapping[str, Callable[[str, str], object]] = MappingProxyType(
    {".yaml": _read_yaml, ".yml": _read_yaml, ".toml": _read_toml}
)


def _read(file: str) -> Mapping[Any, Any]:
    reader = _READERS.get(Path(file).suffix.lower())
    if reader is None:
        raise ConfigError(f"{file}: unknown configuration format (expected .yaml, .yml or .toml)")
    try:
        data = Path(file).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{file}: is a directory, expected a file") from None
    except OSError as e:
        raise ConfigError(f"{file}: cannot read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{file}: not UTF-8 text (bad byte at offset {e.start})") from None
    document = reader(file, text)
    if document is None:  # an empty (or all-comment) YAML file: the defaults
        return {}
    if not isinstance(document, Mapping):
        raise ConfigError(f"{file}: expected a mapping of settings at the top level, got {_type_name(document)}")
    return document


# The seed's TOML section (SEED-API.md "Configuration") and where each of its keys lands.
_SEED_SECTION = "stratum_v2"
_SEED_KEYS = ("enabled", "listen_addr", "pool_url")


def _translate_seed(file: str, document: Mapping[Any, Any], ctx: _Context) -> dict[str, _Value]:
    """The values given by the seed's ``[stratum_v2]`` section, keyed by our dotted keys."""
    seed = document[_SEED_SECTION]
    where = f"{file}: {_SEED_SECTION}"
    if not isinstance(seed, Mapping):
        raise ConfigError(f"{where}: expected a table, got {seed!r}")
    for key in seed:
        if key not in _SEED_KEYS:
            raise _unknown_key(f"{where}.{key}", str(key), list(_SEED_KEYS))
    out: dict[str, _Value] = {}
    enabled = seed.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}.enabled: expected true or false, got {enabled!r}")
    if not enabled:
        out["listen.sv2"] = _Value(None, f"{where}.enabled", ctx)
    elif "listen_addr" in seed:
        out["listen.sv2"] = _Value(seed["listen_addr"], f"{where}.listen_addr", ctx)
    if "pool_url" in seed:
        out["pool_url"] = _Value(seed["pool_url"], f"{where}.pool_url", ctx)
    return out


def _file_values(file: str) -> dict[str, _Value]:
    document = _read(file)
    ctx = _Context(base_dir=Path(file).parent.absolute())
    seed: dict[str, _Value] = {}
    also_known: tuple[str, ...] = ()
    if Path(file).suffix.lower() == ".toml":
        also_known = (_SEED_SECTION,)
        if _SEED_SECTION in document:
            seed = _translate_seed(file, document, ctx)
            document = {k: v for k, v in document.items() if k != _SEED_SECTION}
    values: dict[str, _Value] = {}
    _collect(Config, document, "", file, ctx, values, also_known)
    for key, value in seed.items():
        if key in values:  # the same setting twice, once in each form
            raise ConfigError(f"{value.where}: conflicts with {key} (give only one)")
        values[key] = value
    return values


# -- the API ------------------------------------------------------------------------------------

_NO_OVERRIDES: Mapping[str, object] = MappingProxyType({})


def load_config(file: str | None, overrides: Mapping[str, object] = _NO_OVERRIDES) -> Config:
    """The configuration from ``file`` (None: the defaults) with command-line ``overrides``.

    ``overrides`` maps dotted keys (``"listen.sv2"``) to values; text values are read the way the
    command line means them (numbers from digits, ``null`` for none), and errors name the option
    (``--listen-sv2``).  Raises :class:`ConfigError` with a one-line message.
    """
    values = _file_values(file) if file is not None else {}
    known = keys()
    for key, raw in overrides.items():
        if key not in known:
            raise _unknown_key(option_name(key), key, known)
        ctx = _Context(base_dir=Path.cwd(), from_text=isinstance(raw, str))
        values[key] = _Value(raw, option_name(key), ctx)
    config = _build(Config, "", values)
    _check_mining(config.mining, values)
    _check_payout(config, values)
    _check_upstream(config, values)
    config = _check_mode(config, values)
    _check_merge_mining(config, values)
    _check_web(config, values)
    return config


def _check_payout(config: Config, values: Mapping[str, _Value]) -> None:
    """Payout addresses must be valid for the node's chain; the pool tag must fit the coinbase."""
    from sv2proxy.bitcoin.address import Network, script_for_address

    if config.node.embedded and config.node.template_provider is not None:
        where = values["node.template_provider"].where if "node.template_provider" in values else "node"
        raise ConfigError(f"{where}: a Template Provider replaces the embedded demo node; set node.embedded: false")
    if config.node.embedded and config.node.chain != "regtest":
        where = values["node.embedded"].where if "node.embedded" in values else "node.embedded"
        raise ConfigError(
            f"{where}: the embedded node is a regtest demo, but node.chain is {config.node.chain!r};"
            " set node.embedded: false to use your own node"
        )
    where = values["coinbase.payout"].where if "coinbase.payout" in values else "coinbase.payout"
    network = Network.from_name(config.node.chain)
    for address, _ in config.coinbase.payout or ():
        try:
            script_for_address(address, network)
        except ValueError as e:
            raise ConfigError(f"{where}: {address!r} is not a {config.node.chain} address: {e}") from None
    if len(config.coinbase.pool_tag.encode()) > 40:
        tag_where = values["coinbase.pool_tag"].where if "coinbase.pool_tag" in values else "coinbase.pool_tag"
        raise ConfigError(f"{tag_where}: expected at most 40 bytes, got {len(config.coinbase.pool_tag.encode())}")


def _check_mining(mining: MiningConfig, values: Mapping[str, _Value]) -> None:
    """Settings that are only wrong together."""

    def where(key: str) -> str:
        value = values.get(key)
        return value.where if value is not None else key

    if mining.max_difficulty is not None and mining.max_difficulty < mining.min_difficulty:
        raise ConfigError(
            f"{where('mining.max_difficulty')}: expected at least mining.min_difficulty"
            f" ({mining.min_difficulty}), got {mining.max_difficulty}"
        )
    room = mining.extranonce_size - mining.channel_prefix_size
    if 0 < room < mining.sv1_extranonce2_size:
        raise ConfigError(
            f"{where('mining.sv1_extranonce2_size')}: expected at most mining.extranonce_size minus"
            f" mining.channel_prefix_size ({room}), got {mining.sv1_extranonce2_size}"
        )
    if mining.channel_prefix_size >= mining.extranonce_size:
        raise ConfigError(
            f"{where('mining.channel_prefix_size')}: expected fewer bytes than mining.extranonce_size"
            f" ({mining.extranonce_size}) so miners have some to roll, got {mining.channel_prefix_size}"
        )


def _check_mode(config: Config, values: Mapping[str, _Value]) -> Config:
    """Settle the mode: a pool URL alone means proxy; proxy needs one, pool has no use for one."""
    if "mode" not in values:
        return replace(config, mode=Mode.PROXY) if config.pool_url is not None else config
    if config.mode is Mode.PROXY and config.pool_url is None:
        raise ConfigError(f"{values['mode'].where}: 'proxy' needs pool_url ({_POOL_URL_FORMS})")
    if config.mode is Mode.POOL and config.pool_url is not None:
        where = values["pool_url"].where
        raise ConfigError(f"{where}: only used in proxy mode, but mode is 'pool'")
    return config


def _check_upstream(config: Config, values: Mapping[str, _Value]) -> None:
    """Backup pools back up pool_url: without it they would be the only pools, unannounced.

    Per-miner channels need Stratum V2 pools: a V1 pool would need one connection per miner,
    which pools rate-limit per address and which the miners could as well make themselves.
    """
    if config.upstream.backup_urls and config.pool_url is None:
        where = values["upstream.backup_urls"].where
        raise ConfigError(f"{where}: backup pools need pool_url, the pool they stand in for")
    if config.upstream.channels is UpstreamChannels.PER_MINER:
        v1 = [url.text for url in config.pool_urls if url.protocol is PoolProtocol.V1]
        if v1:
            where = values["upstream.channels"].where
            raise ConfigError(
                f"{where}: per-miner needs Stratum V2 pools (a V1 pool has no channels to open per miner),"
                f" but {v1[0]} is Stratum V1; use aggregated, or point those miners at the V1 pool directly"
            )


#: The scriptSig push of the merged-mining commitment: opcode + fabe6d6d + root + size + nonce.
_AUX_PUSH_SIZE = 1 + 44
#: Longest coinbase prefix a template brings (a TP's; getblocktemplate's BIP34 push is <= 5).
_LONGEST_COINBASE_PREFIX = 8


def _check_merge_mining(config: Config, values: Mapping[str, _Value]) -> None:
    """Aux chains need a coinbase we build, and room for the commitment in its scriptSig."""
    chains = config.merge_mining.chains
    if not chains:
        return
    where = values["merge_mining.chains"].where
    if config.mode is Mode.PROXY:
        raise ConfigError(
            f"{where}: merge mining needs pool mode: in proxy mode the remote pool builds the coinbase,"
            " so there is nowhere to put the aux chains' commitment; remove merge_mining.chains or use mode: pool"
        )
    if config.node.template_provider is not None:
        raise ConfigError(
            f"{where}: merge mining takes templates from node.rpc_url; it is not supported with"
            " node.template_provider yet"
        )
    ids = [chain.chain_id for chain in chains]
    try:
        plan_tree(ids)
    except ValueError as e:
        raise ConfigError(f"{where}: chain ids {ids} cannot share one aux merkle tree: {e}") from None
    tag = config.coinbase.pool_tag.encode()
    if b"\xfa\xbemm" in tag:
        raise ConfigError(
            f"{where}: coinbase.pool_tag contains the merged-mining header bytes; aux chains would refuse"
        )
    tag_push = len(tag) + 1 if tag else 0
    size = _LONGEST_COINBASE_PREFIX + tag_push + _AUX_PUSH_SIZE + 1 + config.mining.extranonce_size
    if size > 100:
        raise ConfigError(
            f"{where}: the coinbase scriptSig would be {size} bytes with the {_AUX_PUSH_SIZE}-byte merged-mining"
            f" commitment, over the 100-byte limit; shorten coinbase.pool_tag or mining.extranonce_size"
        )


def web_is_local(address: ListenAddress) -> bool:
    """Whether only this host can reach ``address``: a loopback interface or a Unix socket."""
    kind = address.endpoint.partition(":")[0]
    if kind == "unix":
        return True
    if kind not in ("tcp", "tcp6", "ssl"):
        return False  # systemd sockets and the like: where they listen is not ours to know
    interface = _endpoint_arguments(address.endpoint)[1].get("interface")
    if interface is None:
        return False  # every interface
    if interface == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def _check_web(config: Config, values: Mapping[str, _Value]) -> None:
    """The API shows who mines what: beyond loopback, only to whoever has the token."""
    listen = config.web.listen
    if listen is None or config.web.token is not None or web_is_local(listen):
        return
    where = values["web.listen"].where if "web.listen" in values else "web.listen"
    raise ConfigError(
        f"{where}: {listen.text} is reachable from other hosts, so web.token must be set"
        " (a reverse proxy in front of 127.0.0.1 needs it too, unless it sends Host: 127.0.0.1)"
    )


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, ListenAddress | PoolUrl):
        return value.text
    if isinstance(value, tuple) and all(isinstance(item, PoolUrl) for item in value):
        return "[" + ", ".join(item.text for item in value) + "]"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def _masked(value: object) -> str:
    """A secret as the log may show it: whether it is set, never what it is."""
    return "null" if value is None else MASK


def settings(config: Config) -> list[tuple[str, str]]:
    """Every setting as (dotted key, value as text), secrets masked, in declaration order."""
    out: list[tuple[str, str]] = []

    def walk(obj: object, cls: type, prefix: str) -> None:
        for name, f in _fields_of(cls):
            value = getattr(obj, name)
            if _SECTION in f.metadata:
                walk(value, f.metadata[_SECTION], f"{prefix}{name}.")
            else:
                spec = cast(_Setting, f.metadata[_SETTING])
                if spec.secret:
                    shown = _masked(value)
                elif spec.shown is not None and value is not None:
                    shown = spec.shown(value)
                else:
                    shown = _show(value)
                out.append((f"{prefix}{name}", shown))

    walk(config, Config, "")
    return out


def describe(config: Config) -> list[str]:
    """``key = value`` lines for the start-up log."""
    return [f"{key} = {value}" for key, value in settings(config)]


__all__ = [
    "redact_url",
    "Config",
    "ListenConfig",
    "NoiseConfig",
    "ListenAddress",
    "PoolUrl",
    "PoolProtocol",
    "Mode",
    "UpstreamChannels",
    "AuxChainConfig",
    "MergeMiningConfig",
    "WebConfig",
    "load_config",
    "describe",
    "settings",
    "keys",
    "help_text",
    "option_name",
    "setting",
    "section",
]
