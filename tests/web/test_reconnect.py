"""``POST /api/v1/reconnect``: the operator's move of every miner, and what it refuses."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from treq.testing import StubTreq

from sv2proxy.web.metrics import Metrics
from sv2proxy.web.resources import Root

from .fakes import FakeChannel, FakeMining, make_context

URL = "http://127.0.0.1:8080/api/v1/reconnect"
JSON = {"Content-Type": "application/json"}


@dataclass
class MovableMining(FakeMining):
    moves: list[tuple[str, int]] = field(default_factory=list)

    def reconnect_miners(self, host: str = "", port: int = 0) -> int:
        self.moves.append((host, port))
        return len(self.channels)


@dataclass
class DurableMining(MovableMining):
    """A mining service whose message waits (or not) for the share store's next commit."""

    pending: bool = True

    def reconnect_miners(self, host: str = "", port: int = 0) -> tuple[int, bool]:  # type: ignore[override]
        return super().reconnect_miners(host, port), self.pending


def post(
    body: bytes, headers: dict[str, str], token: str | None = None, mining: MovableMining | None = None
) -> tuple[int, dict, MovableMining]:
    if mining is None:
        mining = MovableMining()
    mining.channels = [FakeChannel(1, "alice"), FakeChannel(2, "bob")]
    context, _, _ = make_context(mining=mining)
    stub = StubTreq(Root(context, Metrics(context), token))
    response = stub.post(URL, data=body, headers=headers)
    stub.flush()
    answered: list = []
    response.addCallback(lambda r: stub.content(r).addCallback(lambda b: answered.append((r.code, b))))
    stub.flush()
    ((code, raw),) = answered
    return code, json.loads(raw), mining


def test_a_json_post_moves_every_miner() -> None:
    code, answer, mining = post(json.dumps({"host": "backup.example", "port": 3334}).encode(), JSON)
    assert code == 200 and answer == {"miners": 2, "host": "backup.example", "port": 3334}
    assert mining.moves == [("backup.example", 3334)]


def test_an_empty_body_means_come_back_here() -> None:
    code, answer, mining = post(b"", JSON)
    assert code == 200 and mining.moves == [("", 0)]


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"host=evil.example", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
        (b'{"host": "a"}', {"Content-Type": "text/plain"}, 415),
        (b"{not json", JSON, 400),
        (b'{"port": 70000}', JSON, 400),
        (b'{"port": true}', JSON, 400),
        (b'{"port": "3333"}', JSON, 400),
        # Types before defaults: none of these is "not given".
        (b'{"host": 0}', JSON, 400),
        (b'{"host": false}', JSON, 400),
        (b'{"host": null}', JSON, 400),
        (b'{"host": []}', JSON, 400),
        (b'{"port": false}', JSON, 400),
        (b'{"port": ""}', JSON, 400),
        (b'{"port": null}', JSON, 400),
        (b'{"port": 0.0}', JSON, 400),
        (b'{"port": -1}', JSON, 400),
        (json.dumps({"host": "h" * 256}).encode(), JSON, 400),
        # A host, not a URL or an address with its port, and nothing a miner would choke on.
        (b'{"host": "stratum+tcp://evil.example"}', JSON, 400),
        (b'{"host": "evil.example:3333"}', JSON, 400),
        (b'{"host": "evil.example\\n"}', JSON, 400),
        (b'{"host": "evil example"}', JSON, 400),
        (b'{"host": "evil.example\\u0000"}', JSON, 400),
        (b'{"host": "[2001:db8::1]"}', JSON, 400),
        (b'{"host": "a", "colour": "blue"}', JSON, 400),
        (b"[1, 2]", JSON, 400),
    ],
)
def test_what_is_refused_moves_nobody(body: bytes, headers: dict[str, str], status: int) -> None:
    code, answer, mining = post(body, headers)
    assert code == status and answer["error"]
    assert mining.moves == []


@pytest.mark.parametrize(
    ("target", "moved"),
    [
        ({"host": "backup.example."}, ("backup.example.", 0)),
        ({"host": "10.0.0.2", "port": 3333}, ("10.0.0.2", 3333)),
        ({"host": "2001:db8::1", "port": 65535}, ("2001:db8::1", 65535)),
        ({"host": "", "port": 0}, ("", 0)),
        ({"port": 3334}, ("", 3334)),
    ],
)
def test_hosts_and_ports_that_are_sent_on(target: dict, moved: tuple[str, int]) -> None:
    code, answer, mining = post(json.dumps(target).encode(), JSON)
    assert code == 200 and mining.moves == [moved]


@pytest.mark.parametrize("pending", [True, False])
def test_the_answer_says_whether_the_message_waits_for_the_store(pending: bool) -> None:
    body = json.dumps({"host": "backup.example", "port": 3334}).encode()
    code, answer, mining = post(body, JSON, mining=DurableMining(pending=pending))
    assert code == 200
    assert answer == {"miners": 2, "pending": pending, "host": "backup.example", "port": 3334}
    assert mining.moves == [("backup.example", 3334)]


def test_the_token_guards_it() -> None:
    code, answer, mining = post(b"{}", JSON, token="secret")
    assert code == 401 and mining.moves == []
    code, answer, mining = post(b"{}", {**JSON, "Authorization": "Bearer secret"}, token="secret")
    assert code == 200 and mining.moves == [("", 0)]
