"""The Bitcoin Core RPC client against a real HTTP server on loopback (twisted.web)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.web import resource, server
from twisted.web.client import Agent, HTTPConnectionPool

from sv2proxy.template.rpc import BitcoinCoreRPC, NodeError, RPCAuth, default_cookie_file


class FakeCore(resource.Resource):
    """Bitcoin Core's RPC shapes: basic auth, JSON-RPC 1.0 bodies, errors with HTTP 500."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.credentials = ("__cookie__", "first")
        self.hang = False
        self.calls: list[str] = []

    def render_POST(self, request):  # noqa: N802
        header = request.getHeader("authorization") or ""
        expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        if header != expected:
            request.setResponseCode(401)
            return b""
        body = json.loads(request.content.read())
        self.calls.append(body["method"])
        if self.hang:
            return server.NOT_DONE_YET
        method = body["method"]
        if method == "getbestblockhash":
            return self.answer(request, body, "00" * 32)
        if method == "submitblock":
            return self.answer(request, body, "high-hash")
        if method == "getblockchaininfo":
            return self.error(request, body, -28, "Loading block index…")
        if method == "crash":
            request.setResponseCode(500)
            return b"<html>oops</html>"
        return self.error(request, body, -32601, "Method not found")

    @staticmethod
    def answer(request, body, result):
        request.setHeader("content-type", "application/json")
        return json.dumps({"result": result, "error": None, "id": body["id"]}).encode()

    @staticmethod
    def error(request, body, code, message):
        request.setResponseCode(500)
        return json.dumps({"result": None, "error": {"code": code, "message": message}, "id": body["id"]}).encode()


@pytest.fixture
def node():
    fake = FakeCore()
    port = reactor.listenTCP(0, server.Site(fake), interface="127.0.0.1")
    pool = HTTPConnectionPool(reactor, persistent=False)
    yield fake, f"http://127.0.0.1:{port.getHost().port}/", treq.client.HTTPClient(Agent(reactor, pool=pool))
    pytest_twisted.blockon(port.stopListening())


@pytest_twisted.ensureDeferred
async def test_results_and_node_errors(node, tmp_path: Path):
    fake, url, http = node
    cookie = tmp_path / ".cookie"
    cookie.write_text("__cookie__:first")
    rpc = BitcoinCoreRPC(url, RPCAuth(cookie_file=cookie), http, reactor, timeout=5)
    assert await rpc.getbestblockhash() == "00" * 32
    assert await rpc.submitblock("00") == "high-hash"
    with pytest.raises(NodeError) as caught:
        await rpc.getblockchaininfo()
    assert caught.value.code == -28 and caught.value.retryable
    assert "node error -28: Loading block index" in str(caught.value)
    with pytest.raises(NodeError) as caught:
        await rpc.call("nosuchmethod")
    assert caught.value.code == -32601 and not caught.value.retryable
    with pytest.raises(NodeError, match="HTTP 500 with a body that is not JSON"):
        await rpc.call("crash")


@pytest_twisted.ensureDeferred
async def test_credentials_in_the_url_are_used_and_never_shown(node):
    fake, url, http = node
    fake.credentials = ("alice", "p@ss:word")
    with_userinfo = url.replace("http://", "http://alice:p%40ss%3Aword@")
    rpc = BitcoinCoreRPC(with_userinfo, RPCAuth(cookie_file=None), http, reactor)
    assert await rpc.getbestblockhash() == "00" * 32
    assert "word" not in rpc.shown_url and "@" not in rpc.url
    assert rpc.shown_url == with_userinfo.replace("p%40ss%3Aword", "********")
    rpc.url = "http://127.0.0.1:1/"  # the embedded demo node sets its own URL later
    assert rpc.shown_url == "http://127.0.0.1:1/"


@pytest_twisted.ensureDeferred
async def test_a_new_cookie_is_read_after_a_401_and_wrong_credentials_are_reported(node, tmp_path: Path):
    fake, url, http = node
    cookie = tmp_path / ".cookie"
    cookie.write_text("__cookie__:first")
    rpc = BitcoinCoreRPC(url, RPCAuth(cookie_file=cookie), http, reactor, timeout=5)
    assert await rpc.getbestblockhash()
    fake.credentials = ("__cookie__", "second")  # the node restarted
    cookie.write_text("__cookie__:second")
    assert await rpc.getbestblockhash()
    wrong = BitcoinCoreRPC(url, RPCAuth("alice", "nope"), http, reactor, timeout=5)
    with pytest.raises(NodeError, match="refused our RPC credentials") as caught:
        await wrong.getbestblockhash()
    assert not caught.value.retryable


@pytest_twisted.ensureDeferred
async def test_timeouts_and_unreachable_nodes_are_node_errors(node, tmp_path: Path):
    fake, url, http = node
    fake.hang = True
    rpc = BitcoinCoreRPC(url, RPCAuth("__cookie__", "first"), http, reactor, timeout=0.2)
    with pytest.raises(NodeError, match="no answer from the node .* within 0.2 s"):
        await rpc.getbestblockhash()
    port = reactor.listenTCP(0, server.Site(FakeCore()), interface="127.0.0.1")
    closed = port.getHost().port
    await port.stopListening()
    gone = BitcoinCoreRPC(f"http://rpc:hunter2@127.0.0.1:{closed}/", RPCAuth("a", "b"), http, reactor, timeout=2)
    with pytest.raises(NodeError, match="cannot reach the node at http://rpc:\\*+@127") as caught:
        await gone.getbestblockhash()
    assert "hunter2" not in str(caught.value)  # errors are logged: a password in the URL never is
    missing = BitcoinCoreRPC(url, RPCAuth(cookie_file=tmp_path / "nope" / ".cookie"), http, reactor)
    with pytest.raises(NodeError, match="cannot read the node's cookie file"):
        await missing.getbestblockhash()
    await Deferred.fromCoroutine(_settle())


async def _settle() -> None:
    """Let the hung request's connection be torn down before the port closes."""
    from twisted.internet.task import deferLater

    await deferLater(reactor, 0.05, lambda: None)


def test_default_cookie_locations(tmp_path: Path):
    assert default_cookie_file("main", tmp_path) == tmp_path / ".cookie"
    assert default_cookie_file("regtest", tmp_path) == tmp_path / "regtest" / ".cookie"
    assert default_cookie_file("test", tmp_path) == tmp_path / "testnet3" / ".cookie"


@pytest_twisted.ensureDeferred
async def test_a_cancel_from_the_caller_is_a_cancel_and_a_deadline_is_a_timeout(node):
    from twisted.internet.defer import CancelledError, ensureDeferred

    from sv2proxy.template.rpc import NodeTimeout

    fake, url, http = node
    fake.hang = True
    rpc = BitcoinCoreRPC(url, RPCAuth("__cookie__", "first"), http, reactor, timeout=5)
    call = ensureDeferred(rpc.getbestblockhash())
    reactor.callLater(0.05, call.cancel)
    with pytest.raises(CancelledError):
        await call
    quick = BitcoinCoreRPC(url, RPCAuth("__cookie__", "first"), http, reactor, timeout=0.1)
    with pytest.raises(NodeTimeout):
        await quick.getbestblockhash()
    await Deferred.fromCoroutine(_settle())
