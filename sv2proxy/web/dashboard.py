"""The dashboard: one server-rendered HTML page with inline SVG charts, no script, no CDN.

Everything here is pure: :func:`render_dashboard` takes the API's documents and the hash rate
series and returns the page.  The charts are plain SVG (a ``viewBox`` scaled to the width of
the screen, so they read on a phone); every data point is a ``<circle class="point">`` with a
``<title>`` tooltip, and each chart carries ``data-chart`` and ``data-points`` for tests and
for anyone scraping the page.  The page refreshes itself with a meta tag.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

#: Line colours, in order (readable on light and dark backgrounds).
PALETTE = ("#2f7ed8", "#e4572e", "#17a589", "#f39c12", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d")
#: Workers drawn one line each on the per-worker chart (the busiest).
CHART_WORKERS = 6
#: Rows a table shows (workers the busiest first, blocks the latest); the rest are counted.
TABLE_ROWS = 100

Series = Sequence[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class DashboardData:
    """What the page shows; ``span`` is the seconds the charts cover, ending at ``now``."""

    status: Mapping[str, Any]
    workers: Sequence[Mapping[str, Any]]
    blocks: Sequence[Mapping[str, Any]]
    pool_history: Series
    worker_histories: Sequence[tuple[str, Series]]
    now: float
    span: float
    refresh: int = 30
    query: str = ""  # kept on the page's own links (e.g. the span)
    notes: Sequence[str] = field(default_factory=tuple)


# -- formatting ------------------------------------------------------------------------------

_UNITS = ("H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s", "ZH/s", "YH/s", "RH/s", "QH/s")


def format_hash_rate(rate: float) -> str:
    """``1.23 TH/s``: three significant digits and an SI unit."""
    unit = 0
    # 999.5 and up rounds to 1000 at three digits, which ``.3g`` would spell "1e+03".
    while abs(rate) >= 999.5 and unit < len(_UNITS) - 1:
        rate /= 1000
        unit += 1
    if abs(rate) >= 999.5:
        return f"{rate:.0f} {_UNITS[unit]}"  # beyond the largest SI prefix: never an exponent
    return f"{rate:.3g} {_UNITS[unit]}"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def format_time(at: float | None) -> str:
    if at is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at least ``value`` (chart tops)."""
    if value <= 0:
        return 1.0
    power = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1.0
    while power > value:
        power /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


# -- charts ----------------------------------------------------------------------------------

_WIDTH, _HEIGHT = 640, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 84, 12, 12, 28


def line_chart(
    name: str,
    title: str,
    series: Sequence[tuple[str, Series]],
    start: float,
    end: float,
    markers: Sequence[tuple[float, str]] = (),
) -> str:
    """An SVG line chart of hash rates over ``start..end``; ``markers`` are (time, label) lines."""
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    top = _nice_ceiling(max((rate for _, points in series for _, rate in points), default=0.0))
    span = max(end - start, 1e-9)

    def x(at: float) -> float:
        return _LEFT + (min(max(at, start), end) - start) / span * plot_w

    def y(rate: float) -> float:
        return _TOP + plot_h - rate / top * plot_h

    parts = [
        f'<svg class="chart" data-chart="{escape(name)}" data-points="{sum(len(p) for _, p in series)}"'
        f' viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="{escape(title)}"'
        ' preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):
        value = top * i / 4
        gy = y(value)
        parts.append(f'<line class="grid" x1="{_LEFT}" y1="{gy:.1f}" x2="{_WIDTH - _RIGHT}" y2="{gy:.1f}"/>')
        parts.append(f'<text class="axis" x="{_LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end">')
        parts.append(f"{escape(format_hash_rate(value))}</text>")
    for i in range(5):
        at = start + span * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        label = "now" if i == 4 else f"-{format_duration(end - at)}"
        parts.append(
            f'<text class="axis" x="{x(at):.1f}" y="{_HEIGHT - 8}" text-anchor="{anchor}">{escape(label)}</text>'
        )
    for at, label in markers:
        if start <= at <= end:
            mx = x(at)
            parts.append(
                f'<line class="block-marker" x1="{mx:.1f}" y1="{_TOP}" x2="{mx:.1f}" y2="{_TOP + plot_h}">'
                f"<title>{escape(label)}</title></line>"
            )
    for index, (label, points) in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        if not points:
            continue
        coordinates = " ".join(f"{x(at):.1f},{y(rate):.1f}" for at, rate in points)
        parts.append(
            f'<polyline class="series" data-series="{escape(label)}" fill="none" stroke="{colour}"'
            f' stroke-width="2" points="{coordinates}"/>'
        )
        for at, rate in points:
            parts.append(
                f'<circle class="point" cx="{x(at):.1f}" cy="{y(rate):.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(label)} {escape(format_time(at))}: {escape(format_hash_rate(rate))}</title>"
                "</circle>"
            )
    parts.append("</svg>")
    if len(series) > 1:
        parts.append('<ul class="legend">')
        for index, (label, _) in enumerate(series):
            colour = PALETTE[index % len(PALETTE)]
            parts.append(f'<li><span class="swatch" style="background:{colour}"></span>{escape(label)}</li>')
        parts.append("</ul>")
    return "".join(parts)


def share_chart(workers: Sequence[Mapping[str, Any]]) -> str:
    """Horizontal bars: each worker's accepted and rejected shares since the daemon started."""
    rows = [w for w in workers if w["accepted"] or w["rejected"]][:12]
    row_h, label_w, width = 26, 150, _WIDTH
    height = max(1, len(rows)) * row_h + 8
    most = max((w["accepted"] + sum(w["rejected"].values()) for w in rows), default=0) or 1
    bar_w = width - label_w - 70
    parts = [
        f'<svg class="chart" data-chart="shares" data-points="{len(rows)}" viewBox="0 0 {width} {height}"'
        ' role="img" aria-label="Accepted and rejected shares per worker">',
        "<title>Accepted and rejected shares per worker since start</title>",
    ]
    if not rows:
        parts.append(f'<text class="axis" x="{width / 2}" y="20" text-anchor="middle">no shares yet</text>')
    for i, worker in enumerate(rows):
        top = 4 + i * row_h
        accepted = worker["accepted"]
        rejected = sum(worker["rejected"].values())
        acc_w = accepted / most * bar_w
        rej_w = rejected / most * bar_w
        name = worker["name"] if len(worker["name"]) <= 20 else worker["name"][:19] + "…"
        parts.append(f'<text class="axis" x="{label_w - 6}" y="{top + 16}" text-anchor="end">{escape(name)}</text>')
        parts.append(
            f'<rect class="point accepted" x="{label_w}" y="{top + 3}" width="{acc_w:.1f}" height="{row_h - 8}">'
            f"<title>{escape(worker['name'])}: {accepted} accepted</title></rect>"
        )
        if rejected:
            parts.append(
                f'<rect class="point rejected" x="{label_w + acc_w:.1f}" y="{top + 3}" width="{rej_w:.1f}"'
                f' height="{row_h - 8}"><title>{escape(worker["name"])}: {rejected} rejected'
                f" ({escape(', '.join(f'{k} {v}' for k, v in worker['rejected'].items()))})</title></rect>"
            )
        parts.append(
            f'<text class="axis" x="{label_w + acc_w + rej_w + 6:.1f}" y="{top + 16}">{accepted} / {rejected}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# -- the page --------------------------------------------------------------------------------

_CSS = """
:root{color-scheme:light dark;--fg:#1d2330;--bg:#f5f6f8;--card:#fff;--muted:#6b7280;--line:#e3e6eb;
--ok:#17a589;--bad:#e4572e}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--bg:#12151b;--card:#1b1f27;--muted:#9aa3af;
--line:#2a303a}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg)}
header{padding:12px 16px;display:flex;flex-wrap:wrap;gap:8px 16px;align-items:baseline}
header h1{font-size:1.2rem;margin:0}
header .muted{font-size:.85rem;overflow-wrap:anywhere;min-width:0}
main{padding:0 12px 24px;max-width:1100px;margin:0 auto}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px;margin:12px 0}
h2{font-size:1rem;margin:0 0 8px}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:8px;margin:12px 0}
.tile{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px}
.tile b{display:block;font-size:1.15rem}
.tile span,.muted{color:var(--muted)}
.chart{width:100%;height:auto;display:block}
.chart .grid{stroke:var(--line);stroke-width:1}
.chart .axis{fill:var(--muted);font-size:12px}
@media (max-width:640px){.chart .axis{font-size:18px}}
.chart .block-marker{stroke:#f39c12;stroke-width:2;stroke-dasharray:4 3}
.chart .accepted{fill:var(--ok)}
.chart .rejected{fill:var(--bad)}
.legend{list-style:none;padding:0;margin:6px 0 0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:.85rem}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);white-space:nowrap}
td.num,th.num{text-align:right}
.state-connected,.status-accepted{color:var(--ok)}
.state-disconnected,.status-rejected{color:var(--bad)}
code{font-size:.85em}
nav a{margin-right:10px}
"""


def _tile(label: str, value: str) -> str:
    return f'<div class="tile"><span>{escape(label)}</span><b>{escape(value)}</b></div>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: frozenset[int] = frozenset()) -> str:
    head = "".join(f'<th{" class=num" if i in numeric else ""}>{escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>"
        + "".join(f'<td{" class=num" if i in numeric else ""}>{cell}</td>' for i, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _more(hidden: int, what: str, link: str) -> str:
    """The note under a table cut at :data:`TABLE_ROWS`."""
    if hidden <= 0:
        return ""
    return f'<p class="muted more">{hidden} more {escape(what)} not shown: see <a href="{link}">{link}</a></p>'


def _short_hash(block_hash: str) -> str:
    return f'<code title="{escape(block_hash)}">{escape(block_hash[:16])}…</code>'


def render_dashboard(data: DashboardData) -> str:
    """The whole page."""
    status = data.status
    start, end = data.now - data.span, data.now
    store = status["store"]
    shares = status["shares"]
    rejected = sum(shares["rejected"].values())
    tiles = [
        _tile(f"Hash rate ({format_duration(status['hash_rate_window'])})", format_hash_rate(status["hash_rate"])),
        _tile("Workers", str(sum(1 for w in data.workers if w["connected"]))),
        _tile("Connections", str(status["connections"])),
        _tile("Channels", str(status["channels"])),
        _tile("Shares accepted", str(shares["accepted"])),
        _tile("Shares rejected", str(rejected)),
        _tile("Blocks found", str(status["blocks_found"])),
        _tile("Template age", format_duration(status["template"]["age"])),
        _tile("Uptime", format_duration(status["uptime"])),
    ]
    markers = [(b["at"], f"block {b['hash'][:16]}… by {b['worker'] or '?'} ({b['status']})") for b in data.blocks]
    pool_chart = line_chart(
        "pool-hash-rate", "Pool hash rate", [("pool", data.pool_history)], start, end, markers
    )
    worker_chart = line_chart(
        "worker-hash-rate", "Hash rate per worker", list(data.worker_histories[:CHART_WORKERS]), start, end
    )
    worker_rows = [
        [
            escape(w["name"]),
            "yes" if w["connected"] else "no",
            escape(format_hash_rate(w["hash_rate"])),
            escape(format_hash_rate(w["stored"]["hash_rates"]["15m"])) if w["stored"] else "–",
            str(w["accepted"]),
            str(sum(w["rejected"].values())),
            str(w["stored"]["blocks"] if w["stored"] else w["blocks"]),
            escape(format_duration(data.now - w["last_share_at"]) + " ago" if w["last_share_at"] is not None else "–"),
        ]
        for w in data.workers[:TABLE_ROWS]
    ]
    block_rows = [
        [
            escape(format_time(b["at"])),
            str(b["height"]) if b["height"] is not None else "–",
            _short_hash(b["hash"]),
            escape(b["worker"] or "–"),
            f'<span class="status-{escape(b["status"])}">{escape(b["status"])}</span>'
            + (f" <span class=muted>{escape(b['reason'])}</span>" if b["reason"] else ""),
        ]
        for b in data.blocks[:TABLE_ROWS]
    ]
    upstream_rows = [
        [
            escape(u["url"]),
            f'<span class="state-{escape(u["state"])}">{escape(u["state"])}</span>',
            escape(format_time(u["since"])),
            str(u["disconnects"]),
            escape(u["last_reason"]),
        ]
        for u in status["upstreams"]
    ]
    if store["enabled"]:
        store_text = f"store {store['backend']}: {store['pending_shares']} pending, " + (
            "ok" if store["ok"] else f"failing: {store['last_error']}"
        )
    else:
        store_text = "no store: live figures since start only"
    spans = " ".join(
        f'<a href="?span={seconds}">{label}</a>' for seconds, label in ((3600, "1 h"), (21600, "6 h"), (86400, "24 h"))
    )
    notes = "".join(f'<p class="muted">{escape(note)}</p>' for note in data.notes)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f'<meta http-equiv="refresh" content="{int(data.refresh)}">',
        "<title>sv2proxy</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>sv2proxy</h1>",
        f'<span class="muted">{escape(status["mode"])} mode · v{escape(status["version"])} ·'
        f" {escape(format_time(data.now))} · {escape(store_text)}</span></header>",
        "<main>",
        f'<div class="tiles">{"".join(tiles)}</div>',
        notes,
        f'<section><h2>Pool hash rate, last {escape(format_duration(data.span))}</h2>'
        f"<nav>{spans}</nav>{pool_chart}</section>",
        f"<section><h2>Hash rate per worker</h2>{worker_chart}</section>",
        f"<section><h2>Shares since start (accepted / rejected)</h2>{share_chart(data.workers)}</section>",
        "<section><h2>Workers</h2>",
        _table(
            ["Worker", "Online", "Hash rate", "15 min", "Accepted", "Rejected", "Blocks", "Last share"],
            worker_rows,
            frozenset({2, 3, 4, 5, 6}),
        )
        + _more(len(data.workers) - len(worker_rows), "workers", "api/v1/workers")
        if worker_rows
        else '<p class="muted">No workers yet.</p>',
        "</section>",
        "<section><h2>Blocks</h2>",
        _table(["Found", "Height", "Hash", "Worker", "Status"], block_rows, frozenset({1}))
        + _more(len(data.blocks) - len(block_rows), "blocks", "api/v1/blocks")
        if block_rows
        else '<p class="muted">No blocks found yet.</p>',
        "</section>",
    ]
    aux_rows = [
        [
            escape(c["chain"]),
            str(c["chain_id"]) if c["chain_id"] is not None else "–",
            '<span class="state-connected">in the commitment</span>'
            if c["live"]
            else f'<span class="state-disconnected">out</span> <span class=muted>{escape(c["reason"])}</span>',
            str(c["height"]) if c["height"] is not None else "–",
            str(c["blocks"]),
        ]
        for c in status.get("merge_mining", ())
    ]
    if aux_rows:
        parts += [
            "<section><h2>Merged mining</h2>",
            _table(["Chain", "Chain id", "State", "Mining height", "Blocks"], aux_rows, frozenset({1, 3, 4})),
            "</section>",
        ]
    if upstream_rows:
        parts += [
            "<section><h2>Upstream pools</h2>",
            _table(["URL", "State", "Since", "Disconnects", "Last reason"], upstream_rows, frozenset({3})),
            "</section>",
        ]
    parts += [
        '<p class="muted">JSON: <a href="api/v1/status">status</a> <a href="api/v1/workers">workers</a>'
        ' <a href="api/v1/blocks">blocks</a> <a href="api/v1/upstreams">upstreams</a>'
        ' · <a href="metrics">metrics</a></p>',
        "</main></body></html>",
    ]
    return "".join(parts)
