"""The API's JSON documents, built from plain values."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from sv2proxy.events import (
    BlockTemplateUpdated,
    HandshakeFailed,
    MiningJobCreated,
    ShareSubmitted,
    StratumV2MessageReceived,
)
from sv2proxy.store.records import BlockRecord, UpstreamEventRecord, WorkerStats
from sv2proxy.web import views
from sv2proxy.web.live import UpstreamLive, WorkerLive

T0 = 1_800_000_000.0


def test_status_document_without_a_store() -> None:
    document = views.status_document(
        mode="pool",
        version="1.2.3",
        now=T0 + 90,
        started_at=T0,
        connections=2,
        channels=3,
        hash_rate=1.5e12,
        hash_rate_estimate=1.4e12,
        hash_rate_window=90.0,
        accepted=10,
        rejected={"stale-share": 2, "difficulty-too-low": 1},
        template_age=4.5,
        template_height=840_000,
        upstreams=[{"url": "sv2://a", "state": "connected"}],
        store=None,
        blocks_found=1,
    )
    assert document == {
        "mode": "pool",
        "version": "1.2.3",
        "time": T0 + 90,
        "started_at": T0,
        "uptime": 90.0,
        "connections": 2,
        "channels": 3,
        "hash_rate": 1.5e12,
        "hash_rate_window": 90.0,
        "hash_rate_estimate": 1.4e12,
        "shares": {"accepted": 10, "rejected": {"difficulty-too-low": 1, "stale-share": 2}},
        "blocks_found": 1,
        "template": {"age": 4.5, "height": 840_000},
        "upstreams": [{"url": "sv2://a", "state": "connected"}],
        "store": {"enabled": False},
        "merge_mining": [],
    }
    assert list(document["shares"]["rejected"]) == ["difficulty-too-low", "stale-share"]
    json.dumps(document, allow_nan=False)


def test_uptime_is_never_negative() -> None:
    document = views.status_document(
        mode="solo", version="1", now=T0 - 5, started_at=T0, connections=0, channels=0, hash_rate=0.0,
        hash_rate_estimate=0.0, hash_rate_window=1.0, accepted=0, rejected={}, template_age=None,
        template_height=None, upstreams=[], store=None, blocks_found=0,
    )
    assert document["uptime"] == 0.0
    assert document["template"] == {"age": None, "height": None}


def test_store_document() -> None:
    ok = views.StoreState("sqlite x.db", durable=7, last_ticket=10, commits=3, shares_committed=7, last_error=None)
    assert views.store_document(ok) == {
        "enabled": True,
        "backend": "sqlite x.db",
        "ok": True,
        "durable_ticket": 7,
        "last_ticket": 10,
        "pending_shares": 3,
        "commits": 3,
        "shares_committed": 7,
        "last_error": None,
        "set_aside": 0,
    }
    failing = views.StoreState("postgresql db", 10, 10, 3, 10, "connection refused")
    document = views.store_document(failing)
    assert (document["ok"], document["pending_shares"], document["last_error"]) == (
        False, 0, "connection refused",
    )


def stats(worker: str, hour: float, last: float | None = None) -> WorkerStats:
    return WorkerStats(worker, (hour * 2, hour * 1.5, hour, hour / 2), 40, 80.0, 1, last, {"stale-share": 4})


def test_worker_documents_join_live_channels_and_store() -> None:
    live = {
        "alice": WorkerLive(accepted=5, difficulty=5.0, rejected={"stale-share": 1}, blocks=1, last_share_at=T0),
        "bob": WorkerLive(accepted=2, last_share_at=T0 - 100),
    }
    channels = [views.ChannelView("alice", 1e12), views.ChannelView("alice", 2e12), views.ChannelView("carol", 5e12)]
    stored = [stats("bob", 3e9, last=T0 - 50), stats("dave", 9e9, last=T0 - 999)]

    accepted_rates = {"alice": 2.5e12, "bob": 1e9}
    documents = views.worker_documents(live, channels, stored, lambda name: accepted_rates.get(name, 0.0))

    # Busiest first: accepted hash rate, then vardiff's estimate, then the store's hour, the name.
    assert [d["name"] for d in documents] == ["alice", "bob", "carol", "dave"]
    alice, bob, carol, dave = documents
    assert alice == {
        "name": "alice",
        "connected": True,
        "channels": 2,
        "hash_rate": 2.5e12,
        "hash_rate_estimate": 3e12,
        "accepted": 5,
        "rejected": {"stale-share": 1},
        "blocks": 1,
        "last_share_at": T0,
        "stored": {
            "hash_rates": {"1m": 0.0, "15m": 0.0, "1h": 0.0, "24h": 0.0},
            "shares_24h": 0,
            "difficulty_24h": 0.0,
            "blocks": 0,
            "rejected": {},
        },
    }
    assert (carol["connected"], carol["channels"], carol["accepted"], carol["last_share_at"]) == (True, 1, 0, None)
    assert (bob["connected"], bob["channels"], bob["hash_rate"], bob["hash_rate_estimate"]) == (False, 0, 1e9, 0.0)
    assert (carol["hash_rate"], carol["hash_rate_estimate"]) == (0.0, 5e12)
    assert bob["last_share_at"] == T0 - 50  # the later of live and stored
    assert bob["stored"] == {
        "hash_rates": {"1m": 6e9, "15m": 4.5e9, "1h": 3e9, "24h": 1.5e9},
        "shares_24h": 40,
        "difficulty_24h": 80.0,
        "blocks": 1,
        "rejected": {"stale-share": 4},
    }
    assert dave["accepted"] == 0 and dave["stored"]["hash_rates"]["1h"] == 9e9


def test_worker_documents_without_a_store_say_null() -> None:
    documents = views.worker_documents({"alice": WorkerLive(accepted=1, last_share_at=0.0)}, [], None)
    assert documents == [
        {
            "name": "alice",
            "connected": False,
            "channels": 0,
            "hash_rate": 0.0,
            "hash_rate_estimate": 0.0,
            "accepted": 1,
            "rejected": {},
            "blocks": 0,
            "last_share_at": 0.0,  # a time of 0 is a time, not "never"
            "stored": None,
        }
    ]


def test_workers_of_equal_rate_sort_by_name() -> None:
    names = ["zed", "amy", "mo"]
    documents = views.worker_documents({n: WorkerLive() for n in names}, [], None)
    assert [d["name"] for d in documents] == ["amy", "mo", "zed"]


def test_block_documents_latest_first() -> None:
    blocks = [
        BlockRecord("aa" * 32, "accepted", T0, "alice", 100, 312_500_000),
        BlockRecord("bb" * 32, "rejected", T0 + 60, None, None, None, "high-hash"),
    ]
    assert views.block_documents(blocks) == [
        {"hash": "bb" * 32, "status": "rejected", "at": T0 + 60, "worker": None, "height": None, "reward": None,
         "reason": "high-hash"},
        {"hash": "aa" * 32, "status": "accepted", "at": T0, "worker": "alice", "height": 100,
         "reward": 312_500_000, "reason": ""},
    ]
    assert views.block_documents([]) == []


def test_upstream_documents_states_and_order() -> None:
    live = {
        "sv2://b": UpstreamLive("sv2://b", connected=False, since=T0, connects=1, disconnects=1, last_reason="eof"),
        "sv2://a": UpstreamLive("sv2://a", connected=True, since=T0 + 1, connects=1),
        "sv2://seen": UpstreamLive("sv2://seen"),
    }
    documents = views.upstream_documents(["sv2://a", "sv2://b", "sv2://never"], live, None)
    # Configured URLs first, in their order, then any other seen.
    assert [(d["url"], d["state"]) for d in documents] == [
        ("sv2://a", "connected"),
        ("sv2://b", "disconnected"),
        ("sv2://never", "connecting"),
        ("sv2://seen", "connecting"),
    ]
    assert documents[1] == {
        "url": "sv2://b",
        "state": "disconnected",
        "since": T0,
        "connects": 1,
        "disconnects": 1,
        "last_reason": "eof",
        "events": None,
    }
    assert documents[2] == {
        "url": "sv2://never",
        "state": "connecting",
        "since": None,
        "connects": 0,
        "disconnects": 0,
        "last_reason": "",
        "events": None,
    }


def test_upstream_documents_with_the_stores_history() -> None:
    history = [
        UpstreamEventRecord("sv2://a", "connected", T0),
        UpstreamEventRecord("sv2://b", "disconnected", T0 + 1, "eof"),
        UpstreamEventRecord("sv2://a", "disconnected", T0 + 2, "reset"),
    ]
    documents = views.upstream_documents(["sv2://a", "sv2://b"], {}, history)
    assert documents[0]["events"] == [
        {"event": "connected", "at": T0, "reason": ""},
        {"event": "disconnected", "at": T0 + 2, "reason": "reset"},
    ]
    assert documents[1]["events"] == [{"event": "disconnected", "at": T0 + 1, "reason": "eof"}]


def test_payout_document() -> None:
    assert views.payout_document(1000, [("alice", 30.0, 0.75), ("bob", 10.0, 0.25)]) == {
        "window": 1000,
        "total_difficulty": 40.0,
        "workers": [
            {"worker": "alice", "difficulty": 30.0, "fraction": 0.75},
            {"worker": "bob", "difficulty": 10.0, "fraction": 0.25},
        ],
    }
    assert views.payout_document(5, []) == {"window": 5, "total_difficulty": 0, "workers": []}


def test_event_document_of_a_share() -> None:
    event = ShareSubmitted(3, 4, "alice", 2.5, False, "stale-share")
    assert views.event_document(event, T0) == {
        "type": "ShareSubmitted",
        "at": T0,
        "channel_id": 3,
        "job_id": 4,
        "worker": "alice",
        "difficulty": 2.5,
        "accepted": False,
        "error_code": "stale-share",
        "is_block": False,
    }
    assert views.event_document(HandshakeFailed("1.2.3.4:5", "timeout"), 1.0) == {
        "type": "HandshakeFailed", "at": 1.0, "peer": "1.2.3.4:5", "reason": "timeout",
    }


def test_event_document_spells_short_bytes_and_summarises_long_ones() -> None:
    assert views.event_document(StratumV2MessageReceived(b"\x01\xff", "p"), 0.0)["data"] == "01ff"
    assert views.event_document(StratumV2MessageReceived(b"\x00" * 64, "p"), 0.0)["data"] == "00" * 64
    assert views.event_document(StratumV2MessageReceived(b"\x00" * 65, "p"), 0.0)["data"] == {"bytes": 65}


class Kind(enum.Enum):
    FULL = "full"


@dataclass
class Tx:
    txid: bytes


@dataclass
class Template:
    height: int
    kind: Kind
    prev_hash: bytes
    transactions: list[Tx]
    note: object


def test_event_document_keeps_a_nested_objects_scalars_only() -> None:
    template = Template(840_000, Kind.FULL, b"\x11" * 32, [Tx(b"\x22" * 32)] * 3000, object())
    document = views.event_document(BlockTemplateUpdated(template, template_id=9, clean=True), T0)
    assert document == {
        "type": "BlockTemplateUpdated",
        "at": T0,
        "template": {"height": 840_000, "prev_hash": "11" * 32},
        "template_id": 9,
        "clean": True,
    }
    json.dumps(document)


def test_event_document_of_tuples_and_unknown_values() -> None:
    assert views.event_document(MiningJobCreated(7, (1, 2, 3), 4, True), 0.0)["channel_ids"] == [1, 2, 3]
    assert views.event_document(BlockTemplateUpdated(Kind.FULL), 0.0)["template"] == "full"
    assert views.event_document(BlockTemplateUpdated(["a", ("b", "c")]), 0.0)["template"] == ["a", 2]
    assert views.event_document(BlockTemplateUpdated({"k": 1}), 0.0)["template"] == "{'k': 1}"


def test_merge_mining_documents_say_why_a_chain_is_out() -> None:
    from sv2proxy.merge_mining.coordinator import SecondaryChain
    from sv2proxy.web.live import AuxLive
    from sv2proxy.web.views import merge_mining_documents

    chains = [
        SecondaryChain("namecoin", b"\xff" * 32, chain_id=1, height=7, live=True, reason="stale text"),
        SecondaryChain("other", b"\xff" * 32, chain_id=2, height=None, live=False, reason="timed out after 5 s"),
    ]
    live = {"namecoin": AuxLive(blocks=2, rewards=100, last_height=7, last_at=T0)}
    assert merge_mining_documents(chains, live) == [
        {"chain": "namecoin", "chain_id": 1, "live": True, "reason": "", "height": 7, "blocks": 2,
         "rewards": 100, "last_block_at": T0},
        {"chain": "other", "chain_id": 2, "live": False, "reason": "timed out after 5 s", "height": None,
         "blocks": 0, "rewards": 0, "last_block_at": None},
    ]
