"""Prometheus ``/metrics``: one :class:`CollectorRegistry` per daemon, never the global one.

Gauges and counters are read from the daemon when Prometheus scrapes (a custom collector over
:class:`~sv2proxy.web.context.WebContext`), so nothing is counted twice and a daemon in a test
process never leaks into another's figures.  The new-block-to-jobs latency is a real histogram,
observed by the mining service's tip hook.  Counters count since this process started;
Prometheus' ``rate()`` and ``increase()`` handle restarts.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sv2proxy.store.records import HASHES_PER_DIFFICULTY
from sv2proxy.web.context import WebContext

#: Seconds from a new chain tip to every miner's job being handed to its connection.
TIP_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

PREFIX = "sv2proxy"


class DaemonCollector(Collector):
    """The daemon's state at scrape time."""

    def __init__(self, context: WebContext) -> None:
        self.context = context

    def collect(self) -> Iterator[Metric]:
        context = self.context
        live = context.live
        now = context.now()
        info = GaugeMetricFamily(f"{PREFIX}_info", "This daemon: version and mode", labels=["version", "mode"])
        info.add_metric([context.version, context.mode], 1)
        yield info
        yield GaugeMetricFamily(
            f"{PREFIX}_start_time_seconds", "When the daemon's web side started (Unix time)", value=context.started_at
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_miner_connections", "Miner connections with an open channel", value=context.connections()
        )
        channels = context.channels()
        yield GaugeMetricFamily(f"{PREFIX}_channels", "Open mining channels", value=len(channels))
        yield GaugeMetricFamily(
            f"{PREFIX}_hash_rate",
            "Hash rate from accepted difficulty over the last 15 minutes (H/s), as the API and dashboard show it",
            value=live.pool_rate(now),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_hash_rate_estimate", "Hash rate of all channels as vardiff estimates it (H/s)",
            value=context.mining.total_hash_rate(),
        )
        per_worker = GaugeMetricFamily(
            f"{PREFIX}_worker_hash_rate",
            "Hash rate of each connected worker from accepted difficulty over the last 15 minutes (H/s)",
            labels=["worker"],
        )
        for worker in sorted({channel.worker for channel in channels}):
            per_worker.add_metric([worker], live.worker_rate(worker, now))
        yield per_worker
        yield CounterMetricFamily(
            f"{PREFIX}_shares_accepted", "Shares accepted", value=live.accepted
        )
        yield CounterMetricFamily(
            f"{PREFIX}_accepted_hashes",
            f"Hashes the accepted shares stand for (difficulty x {HASHES_PER_DIFFICULTY}); rate() is the hash rate",
            value=live.accepted_difficulty * HASHES_PER_DIFFICULTY,
        )
        rejected = CounterMetricFamily(f"{PREFIX}_shares_rejected", "Shares rejected, by reason", labels=["reason"])
        for reason, count in sorted(live.rejected.items()):
            rejected.add_metric([reason], count)
        yield rejected
        yield CounterMetricFamily(
            f"{PREFIX}_blocks_found", "Blocks found by this daemon's miners", value=live.blocks_found
        )
        age = live.template_age(now)
        if age is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_template_age_seconds", "Seconds since the job source last gave new work", value=age
            )
        up = GaugeMetricFamily(f"{PREFIX}_upstream_up", "1 while the upstream pool's channel is open", labels=["url"])
        disconnects = CounterMetricFamily(
            f"{PREFIX}_upstream_disconnects", "Times the upstream pool connection was lost", labels=["url"]
        )
        for document in context.upstreams():
            up.add_metric([document["url"]], 1 if document["state"] == "connected" else 0)
            disconnects.add_metric([document["url"]], document["disconnects"])
        yield up
        yield disconnects
        failures = CounterMetricFamily(
            f"{PREFIX}_noise_handshake_failures", "Failed Noise handshakes of miners, by kind", labels=["kind"]
        )
        for kind in ("invalid", "timeout"):
            failures.add_metric([kind], live.handshake_failures.get(kind, 0))
        yield failures
        chains = context.merge_mining()
        if chains:
            aux_up = GaugeMetricFamily(
                f"{PREFIX}_aux_chain_up", "1 while the aux chain's block is in the commitment", labels=["chain"]
            )
            aux_blocks = CounterMetricFamily(
                f"{PREFIX}_aux_blocks", "Aux chain blocks accepted by the chain's node", labels=["chain"]
            )
            aux_rewards = CounterMetricFamily(
                f"{PREFIX}_aux_rewards", "Aux block rewards, in the chain's smallest unit", labels=["chain"]
            )
            for chain in chains:
                aux_up.add_metric([chain["chain"]], 1 if chain["live"] else 0)
                aux_blocks.add_metric([chain["chain"]], chain["blocks"])
                aux_rewards.add_metric([chain["chain"]], chain["rewards"])
            yield aux_up
            yield aux_blocks
            yield aux_rewards
        store = context.store_state()
        if store is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_store_up", "1 while the share store's last commit succeeded", value=store.last_error is None
            )
            yield GaugeMetricFamily(
                f"{PREFIX}_store_pending_shares",
                "Accepted shares not durable yet (their acknowledgements wait)",
                value=max(0, store.last_ticket - store.durable),
            )
            yield CounterMetricFamily(f"{PREFIX}_store_commits", "Share store commits", value=store.commits)
            yield CounterMetricFamily(
                f"{PREFIX}_store_shares_committed", "Shares made durable", value=store.shares_committed
            )
            yield CounterMetricFamily(
                f"{PREFIX}_store_records_set_aside",
                "Records the database refused, kept in the data directory's store-quarantine.jsonl",
                value=store.set_aside,
            )


class Metrics:
    """One daemon's registry: the collector and the tip-latency histogram."""

    def __init__(self, context: WebContext) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DaemonCollector(context))
        self.tip_latency = Histogram(
            f"{PREFIX}_new_block_to_jobs_seconds",
            "Seconds from a new chain tip to the last miner's job handed to its connection",
            buckets=TIP_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_tip_latency(self, seconds: float) -> None:
        self.tip_latency.observe(max(0.0, seconds))

    def render(self) -> bytes:
        return generate_latest(self.registry)
