"""Who is served: loopback Host names without a token, Origins on POST, request body sizes.

Requests go over a bare HTTP channel (a Site and a StringTransport), so every header is the
test's to choose, and a unix socket is a transport whose host is a UNIXAddress.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.testing import StringTransport
from twisted.web.server import Site

from sv2proxy.web.metrics import Metrics
from sv2proxy.web.resources import Root
from sv2proxy.web.service import MAX_BODY_BYTES, WebService

from .fakes import FakeChannel, FakeMining, make_context

TOKEN = "s3cret-t0ken"
LOOPBACK = IPv4Address("TCP", "127.0.0.1", 8080)


@dataclass
class MovableMining(FakeMining):
    moves: list[tuple[str, int]] = field(default_factory=list)

    def reconnect_miners(self, host: str = "", port: int = 0) -> int:
        self.moves.append((host, port))
        return len(self.channels)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool

    def json(self) -> Any:
        return json.loads(self.body)


def parse(raw: bytes, closed: bool) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(lines[0].split()[1]), headers, body, closed)


def ask(site: Site, request: bytes, host_address: object = LOOPBACK) -> Answer:
    channel = site.buildProtocol(None)
    transport = StringTransport(hostAddress=host_address)
    channel.makeConnection(transport)
    channel.dataReceived(request)
    return parse(transport.value(), transport.disconnecting)


def request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def site(token: str | None = None) -> tuple[Site, MovableMining]:
    mining = MovableMining([FakeChannel(1, "alice")])
    context, _, _ = make_context(mining=mining)
    return Site(Root(context, Metrics(context), token)), mining


def reconnect(headers: dict[str, str], token: str | None = None, **kwargs: Any) -> tuple[Answer, MovableMining]:
    served, mining = site(token)
    body = json.dumps({"host": "pool.attacker.example", "port": 3333}).encode()
    answer = ask(served, request("POST", "/api/v1/reconnect", {"Content-Type": "application/json", **headers}, body),
                 **kwargs)
    return answer, mining


# -- without a token: loopback Host names only -----------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "127.0.0.1:8080", "127.0.0.2", "[::1]:8080"])
@pytest.mark.parametrize("path", ["/api/v1/status", "/metrics", "/"])
def test_loopback_host_names_are_served(host: str, path: str) -> None:
    answer = ask(site()[0], request("GET", path, {"Host": host}))
    assert answer.status == 200


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8080", "192.168.1.10:8080", "localhost.evil"])
@pytest.mark.parametrize("path", ["/api/v1/status", "/metrics", "/", "/api/v1/events", "/nope"])
def test_a_rebound_name_is_refused(host: str, path: str) -> None:
    answer = ask(site()[0], request("GET", path, {"Host": host}))
    assert answer.status == 403
    assert answer.headers["content-type"] == "application/json"
    assert "loopback host names" in answer.json()["error"]


def test_a_rebound_page_cannot_move_the_miners() -> None:
    # The attacker's page, same-origin with itself after DNS rebinding: no preflight needed.
    answer, mining = reconnect({"Host": "attacker.example:8080", "Origin": "http://attacker.example:8080"})
    assert answer.status == 403 and mining.moves == []


def test_a_request_without_a_host_is_refused() -> None:
    answer = ask(site()[0], b"GET /api/v1/status HTTP/1.0\r\n\r\n")
    assert answer.status == 403


@pytest.mark.parametrize("origin", ["http://attacker.example", "null", "http://192.168.1.10:8080"])
def test_a_post_from_another_origin_is_refused(origin: str) -> None:
    answer, mining = reconnect({"Host": "127.0.0.1:8080", "Origin": origin})
    assert answer.status == 403 and mining.moves == []
    assert answer.json() == {"error": "a page on another site cannot change this daemon"}


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://127.0.0.1:8080"}, {"Origin": "http://localhost:3000"}])
def test_a_local_post_moves_the_miners(headers: dict[str, str]) -> None:
    answer, mining = reconnect({"Host": "127.0.0.1:8080", **headers})
    assert answer.status == 200 and mining.moves == [("pool.attacker.example", 3333)]


def test_a_get_is_not_judged_by_its_origin() -> None:
    answer = ask(site()[0], request("GET", "/api/v1/status", {"Host": "localhost", "Origin": "http://other.example"}))
    assert answer.status == 200


def test_a_unix_socket_has_no_host_to_check() -> None:
    answer, mining = reconnect({"Host": "sv2proxy.internal"}, host_address=UNIXAddress(b"/run/sv2proxy/web.sock"))
    assert answer.status == 200 and mining.moves
    # A page still cannot post through it (a proxy in front passes the browser's Origin on).
    answer, mining = reconnect(
        {"Host": "sv2proxy.internal", "Origin": "http://attacker.example"},
        host_address=UNIXAddress(b"/run/sv2proxy/web.sock"),
    )
    assert answer.status == 403 and mining.moves == []


# -- with a token: any Host (proxies), but a cookie's POST must come from our own pages ------------


def test_with_a_token_any_host_name_is_served() -> None:
    headers = {"Host": "pool.example", "Authorization": f"Bearer {TOKEN}"}
    assert ask(site(TOKEN)[0], request("GET", "/api/v1/status", headers)).status == 200
    answer = ask(site(TOKEN)[0], request("GET", "/api/v1/status", {"Host": "pool.example"}))
    assert answer.status == 401  # the token is still wanted


def test_with_the_bearer_header_the_origin_is_not_judged() -> None:
    headers = {"Host": "pool.example", "Authorization": f"Bearer {TOKEN}", "Origin": "https://tools.example"}
    answer, mining = reconnect(headers, TOKEN)
    assert answer.status == 200 and mining.moves


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://attacker.example", 403),
        ("null", 403),
        ("https://pool.example:8443", 403),
        ("https://pool.example", 200),  # the dashboard's own page
        (None, 200),  # not a browser
    ],
)
def test_with_the_cookie_a_post_must_come_from_this_site(origin: str | None, status: int) -> None:
    headers = {"Host": "pool.example", "Cookie": f"sv2proxy_token={TOKEN}"}
    if origin is not None:
        headers["Origin"] = origin
    answer, mining = reconnect(headers, TOKEN)
    assert answer.status == status
    assert bool(mining.moves) is (status == 200)


# -- every answer ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "path", "headers"),
    [
        (None, "/api/v1/status", {"Host": "localhost"}),
        (None, "/", {"Host": "localhost"}),
        (None, "/nope", {"Host": "localhost"}),
        (None, "/api/v1/status", {"Host": "attacker.example"}),
        (TOKEN, "/api/v1/status", {"Host": "localhost"}),
    ],
)
def test_answers_say_nosniff(token: str | None, path: str, headers: dict[str, str]) -> None:
    answer = ask(site(token)[0], request("GET", path, headers))
    assert answer.headers["x-content-type-options"] == "nosniff"


# -- request bodies ----------------------------------------------------------------------------------


def service_site() -> tuple[Site, MovableMining]:
    mining = MovableMining([FakeChannel(1, "alice")])
    context, _, _ = make_context(mining=mining)
    return WebService("tcp:0:interface=127.0.0.1", context, reactor=None).site, mining


def test_a_large_declared_body_is_refused_before_it_is_read() -> None:
    served, mining = service_site()
    head = request("POST", "/api/v1/reconnect", {"Host": "localhost", "Content-Type": "application/json",
                                                  "Expect": "100-continue"})
    head = head.replace(b"Content-Length: 0", f"Content-Length: {MAX_BODY_BYTES + 1}".encode())
    channel = served.buildProtocol(None)
    transport = StringTransport(hostAddress=LOOPBACK)
    channel.makeConnection(transport)
    channel.dataReceived(head)
    answer = parse(transport.value(), transport.disconnecting)
    assert answer.status == 413 and answer.closed
    assert b"100 Continue" not in transport.value()
    assert answer.json() == {"error": f"the request body is larger than {MAX_BODY_BYTES} bytes"}
    channel.dataReceived(b"{" + b" " * MAX_BODY_BYTES + b"}")  # sent anyway: ignored, never rendered
    assert mining.moves == []


def test_a_large_chunked_body_is_refused() -> None:
    served, mining = service_site()
    head = (
        b"POST /api/v1/reconnect HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b" " * 4096
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY_BYTES // len(chunk) + 1))
    answer = ask(served, head + b"1\r\n{\r\n" + body + b"1\r\n}\r\n0\r\n\r\n")
    assert answer.status == 413 and answer.closed
    assert mining.moves == []


def test_a_small_body_is_served() -> None:
    served, mining = service_site()
    body = b'{"host": "backup.example"' + b" " * (MAX_BODY_BYTES - 100) + b"}"
    answer = ask(served, request("POST", "/api/v1/reconnect", {"Host": "localhost", "Content-Type": "application/json"},
                                 body))
    assert answer.status == 200 and mining.moves == [("backup.example", 0)]
