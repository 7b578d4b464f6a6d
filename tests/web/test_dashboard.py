"""The dashboard page: pure HTML with inline SVG, from the API's documents."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.web import views
from sv2proxy.web.dashboard import (
    CHART_WORKERS,
    TABLE_ROWS,
    DashboardData,
    format_duration,
    format_hash_rate,
    line_chart,
    render_dashboard,
)
from sv2proxy.web.live import UpstreamLive, WorkerLive

T0 = 1_800_000_000.0
HOUR = 3600.0


def status(**changes: Any) -> dict[str, Any]:
    document = views.status_document(
        mode="pool", version="1.0", now=T0, started_at=T0 - 7200, connections=2, channels=3, hash_rate=4.2e15,
        hash_rate_estimate=4.0e15, hash_rate_window=600.0, accepted=12, rejected={"stale-share": 3},
        template_age=5.0, template_height=840_000,
        upstreams=views.upstream_documents(
            ["sv2://pool.example:3336"], {"sv2://pool.example:3336": UpstreamLive("sv2://pool.example:3336")}, None
        ),
        store=None, blocks_found=1,
    )
    document.update(changes)
    return document


def series(rate: float, points: int = 60) -> list[tuple[float, float]]:
    return [(T0 - HOUR + i * 60, rate * (1 + i % 3)) for i in range(points)]


def data(workers: list[dict[str, Any]] | None = None, **changes: Any) -> DashboardData:
    if workers is None:
        workers = views.worker_documents(
            {"alice": WorkerLive(accepted=10, rejected={"stale-share": 3}, last_share_at=T0 - 30),
             "bob": WorkerLive(accepted=2, last_share_at=T0 - 300)},
            [views.ChannelView("alice", 2.9e15), views.ChannelView("bob", 1.1e15)],
            None,
            {"alice": 3e15, "bob": 1.2e15}.__getitem__,
        )
    blocks = views.block_documents([views.BlockRecord("ab" * 32, "accepted", T0 - 600, "alice", 840_000)])
    fields: dict[str, Any] = {
        "status": status(),
        "workers": workers,
        "blocks": blocks,
        "pool_history": series(4e15),
        "worker_histories": [(w["name"], series(w["hash_rate"])) for w in workers],
        "now": T0,
        "span": HOUR,
    }
    fields.update(changes)
    return DashboardData(**fields)


class Collector(HTMLParser):
    """Tags with their attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Collector:
    collector = Collector()
    collector.feed(page)
    collector.close()
    return collector


def test_the_page_shows_the_figures_and_charts() -> None:
    page = render_dashboard(data())
    assert page.startswith("<!DOCTYPE html>")
    parsed = parse(page)
    charts = {attrs["data-chart"]: attrs for tag, attrs in parsed.tags if tag == "svg"}
    assert set(charts) == {"pool-hash-rate", "worker-hash-rate", "shares"}
    assert charts["pool-hash-rate"]["data-points"] == "60"
    assert charts["worker-hash-rate"]["data-points"] == "120"
    assert charts["shares"]["data-points"] == "2"
    circles = [attrs for tag, attrs in parsed.tags if tag == "circle" and attrs.get("class") == "point"]
    assert len(circles) == 180
    polylines = [attrs["data-series"] for tag, attrs in parsed.tags if tag == "polyline"]
    assert polylines == ["pool", "alice", "bob"]
    text = "".join(parsed.text)
    assert "4.2 PH/s" in text  # the pool tile
    assert "3 PH/s" in text and "1.2 PH/s" in text  # the workers' rows
    assert "840000" in text
    assert "sv2://pool.example:3336" in text
    assert "2.0 h" in text  # uptime
    assert "no store: live figures since start only" in text
    # The found block is drawn on the pool chart.
    assert any(tag == "line" and attrs.get("class") == "block-marker" for tag, attrs in parsed.tags)


def test_long_tables_show_the_busiest_and_count_the_rest() -> None:
    many = 3 * TABLE_ROWS
    workers = views.worker_documents(
        {f"rig{i:04}": WorkerLive(accepted=1, last_share_at=T0) for i in range(many)},
        [views.ChannelView(f"rig{i:04}", float(i)) for i in range(many)],
        None,
    )
    page = render_dashboard(data(workers=workers, worker_histories=[]))
    parsed = parse(page)
    rows = [attrs for tag, attrs in parsed.tags if tag == "tr"]
    assert len(rows) == (1 + TABLE_ROWS) + (1 + 1) + (1 + 1)  # workers, then a block, then an upstream
    text = "".join(parsed.text)
    assert f"rig{many - 1:04}" in text and f"rig{many - TABLE_ROWS:04}" in text  # the fastest first
    assert f"rig{many - TABLE_ROWS - 1:04}" not in text
    assert f"{many - TABLE_ROWS} more workers not shown" in text
    assert f"{many} more" not in text and "more blocks" not in text
    assert "Workers" in text and str(many) in text  # the tile still counts every worker


def test_an_empty_daemon_renders() -> None:
    page = render_dashboard(data(workers=[], blocks=[], pool_history=[], worker_histories=[],
                                 status=status(hash_rate=0.0, upstreams=[])))
    text = "".join(parse(page).text)
    assert "No workers yet." in text
    assert "No blocks found yet." in text
    assert "no shares yet" in text
    assert "Upstream pools" not in text
    assert "0 H/s" in text


def test_a_store_is_described() -> None:
    store = views.store_document(views.StoreState("sqlite shares.db", 5, 9, 2, 5, "database is locked"))
    text = "".join(parse(render_dashboard(data(status=status(store=store)))).text)
    assert "store sqlite shares.db: 4 pending, failing: database is locked" in text


def test_worker_names_are_escaped() -> None:
    evil = '<script>alert("x")</script>'
    workers = views.worker_documents(
        {evil: WorkerLive(accepted=3, rejected={"<xreason>": 1}, last_share_at=T0 - 5)},
        [views.ChannelView(evil, 1e12)],
        None,
    )
    blocks = views.block_documents(
        [views.BlockRecord("cd" * 32, "rejected", T0 - 60, evil, 1, None, "<xblock>bad</xblock>")]
    )
    page = render_dashboard(
        data(workers=workers, blocks=blocks, notes=("<xnote>n</xnote>",),
             status=status(upstreams=[{"url": "sv2://<xurl>", "state": "connected", "since": T0, "disconnects": 0,
                                        "last_reason": "<xlast>"}]))
    )
    assert "<script" not in page
    assert "<x" not in page
    for name in ("script", "xreason", "xblock", "xnote", "xurl", "xlast"):
        assert f"&lt;{name}&gt;" in page
    parsed = parse(page)
    assert not [tag for tag, _ in parsed.tags if tag == "script" or tag.startswith("x")]
    # Escaped, not dropped: a browser shows the name as it is.
    assert evil in "".join(parsed.text)
    assert evil in [attrs.get("data-series") for tag, attrs in parsed.tags if tag == "polyline"]


def test_the_page_loads_nothing_from_elsewhere() -> None:
    page = render_dashboard(data())
    assert "http://" not in page and "https://" not in page
    assert "//" not in re.sub(r"sv2://", "", page)  # no protocol-relative URL either
    parsed = parse(page)
    assert not [tag for tag, _ in parsed.tags if tag in ("script", "link", "img", "iframe")]
    hrefs = [attrs["href"] for tag, attrs in parsed.tags if tag == "a"]
    assert hrefs and all(href and not re.match(r"[a-z]+:|/", href) for href in hrefs)
    assert "url(" not in page and "@import" not in page


def test_only_the_busiest_workers_get_a_line() -> None:
    names = [f"w{i}" for i in range(CHART_WORKERS + 3)]
    histories = [(name, series(1e12)) for name in names]
    parsed = parse(render_dashboard(data(worker_histories=histories)))
    lines = [attrs["data-series"] for tag, attrs in parsed.tags if tag == "polyline"]
    assert lines == ["pool", *names[:CHART_WORKERS]]


def test_a_chart_scales_to_a_round_top() -> None:
    chart = line_chart("c", "C", [("s", [(T0 - 10, 3.7e18)])], T0 - 60, T0)
    labels = re.findall(r'text-anchor="end">([^<]*)</text>', chart)
    assert labels[:5] == ["0 H/s", "1.25 EH/s", "2.5 EH/s", "3.75 EH/s", "5 EH/s"]


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        (0.0, "0 H/s"),
        (0.5, "0.5 H/s"),
        (999.0, "999 H/s"),
        (999.6, "1 kH/s"),
        (1234.0, "1.23 kH/s"),
        (999_999.0, "1 MH/s"),
        (1.5e9, "1.5 GH/s"),
        (2.5e12, "2.5 TH/s"),
        (7.77e15, "7.77 PH/s"),
        (1e18, "1 EH/s"),
        (850e18, "850 EH/s"),
        (1e21, "1 ZH/s"),
        (1e24, "1 YH/s"),
        (1e27, "1 RH/s"),
        (1e30, "1 QH/s"),
        (2e33, "2000 QH/s"),
    ],
)
def test_hash_rate_units_scale_through_exahashes_and_beyond(rate: float, text: str) -> None:
    assert format_hash_rate(rate) == text


@given(st.floats(min_value=1.0, max_value=1e40))
def test_hash_rates_never_spell_an_exponent(rate: float) -> None:
    number, unit = format_hash_rate(rate).split(" ")
    assert "e" not in number
    assert unit.endswith("H/s")
    assert float(number) < 1000 or unit == "QH/s"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "–"), (-3, "0 s"), (42, "42 s"), (600, "10 min"), (5400, "1.5 h"), (3 * 86400, "3.0 d")],
)
def test_durations(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text
