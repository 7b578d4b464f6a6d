"""/metrics: the daemon's own registry, read at scrape time and parsed as Prometheus does."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from sv2proxy.events import (
    BlockMined,
    BlockTemplateUpdated,
    HandshakeFailed,
    MiningPoolConnected,
    MiningPoolDisconnected,
    ShareSubmitted,
)
from sv2proxy.store.records import HASHES_PER_DIFFICULTY
from sv2proxy.web.metrics import TIP_LATENCY_BUCKETS, Metrics

from .fakes import T0, FakeChannel, FakeMining, FakeStore, make_context


def scrape(metrics: Metrics) -> dict[str, list[Sample]]:
    """Sample lists by family name, from the text Prometheus would read."""
    return {family.name: family.samples for family in text_string_to_metric_families(metrics.render().decode())}


def values(samples: list[Sample], label: str | None = None) -> dict[str | None, float]:
    return {(s.labels[label] if label else None): s.value for s in samples}


def mining() -> FakeMining:
    return FakeMining(
        [FakeChannel(1, "alice.rig1"), FakeChannel(2, "alice.rig1"), FakeChannel(3, "bob")],
        {1: 1e12, 2: 2e12, 3: 5e11},
    )


def test_an_idle_daemon() -> None:
    context, _, _ = make_context(mode="solo")
    families = scrape(Metrics(context))
    assert families["sv2proxy_info"] == [Sample("sv2proxy_info", {"version": "9.9.9", "mode": "solo"}, 1.0)]
    assert values(families["sv2proxy_start_time_seconds"]) == {None: T0}
    assert values(families["sv2proxy_miner_connections"]) == {None: 0.0}
    assert values(families["sv2proxy_channels"]) == {None: 0.0}
    assert values(families["sv2proxy_hash_rate"]) == {None: 0.0}
    assert families["sv2proxy_worker_hash_rate"] == []
    assert values(families["sv2proxy_shares_accepted"]) == {None: 0.0}
    assert families["sv2proxy_shares_rejected"] == []
    assert values(families["sv2proxy_noise_handshake_failures"], "kind") == {"invalid": 0.0, "timeout": 0.0}
    # Never any work yet: no age rather than a made-up one; no store: no store figures.
    assert "sv2proxy_template_age_seconds" not in families
    assert not [name for name in families if name.startswith("sv2proxy_store_")]


def test_figures_reflect_the_context() -> None:
    context, bus, clock = make_context(mining(), upstream_urls=("sv2://a:1", "sv2://b:2"), mode="proxy")
    bus.publish(ShareSubmitted(1, 1, "alice.rig1", 2.0, True))
    bus.publish(ShareSubmitted(3, 1, "bob", 0.5, True))
    bus.publish(ShareSubmitted(3, 1, "bob", 1.0, False, "stale-share"))
    bus.publish(ShareSubmitted(3, 1, "bob", 1.0, False, "stale-share"))
    bus.publish(ShareSubmitted(3, 1, "bob", 1.0, False, "invalid-job-id"))
    bus.publish(BlockMined("aa" * 32, worker="bob"))
    bus.publish(BlockTemplateUpdated(object()))
    bus.publish(MiningPoolConnected("sv2://a:1"))
    bus.publish(MiningPoolConnected("sv2://b:2"))
    bus.publish(MiningPoolDisconnected("sv2://b:2", "eof"))
    bus.publish(HandshakeFailed("x", "timeout"))
    bus.publish(HandshakeFailed("y", "bad tag"))
    bus.publish(HandshakeFailed("z", "bad tag"))
    clock.advance(42)

    families = scrape(Metrics(context))
    assert families["sv2proxy_info"][0].labels == {"version": "9.9.9", "mode": "proxy"}
    assert values(families["sv2proxy_miner_connections"]) == {None: 3.0}  # no manager: one per channel
    assert values(families["sv2proxy_channels"]) == {None: 3.0}
    # Hash rates from accepted difficulty over the window (the 42 s since start here), as the
    # API and the store compute them; vardiff's estimate beside them.
    assert values(families["sv2proxy_hash_rate"]) == {None: pytest.approx(2.5 * HASHES_PER_DIFFICULTY / 42)}
    assert values(families["sv2proxy_hash_rate_estimate"]) == {None: 3.5e12}
    assert values(families["sv2proxy_worker_hash_rate"], "worker") == {
        "alice.rig1": pytest.approx(2.0 * HASHES_PER_DIFFICULTY / 42),
        "bob": pytest.approx(0.5 * HASHES_PER_DIFFICULTY / 42),
    }
    assert [s.name for s in families["sv2proxy_shares_accepted"]] == ["sv2proxy_shares_accepted_total"]
    assert values(families["sv2proxy_shares_accepted"]) == {None: 2.0}
    assert values(families["sv2proxy_accepted_hashes"]) == {None: 2.5 * HASHES_PER_DIFFICULTY}
    assert values(families["sv2proxy_shares_rejected"], "reason") == {"stale-share": 2.0, "invalid-job-id": 1.0}
    assert values(families["sv2proxy_blocks_found"]) == {None: 1.0}
    assert values(families["sv2proxy_template_age_seconds"]) == {None: 42.0}
    assert values(families["sv2proxy_upstream_up"], "url") == {"sv2://a:1": 1.0, "sv2://b:2": 0.0}
    assert values(families["sv2proxy_upstream_disconnects"], "url") == {"sv2://a:1": 0.0, "sv2://b:2": 1.0}
    assert values(families["sv2proxy_noise_handshake_failures"], "kind") == {"invalid": 2.0, "timeout": 1.0}


def test_figures_are_read_at_each_scrape() -> None:
    context, bus, _ = make_context()
    metrics = Metrics(context)
    assert values(scrape(metrics)["sv2proxy_shares_accepted"]) == {None: 0.0}
    bus.publish(ShareSubmitted(1, 1, "alice", 1.0, True))
    assert values(scrape(metrics)["sv2proxy_shares_accepted"]) == {None: 1.0}


class Owner:
    pass


class ManagedMining(FakeMining):
    """A mining service whose channel manager says which connection owns each channel."""

    def __init__(self) -> None:
        super().__init__([FakeChannel(1, "a"), FakeChannel(2, "a"), FakeChannel(3, "b")], {})
        first, second = Owner(), Owner()
        owners = {1: first, 2: first, 3: second}
        self.manager = type("Manager", (), {"owner_of": staticmethod(owners.__getitem__)})()


def test_connections_count_owners_not_channels() -> None:
    context, _, _ = make_context(ManagedMining())
    families = scrape(Metrics(context))
    assert values(families["sv2proxy_miner_connections"]) == {None: 2.0}
    assert values(families["sv2proxy_channels"]) == {None: 3.0}


@pytest.mark.parametrize(("error", "up"), [(None, 1.0), ("disk full", 0.0)])
def test_store_figures(error: str | None, up: float) -> None:
    store = FakeStore(durable=7, last_ticket=10, commits=3, shares_committed=7, last_error=error)
    context, _, _ = make_context(store=store)
    families = scrape(Metrics(context))
    assert values(families["sv2proxy_store_up"]) == {None: up}
    assert values(families["sv2proxy_store_pending_shares"]) == {None: 3.0}
    assert values(families["sv2proxy_store_commits"]) == {None: 3.0}
    assert values(families["sv2proxy_store_shares_committed"]) == {None: 7.0}


def test_tip_latency_histogram_observes() -> None:
    context, _, _ = make_context()
    metrics = Metrics(context)
    metrics.observe_tip_latency(0.003)
    metrics.observe_tip_latency(0.2)
    metrics.observe_tip_latency(-1.0)  # a clock that went back counts as instant
    metrics.observe_tip_latency(60.0)
    samples = scrape(metrics)["sv2proxy_new_block_to_jobs_seconds"]
    buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    assert [float(le) for le in buckets if le != "+Inf"] == list(TIP_LATENCY_BUCKETS)
    assert buckets["0.0005"] == 1.0
    assert buckets["0.0025"] == 1.0
    assert buckets["0.005"] == 2.0
    assert buckets["0.25"] == 3.0
    assert buckets["5.0"] == 3.0
    assert buckets["+Inf"] == 4.0
    totals = {s.name: s.value for s in samples if not s.name.endswith("_bucket")}
    assert totals["sv2proxy_new_block_to_jobs_seconds_count"] == 4.0
    assert totals["sv2proxy_new_block_to_jobs_seconds_sum"] == pytest.approx(60.203)


def test_each_daemon_has_its_own_registry() -> None:
    first, _, _ = make_context()
    second, _, _ = make_context()
    one, two = Metrics(first), Metrics(second)
    one.observe_tip_latency(0.1)
    count = "sv2proxy_new_block_to_jobs_seconds_count"
    assert {s.name: s.value for s in scrape(one)["sv2proxy_new_block_to_jobs_seconds"]}[count] == 1.0
    assert {s.name: s.value for s in scrape(two)["sv2proxy_new_block_to_jobs_seconds"]}[count] == 0.0
