"""The JSON documents of the HTTP API, built from plain values (no server, no reactor).

Each function takes what the store answered (None when the daemon runs without one) and what
the daemon knows live (:mod:`sv2proxy.web.live`, the mining service's channels), and returns
a JSON-ready dict or list.  Times are Unix seconds; hash rates are H/s; hashes are display hex.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sv2proxy.events import Event
from sv2proxy.merge_mining.coordinator import SecondaryChain
from sv2proxy.store.records import WINDOWS, BlockRecord, UpstreamEventRecord, WorkerStats
from sv2proxy.web.live import AuxLive, UpstreamLive, WorkerLive

#: The names of the store's hash rate windows (:data:`~sv2proxy.store.records.WINDOWS`).
WINDOW_NAMES = ("1m", "15m", "1h", "24h")
assert len(WINDOW_NAMES) == len(WINDOWS)


@dataclass(frozen=True, slots=True)
class StoreState:
    """What the API says about the share store (None: the daemon keeps no records)."""

    backend: str
    durable: int
    last_ticket: int
    commits: int
    shares_committed: int
    last_error: str | None
    set_aside: int = 0  # records the database refused, kept in the quarantine file


def store_document(store: StoreState | None) -> dict[str, Any]:
    if store is None:
        return {"enabled": False}
    return {
        "enabled": True,
        "backend": store.backend,
        "ok": store.last_error is None,
        "durable_ticket": store.durable,
        "last_ticket": store.last_ticket,
        "pending_shares": max(0, store.last_ticket - store.durable),
        "commits": store.commits,
        "shares_committed": store.shares_committed,
        "last_error": store.last_error,
        "set_aside": store.set_aside,
    }


def status_document(
    *,
    mode: str,
    version: str,
    now: float,
    started_at: float,
    connections: int,
    channels: int,
    hash_rate: float,
    hash_rate_estimate: float,
    hash_rate_window: float,
    accepted: int,
    rejected: Mapping[str, int],
    template_age: float | None,
    template_height: int | None,
    upstreams: Sequence[Mapping[str, Any]],
    store: StoreState | None,
    blocks_found: int,
    merge_mining: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """``/api/v1/status``: the daemon at a glance."""
    return {
        "mode": mode,
        "version": version,
        "time": now,
        "started_at": started_at,
        "uptime": max(0.0, now - started_at),
        "connections": connections,
        "channels": channels,
        "hash_rate": hash_rate,
        "hash_rate_window": hash_rate_window,
        "hash_rate_estimate": hash_rate_estimate,
        "shares": {"accepted": accepted, "rejected": dict(sorted(rejected.items()))},
        "blocks_found": blocks_found,
        "template": {"age": template_age, "height": template_height},
        "upstreams": list(upstreams),
        "store": store_document(store),
        "merge_mining": list(merge_mining),
    }


def merge_mining_documents(chains: Sequence[SecondaryChain], live: Mapping[str, AuxLive]) -> list[dict[str, Any]]:
    """Each aux chain: in the commitment or why not, its height, and its blocks since start."""
    documents = []
    for chain in chains:
        seen = live.get(chain.name)
        documents.append(
            {
                "chain": chain.name,
                "chain_id": chain.chain_id,
                "live": chain.live,
                "reason": "" if chain.live else chain.reason,
                "height": chain.height,
                "blocks": seen.blocks if seen else 0,
                "rewards": seen.rewards if seen else 0,
                "last_block_at": seen.last_at if seen else None,
            }
        )
    return documents


@dataclass(frozen=True, slots=True)
class ChannelView:
    """One open channel, as the API needs it."""

    worker: str
    hash_rate: float


def worker_documents(
    live: Mapping[str, WorkerLive],
    channels: Iterable[ChannelView],
    stored: Sequence[WorkerStats] | None,
    rate: Callable[[str], float] = lambda _: 0.0,
) -> list[dict[str, Any]]:
    """``/api/v1/workers``: every worker connected, seen since start, or in the store's last day.

    ``hash_rate`` is ``rate(name)``: its accepted difficulty over the headline window, the one
    formula used everywhere; ``hash_rate_estimate`` what vardiff estimates of its open
    channels; ``stored`` holds the store's figures (null without a store): hash rate per window
    from accepted difficulty, shares and difficulty over 24 h, blocks, rejections by reason.
    """
    rates: dict[str, float] = {}
    open_channels: dict[str, int] = {}
    for channel in channels:
        rates[channel.worker] = rates.get(channel.worker, 0.0) + channel.hash_rate
        open_channels[channel.worker] = open_channels.get(channel.worker, 0) + 1
    by_name = {stats.worker: stats for stats in stored or ()}
    names = set(live) | set(open_channels) | set(by_name)
    documents = []
    for name in names:
        seen = live.get(name)
        stats = by_name.get(name)
        last = [
            t for t in (seen.last_share_at if seen else None, stats.last_share_at if stats else None) if t is not None
        ]
        documents.append(
            {
                "name": name,
                "connected": name in open_channels,
                "channels": open_channels.get(name, 0),
                "hash_rate": rate(name),
                "hash_rate_estimate": rates.get(name, 0.0),
                "accepted": seen.accepted if seen else 0,
                "rejected": dict(sorted(seen.rejected.items())) if seen else {},
                "blocks": seen.blocks if seen else 0,
                "last_share_at": max(last) if last else None,
                "stored": _stored_document(stats) if stored is not None else None,
            }
        )

    def busiest(document: dict[str, Any]) -> tuple[float, float, float, str]:
        stats = document["stored"]
        hour = stats["hash_rates"]["1h"] if stats else 0.0
        return (-document["hash_rate"], -document["hash_rate_estimate"], -hour, document["name"])

    documents.sort(key=busiest)
    return documents


def _stored_document(stats: WorkerStats | None) -> dict[str, Any]:
    if stats is None:
        return {
            "hash_rates": dict.fromkeys(WINDOW_NAMES, 0.0),
            "shares_24h": 0,
            "difficulty_24h": 0.0,
            "blocks": 0,
            "rejected": {},
        }
    return {
        "hash_rates": dict(zip(WINDOW_NAMES, stats.hash_rates, strict=True)),
        "shares_24h": stats.shares_24h,
        "difficulty_24h": stats.difficulty_24h,
        "blocks": stats.blocks,
        "rejected": dict(sorted(stats.rejected.items())),
    }


def block_documents(blocks: Iterable[BlockRecord]) -> list[dict[str, Any]]:
    """``/api/v1/blocks``: found blocks, latest first."""
    return [
        {
            "hash": block.hash,
            "status": block.status,
            "at": block.at,
            "worker": block.worker,
            "height": block.height,
            "reward": block.reward,
            "reason": block.reason,
        }
        for block in sorted(blocks, key=lambda b: -b.at)
    ]


def upstream_documents(
    urls: Sequence[str], live: Mapping[str, UpstreamLive], history: Sequence[UpstreamEventRecord] | None
) -> list[dict[str, Any]]:
    """``/api/v1/upstreams``: each configured pool (then any other seen) and its state.

    ``state`` is ``connected``, ``disconnected`` or ``connecting`` (never connected yet);
    ``events`` the store's latest connects and disconnects of that URL (null without a store).
    """
    documents = []
    for url in [*urls, *(u for u in live if u not in urls)]:
        seen = live.get(url)
        if seen is None or (not seen.connected and not seen.disconnects):
            state = "connecting"
        else:
            state = "connected" if seen.connected else "disconnected"
        events = None
        if history is not None:
            events = [{"event": e.event, "at": e.at, "reason": e.reason} for e in history if e.url == url]
        documents.append(
            {
                "url": url,
                "state": state,
                "since": seen.since if seen else None,
                "connects": seen.connects if seen else 0,
                "disconnects": seen.disconnects if seen else 0,
                "last_reason": seen.last_reason if seen else "",
                "events": events,
            }
        )
    return documents


def payout_document(window: int, rows: Sequence[tuple[str, float, float]]) -> dict[str, Any]:
    """``/api/v1/payouts?window=N``: PPLNS over the last ``window`` accepted shares."""
    return {
        "window": window,
        "total_difficulty": sum(difficulty for _, difficulty, _ in rows),
        "workers": [{"worker": w, "difficulty": d, "fraction": f} for w, d, f in rows],
    }


# -- events --------------------------------------------------------------------------------

#: Longest bytes value an event document spells out in hex (raw frames are summarised).
_MAX_HEX = 64


def _plain(value: object, depth: int = 0) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex() if len(value) <= _MAX_HEX else {"bytes": len(value)}
    if isinstance(value, list | tuple):
        return [_plain(item, depth + 1) for item in value[:100]] if depth < 2 else len(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if depth >= 1:
            # A nested object (a block template): its scalars only, never its transactions.
            return {
                f.name: _plain(getattr(value, f.name), depth + 1)
                for f in dataclasses.fields(value)
                if isinstance(getattr(value, f.name), bool | int | float | str | bytes | type(None))
            }
        return {f.name: _plain(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)}
    return str(value)


def event_document(event: Event, at: float) -> dict[str, Any]:
    """One bus event as JSON: its type, when it was seen, and its fields."""
    fields = _plain(event)
    assert isinstance(fields, dict)
    return {"type": type(event).__name__, "at": at, **fields}


__all__ = [
    "ChannelView",
    "StoreState",
    "block_documents",
    "event_document",
    "merge_mining_documents",
    "payout_document",
    "status_document",
    "store_document",
    "upstream_documents",
    "worker_documents",
]
