"""``POST /api/v1/reconnect``: the operator's move of every miner, and what it refuses."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from treq.testing import StubTreq

from sv2proxy.web.metrics import Metrics
from sv2proxy.web.resources import Root

from .fakes import FakeChannel, FakeMining, make_context

URL = "http://sv2proxy.test/api/v1/reconnect"
JSON = {"Content-Type": "application/json"}


@dataclass
class MovableMining(FakeMining):
    moves: list[tuple[str, int]] = field(default_factory=list)

    def reconnect_miners(self, host: str = "", port: int = 0) -> int:
        self.moves.append((host, port))
        return len(self.channels)


def post(body: bytes, headers: dict[str, str], token: str | None = None) -> tuple[int, dict, MovableMining]:
    mining = MovableMining([FakeChannel(1, "alice"), FakeChannel(2, "bob")])
    context, _, _ = make_context(mining=mining)
    stub = StubTreq(Root(context, Metrics(context), token, set()))
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
        (json.dumps({"host": "h" * 256}).encode(), JSON, 400),
        (b'{"host": "a", "colour": "blue"}', JSON, 400),
        (b"[1, 2]", JSON, 400),
    ],
)
def test_what_is_refused_moves_nobody(body: bytes, headers: dict[str, str], status: int) -> None:
    code, answer, mining = post(body, headers)
    assert code == status and answer["error"]
    assert mining.moves == []


def test_the_token_guards_it() -> None:
    code, answer, mining = post(b"{}", JSON, token="secret")
    assert code == 401 and mining.moves == []
    code, answer, mining = post(b"{}", {**JSON, "Authorization": "Bearer secret"}, token="secret")
    assert code == 200 and mining.moves == [("", 0)]
