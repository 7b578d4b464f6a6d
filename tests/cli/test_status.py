"""``sv2proxy-status`` (sv2proxy/cli/status.py): tables from the API's documents, and its errors.

The client against a real daemon is proven in tests/e2e/test_web.py; here the documents are
plain values, and the failures are real sockets refusing or a real HTTP server answering.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from sv2proxy.cli.status import EXIT_FAILURE, main, render_blocks, render_payouts, render_status, table

NOW = 1_800_000_000.0

STATUS = {
    "mode": "pool",
    "version": "0.1.0",
    "time": NOW,
    "uptime": 7200.0,
    "connections": 2,
    "channels": 3,
    "hash_rate": 1.5e21,
    "hash_rate_window": 600.0,
    "hash_rate_estimate": 1.4e21,
    "shares": {"accepted": 1234, "rejected": {"stale-share": 3, "difficulty-too-low": 1}},
    "blocks_found": 1,
    "template": {"age": 4.0, "height": 900_000},
    "upstreams": [],
    "store": {
        "enabled": True,
        "backend": "SQLite /var/lib/sv2proxy/shares.sqlite3",
        "ok": True,
        "pending_shares": 0,
        "last_error": None,
    },
}

WORKER = {
    "name": "alice.rig1",
    "connected": True,
    "channels": 1,
    "hash_rate": 1.1e14,
    "accepted": 1000,
    "rejected": {"stale-share": 2},
    "blocks": 1,
    "last_share_at": NOW - 5,
    "stored": {"hash_rates": {"1m": 1.2e14, "15m": 1.0e14, "1h": 9.9e13, "24h": 9.0e13}},
}


def test_status_names_every_figure_with_units_that_scale_past_exahashes() -> None:
    text = render_status(STATUS, [WORKER])
    assert "connections      2" in text
    assert "1.5 ZH/s" in text  # a huge farm never overflows the unit table
    assert "4 (difficulty-too-low 1, stale-share 3)" in text
    assert "height 900000, 4 s old" in text
    lines = text.splitlines()
    worker_line = next(line for line in lines if line.startswith("alice.rig1"))
    assert "110 TH/s" in worker_line and "120 TH/s" in worker_line and "5 s ago" in worker_line


def test_a_failing_store_and_an_empty_pool_say_so() -> None:
    status = dict(STATUS, store={**STATUS["store"], "ok": False, "last_error": "disk full"})
    text = render_status(status, [])
    assert "FAILING: disk full" in text and "no workers yet" in text


def test_blocks_and_payouts_tables() -> None:
    block = {
        "at": NOW,
        "height": 900_001,
        "status": "rejected",
        "reason": "bad-txnmrklroot",
        "reward": 312_500_000,
        "worker": None,
        "hash": "00" * 32,
    }
    text = render_blocks([block])
    assert "rejected (bad-txnmrklroot)" in text and "3.12500000" in text and "900001" in text
    payouts = {"window": 10, "total_difficulty": 4.0, "workers": [{"worker": "a", "difficulty": 3.0, "fraction": 0.75}]}
    assert "75.0000 %" in render_payouts(payouts)


def test_table_aligns_numbers_right() -> None:
    assert table(["a", "n"], [["x", "1"], ["yy", "22"]], frozenset({1})).splitlines() == [
        "a    n",
        "--  --",
        "x    1",
        "yy  22",
    ]


def test_an_unreachable_daemon_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    assert main(["--url", f"127.0.0.1:{port}"]) == EXIT_FAILURE
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "cannot reach the daemon" in err and str(port) in err


class _Answers(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.headers.get("Authorization") != "Bearer right":
            self._answer(401, {"error": "a bearer token is required"})
        elif self.path.startswith("/api/v1/payouts"):
            self._answer(503, {"error": "no share store (store.url is null): no payouts to compute"})
        else:
            self._answer(200, STATUS)

    def _answer(self, code: int, document: object) -> None:
        body = json.dumps(document).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_missing_token_and_an_api_error_are_named(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", server]) == EXIT_FAILURE
    assert "wants its web.token" in capsys.readouterr().err
    assert main(["--url", server, "--token", "right", "payouts"]) == EXIT_FAILURE
    assert "HTTP 503: no share store" in capsys.readouterr().err
    assert main(["--url", server, "--token", "right", "--json", "upstreams"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "pool"


def test_a_bad_window_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["payouts", "--window", "0"])
    assert exit_.value.code == 2
    assert "at least 1" in capsys.readouterr().err
