"""``sv2proxy-status``: the daemon's state, read from its HTTP API, as plain text tables.

A command-line client runs no reactor, so it asks with the standard library's blocking
``urllib``; it reads ``/api/v1/...``, and ``reconnect`` posts to ``/api/v1/reconnect``.
Tables go to stdout, errors to stderr in one line.
Exit status: 0 done, 1 the daemon could not be asked or refused, 2 bad usage (argparse).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from sv2proxy.web.dashboard import format_duration, format_hash_rate, format_time

PROG = "sv2proxy-status"
EXIT_OK = 0
EXIT_FAILURE = 1
#: The daemon's default ``web.listen``.
DEFAULT_URL = "http://127.0.0.1:8080"
TOKEN_VARIABLE = "SV2PROXY_TOKEN"
#: Seconds to wait for the daemon's answer.
TIMEOUT = 10.0


class StatusError(Exception):
    """The daemon could not be asked, or answered with an error: one line for the operator."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Print a running sv2proxy daemon's state from its HTTP API (web.listen).",
    )
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the daemon's web.listen address (default {DEFAULT_URL})")
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_VARIABLE),
        help=f"the daemon's web.token, when it has one (default: ${TOKEN_VARIABLE})",
    )
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of tables")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("status", help="the daemon at a glance and its workers (the default)")
    commands.add_parser("workers", help="every worker: live and stored hash rates, shares, blocks")
    blocks = commands.add_parser("blocks", help="found blocks and the node's verdicts")
    blocks.add_argument("--limit", type=int, default=20, help="at most this many, newest first (default 20)")
    commands.add_parser("upstreams", help="the upstream pools (proxy mode) and their state")
    payouts = commands.add_parser("payouts", help="the PPLNS split of the last N accepted shares")
    payouts.add_argument("--window", type=_positive, default=10_000, help="N, shares in the window (default 10000)")
    reconnect = commands.add_parser(
        "reconnect", help="ask every miner to reconnect: to this daemon again, or to --host/--port"
    )
    reconnect.add_argument(
        "--host",
        default="",
        help="where miners should go (default: back here; Stratum V1 miners are hung up on and redial"
        " their configured pool; cgminer-based firmware follows only a host in the same domain)",
    )
    reconnect.add_argument("--port", type=_port, default=0, help="the port there (default: the same)")
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def fetch(
    base: str, path: str, token: str | None, query: Mapping[str, object] | None = None, post: object = None
) -> Any:
    """GET (or POST ``post`` as JSON to) ``base`` + ``path`` and decode the JSON answer.

    Every failure is a :class:`StatusError`.
    """
    url = base.rstrip("/") + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if post is not None:
        request.data = json.dumps(post).encode()
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 (http only)
            body = response.read()
    except urllib.error.HTTPError as error:
        if error.code == 401:
            raise StatusError(f"{url}: the daemon wants its web.token (--token or ${TOKEN_VARIABLE})") from None
        raise StatusError(f"{url}: HTTP {error.code}: {_error_message(error.read())}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise StatusError(f"{url}: cannot reach the daemon ({reason}); is web.listen set to this address?") from None
    try:
        return json.loads(body)
    except ValueError:
        raise StatusError(f"{url}: the answer is not JSON; is this an sv2proxy daemon's web.listen?") from None


def _error_message(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace").strip()[:200] or "no message"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: frozenset[int] = frozenset()) -> str:
    """Columns aligned on their widest cell; ``numeric`` columns right-aligned."""
    widths = [max([len(headers[i]), *(len(row[i]) for row in rows)]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(row) for row in rows)])


def _count(rejected: Mapping[str, int]) -> str:
    total = sum(rejected.values())
    if not total:
        return "0"
    return f"{total} (" + ", ".join(f"{reason} {n}" for reason, n in sorted(rejected.items())) + ")"


def _ago(at: float | None, now: float) -> str:
    return "–" if at is None else format_duration(now - at) + " ago"


def render_status(status: Mapping[str, Any], workers: Sequence[Mapping[str, Any]]) -> str:
    shares = status["shares"]
    template = status.get("template") or {}
    store = status.get("store") or {}
    if store.get("enabled"):
        store_text = f"{store['backend']}: {'ok' if store['ok'] else 'FAILING: ' + str(store['last_error'])}"
        store_text += f", shares waiting: {store['pending_shares']}"
    else:
        store_text = "none (store.url is null)"
    facts = [
        ("mode", f"{status['mode']} (sv2proxy {status['version']})"),
        ("uptime", format_duration(status["uptime"])),
        ("connections", str(status["connections"])),
        ("channels", str(status["channels"])),
        (
            "hash rate",
            f"{format_hash_rate(status['hash_rate'])} (accepted shares, last"
            f" {format_duration(status['hash_rate_window'])}; vardiff estimate"
            f" {format_hash_rate(status['hash_rate_estimate'])})",
        ),
        ("shares accepted", str(shares["accepted"])),
        ("shares rejected", _count(shares["rejected"])),
        ("blocks found", str(status["blocks_found"])),
        ("template", f"height {template.get('height', '–')}, {format_duration(template.get('age'))} old"),
        ("store", store_text),
    ]
    for upstream in status.get("upstreams") or ():
        facts.append(("upstream", f"{upstream['url']}: {upstream['state']}"))
    for chain in status.get("merge_mining") or ():
        state = "in the commitment" if chain["live"] else f"out ({chain['reason']})"
        facts.append(("aux chain", f"{chain['chain']}: {state}, {chain['blocks']} blocks since start"))
    width = max(len(name) for name, _ in facts)
    text = "\n".join(f"{name.ljust(width)}  {value}" for name, value in facts)
    return text + "\n\n" + render_workers(workers, status["time"])


def render_workers(workers: Sequence[Mapping[str, Any]], now: float) -> str:
    if not workers:
        return "no workers yet"
    rows = []
    for worker in workers:
        stored = worker.get("stored") or {}
        rates = stored.get("hash_rates") or {}
        rows.append(
            [
                worker["name"],
                "yes" if worker["connected"] else "no",
                format_hash_rate(worker["hash_rate"]),
                *(format_hash_rate(rates[w]) if w in rates else "–" for w in ("1m", "15m", "1h", "24h")),
                str(worker["accepted"]),
                _count(worker["rejected"]),
                str(worker["blocks"]),
                _ago(worker["last_share_at"], now),
            ]
        )
    headers = ["worker", "online", "hash rate", "1 m", "15 m", "1 h", "24 h", "accepted", "rejected", "blocks", "last"]
    return table(headers, rows, frozenset(range(2, 10)))


def render_blocks(blocks: Sequence[Mapping[str, Any]]) -> str:
    if not blocks:
        return "no blocks found yet"
    rows = [
        [
            format_time(block["at"]),
            "–" if block["height"] is None else str(block["height"]),
            block["status"] + (f" ({block['reason']})" if block.get("reason") else ""),
            "–" if block["reward"] is None else f"{block['reward'] / 1e8:.8f}",
            block["worker"] or "–",
            block["hash"],
        ]
        for block in blocks
    ]
    return table(["found", "height", "status", "reward BTC", "worker", "hash"], rows, frozenset({1, 3}))


def render_upstreams(upstreams: Sequence[Mapping[str, Any]], now: float) -> str:
    if not upstreams:
        return "no upstream pools (pool mode)"
    rows = [
        [
            upstream["url"],
            upstream["state"],
            _ago(upstream["since"], now) if upstream["since"] is not None else "–",
            str(upstream["connects"]),
            str(upstream["disconnects"]),
            upstream["last_reason"] or "–",
        ]
        for upstream in upstreams
    ]
    return table(["pool", "state", "since", "connects", "disconnects", "last reason"], rows, frozenset({3, 4}))


def render_payouts(payouts: Mapping[str, Any]) -> str:
    workers = payouts["workers"]
    total = payouts["total_difficulty"]
    head = f"PPLNS over the last {payouts['window']} accepted shares: total difficulty {total:.6g}"
    if not workers:
        return head + "\nno accepted shares in the store yet"
    rows = [[w["worker"], f"{w['difficulty']:.6g}", f"{100 * w['fraction']:.4f} %"] for w in workers]
    return head + "\n\n" + table(["worker", "difficulty", "share"], rows, frozenset({1, 2}))


def run(arguments: argparse.Namespace, out: TextIO) -> None:
    base, token = arguments.url, arguments.token
    if "://" not in base:
        base = "http://" + base
    command = arguments.command or "status"
    documents: Any
    if command == "status":
        documents = {"status": fetch(base, "/api/v1/status", token), "workers": fetch(base, "/api/v1/workers", token)}
    elif command == "blocks":
        documents = fetch(base, "/api/v1/blocks", token)[: max(0, arguments.limit)]
    elif command == "payouts":
        documents = fetch(base, "/api/v1/payouts", token, {"window": arguments.window})
    elif command == "reconnect":
        target = {"host": arguments.host, "port": arguments.port}
        documents = fetch(base, "/api/v1/reconnect", token, post=target)
    else:
        documents = fetch(base, f"/api/v1/{command}", token)
    if arguments.json:
        out.write(json.dumps(documents, indent=2) + "\n")
        return
    if command == "status":
        text = render_status(documents["status"], documents["workers"])
    elif command == "blocks":
        text = render_blocks(documents)
    elif command == "payouts":
        text = render_payouts(documents)
    elif command == "reconnect":
        where = f"{documents['host'] or 'this daemon'}, port {documents['port'] or 'the same'}"
        text = f"asked {documents['miners']} miner connections to reconnect to {where}"
        if documents.get("pending"):
            text += " (sent once the share store has made their accepted shares durable)"
    else:
        now = fetch(base, "/api/v1/status", token)["time"]
        text = render_workers(documents, now) if command == "workers" else render_upstreams(documents, now)
    out.write(text + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        run(arguments, sys.stdout)
    except StatusError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
