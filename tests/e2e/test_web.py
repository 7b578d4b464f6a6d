"""The operator's side end to end: the daemon's HTTP API, /metrics, events and sv2proxy-status.

A real daemon (tap.makeService, pool mode, the SQLite store) mines on a RegtestNode with a
MiningDevice; everything is asked over loopback HTTP with the bearer token, as an operator's
tools would.  ``sv2proxy-status`` runs its blocking client in a thread against the same daemon.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest_twisted
import treq
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from sv2proxy.cli import status as status_cli
from sv2proxy.tap import Options, makeService
from sv2proxy.testing import MiningDeviceFactory, RegtestNode
from tests.e2e.test_solo_regtest import PAYOUT, connect, stop, until

TOKEN = "e2e-operator-token-0123456789"


def start_daemon(tmp_path: Path, rpc_url: str, token: str | None = TOKEN):
    config = tmp_path / "pool.yaml"
    token_line = f"  token: {token}\n" if token else ""
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "listen:\n  sv2: 127.0.0.1:0\n"
        f"node:\n  embedded: false\n  rpc_url: {rpc_url}\n  chain: regtest\n  rpc_user: test\n  rpc_password: secret\n"
        "  tip_poll_interval: 0.2\n"
        f"coinbase:\n  payout: {PAYOUT}\n  pool_tag: /web-e2e/\n"
        "mining:\n  min_difficulty: 0.000001\n  share_batch_size: 1\n"
        f"web:\n  listen: 127.0.0.1:0\n{token_line}"
    )
    options = Options()
    options.parseOptions(["--config", str(config)])
    daemon = makeService(options, reactor)
    daemon.privilegedStartService()
    daemon.startService()
    return options, daemon


async def web_url(daemon) -> str:
    port = await daemon.getServiceNamed("web").when_listening()
    assert port is not None
    return f"http://127.0.0.1:{port.getHost().port}"


async def get_json(url: str, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await treq.get(url, headers=headers)
    assert response.code == 200, (url, response.code, await response.text())
    return await response.json()


@pytest_twisted.ensureDeferred
async def test_an_operator_sees_miners_shares_and_blocks(tmp_path: Path):
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    options, daemon = start_daemon(tmp_path, node.rpc_url)
    miners = MiningDeviceFactory(reactor, "alice.rig1", pause=0.05, nonces_per_slice=8)
    try:
        base = await web_url(daemon)

        # Without the token nothing is served, not even the dashboard.
        for path in ("/api/v1/status", "/metrics", "/"):
            refused = await treq.get(base + path)
            assert refused.code == 401
            await refused.content()

        # A Stratum V1 miner pointed at the V2 port: a failed handshake, counted for /metrics.
        v1_line = b'{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.12", null, "x", "y"]}\n'
        sv2_port = (await daemon.getServiceNamed("sv2-miners").when_listening()).getHost().port
        stray = await TCP4ClientEndpoint(reactor, "127.0.0.1", sv2_port).connect(Factory.forProtocol(Protocol))
        stray.transport.write(v1_line * 2)
        await until(lambda: daemon.getServiceNamed("web").context.live.handshake_failures.get("invalid") == 1)

        # Status reflects connections before the first share (FIELD-NOTES).
        before = await get_json(base + "/api/v1/status")
        assert before["mode"] == "pool" and before["connections"] == 0
        await connect(miners, daemon, options)
        await until(lambda: daemon.getServiceNamed("mining").miner_channels())
        connected = await get_json(base + "/api/v1/status")
        assert connected["connections"] == 1 and connected["channels"] == 1

        # The event stream carries shares as they are submitted.
        stream = await treq.get(
            base + "/api/v1/events?types=ShareSubmitted", headers={"Authorization": f"Bearer {TOKEN}"}, unbuffered=True
        )
        assert stream.code == 200
        assert stream.headers.getRawHeaders(b"content-type")[0].startswith(b"text/event-stream")
        received = bytearray()
        collecting = treq.collect(stream, received.extend)

        stats = await miners.when(lambda s: len(s.blocks) >= 2 and s.shares_acknowledged >= 3)
        await until(lambda: b"event: ShareSubmitted" in received)
        record = bytes(received).split(b"event: ShareSubmitted\ndata: ", 1)[1].split(b"\n\n", 1)[0]
        share = json.loads(record)
        assert share["type"] == "ShareSubmitted" and share["worker"] == "alice.rig1"

        status = await get_json(base + "/api/v1/status")
        assert status["shares"]["accepted"] >= stats.shares_acknowledged - 1
        assert status["blocks_found"] >= 2
        assert status["store"]["enabled"] and status["store"]["ok"]
        assert status["template"]["height"] >= 1

        workers = await get_json(base + "/api/v1/workers")
        assert [w["name"] for w in workers] == ["alice.rig1"]
        alice = await get_json(base + "/api/v1/workers/alice.rig1")
        assert alice["connected"] and alice["accepted"] >= 3 and alice["blocks"] >= 2
        assert alice["stored"]["shares_24h"] >= 3 and alice["stored"]["hash_rates"]["1m"] > 0
        missing = await treq.get(base + "/api/v1/workers/nobody", headers={"Authorization": f"Bearer {TOKEN}"})
        assert missing.code == 404
        await missing.content()

        await until(lambda: node.height >= 2)
        blocks = await get_json(base + "/api/v1/blocks")
        accepted = [b for b in blocks if b["status"] == "accepted"]
        assert accepted and accepted[0]["worker"] == "alice.rig1" and accepted[0]["height"] >= 1
        assert accepted[0]["reward"] == 50 * 100_000_000

        payouts = await get_json(base + "/api/v1/payouts?window=1000")
        assert [w["worker"] for w in payouts["workers"]] == ["alice.rig1"]
        assert abs(payouts["workers"][0]["fraction"] - 1.0) < 1e-9

        response = await treq.get(base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        families = {f.name: f for f in text_string_to_metric_families(await response.text())}
        value = {f: families[f].samples[0].value for f in ("sv2proxy_miner_connections", "sv2proxy_shares_accepted")}
        assert value["sv2proxy_miner_connections"] == 1
        assert value["sv2proxy_shares_accepted"] >= 3
        assert families["sv2proxy_new_block_to_jobs_seconds"].samples  # a histogram, observed per tip
        tips = [s for s in families["sv2proxy_new_block_to_jobs_seconds"].samples if s.name.endswith("_count")]
        assert tips[0].value >= 1
        failures = {s.labels["kind"]: s.value for s in families["sv2proxy_noise_handshake_failures"].samples}
        assert failures == {"invalid": 1, "timeout": 0}

        page = await treq.get(base + "/", headers={"Authorization": f"Bearer {TOKEN}"})
        html = await page.text()
        assert "<svg" in html and "alice.rig1" in html

        # sv2proxy-status, the blocking client, from a thread while the reactor serves it.
        out = io.StringIO()
        arguments = status_cli._parser().parse_args(["--url", base, "--token", TOKEN])
        await deferToThread(status_cli.run, arguments, out)
        text = out.getvalue()
        assert "alice.rig1" in text and "connections      1" in text
        out = io.StringIO()
        arguments = status_cli._parser().parse_args(["--url", base, "--token", TOKEN, "payouts", "--window", "100"])
        await deferToThread(status_cli.run, arguments, out)
        assert "alice.rig1" in out.getvalue() and "100.0000 %" in out.getvalue()
        code = await deferToThread(status_cli.main, ["--url", base])  # no token: one line, exit 1
        assert code == status_cli.EXIT_FAILURE

        # The operator moves the miners: a form post from another site cannot (not JSON) ...
        forged = await treq.post(
            base + "/api/v1/reconnect",
            data=b"host=evil.example",
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert forged.code == 415
        await forged.content()
        assert miners.device.stats.reconnects == []
        # ... sv2proxy-status can, and the device is told where to go and hangs up.
        out = io.StringIO()
        arguments = status_cli._parser().parse_args(
            ["--url", base, "--token", TOKEN, "reconnect", "--host", "backup.example", "--port", "3334"]
        )
        await deferToThread(status_cli.run, arguments, out)
        # Whether the message still waited for the store's commit depends on timing.
        told = "asked 1 miner connections to reconnect to backup.example, port 3334"
        assert out.getvalue() in (
            told + "\n",
            told + " (sent once the share store has made their accepted shares durable)\n",
        )
        device = miners.device
        await until(lambda: device.stats.reconnects == [("backup.example", 3334)])
        await until(lambda: not daemon.getServiceNamed("mining").miner_channels())

    finally:
        await stop(miners, daemon)
        await node.stop()
    # Stopping the daemon ended the event stream; the collector finishes rather than hanging.
    await collecting.addErrback(lambda _: None)


class _Raw(Protocol):
    """One raw HTTP exchange: what the daemon wrote before it hung up."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.closed: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.received.extend(data)

    def connectionLost(self, reason: object = None) -> None:  # noqa: N802
        self.closed.callback(bytes(self.received))


@pytest_twisted.ensureDeferred
async def test_without_a_token_only_this_machine_is_served(tmp_path: Path):
    node = RegtestNode(tmp_path / "node", reactor, rpcuser="test", rpcpassword="secret")
    await node.start()
    _, daemon = start_daemon(tmp_path, node.rpc_url, token=None)
    try:
        base = await web_url(daemon)
        port = base.rsplit(":", 1)[1]
        # Loopback clients are served as before, sv2proxy-status included.
        local = await treq.get(base + "/api/v1/status")
        assert local.code == 200 and (await local.json())["mode"] == "pool"
        assert local.headers.getRawHeaders(b"x-content-type-options") == [b"nosniff"]
        # The share store answers queries only once its schema is in place (a moment after start).
        for _ in range(200):
            workers = await treq.get(base + "/api/v1/workers")
            await workers.content()
            if workers.code == 200:
                break
            await deferLater(reactor, 0.05, lambda: None)
        out = io.StringIO()
        await deferToThread(status_cli.run, status_cli._parser().parse_args(["--url", base]), out)
        assert "connections" in out.getvalue()

        # A page whose name was rebound to 127.0.0.1 reaches the port but names itself in Host.
        for path in ("/api/v1/status", "/", "/metrics"):
            rebound = await treq.get(base + path, headers={"Host": f"attacker.example:{port}"})
            assert rebound.code == 403, path
            assert "loopback host names" in (await rebound.json())["error"]
        forged = await treq.post(
            base + "/api/v1/reconnect",
            data=b'{"host": "pool.attacker.example", "port": 3333}',
            headers={"Content-Type": "application/json", "Host": f"attacker.example:{port}"},
        )
        assert forged.code == 403
        await forged.content()
        # A page elsewhere posting to the loopback address: its Origin gives it away.
        cross = await treq.post(
            base + "/api/v1/reconnect",
            data=b'{"host": "pool.attacker.example", "port": 3333}',
            headers={"Content-Type": "application/json", "Origin": "http://attacker.example"},
        )
        assert cross.code == 403
        await cross.content()
        moved = await treq.post(base + "/api/v1/reconnect", data=b"{}", headers={"Content-Type": "application/json"})
        assert moved.code == 200 and (await moved.json())["miners"] == 0

        # A body too large to be a reconnect is refused before it is read.
        raw = _Raw()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", int(port)), raw)
        raw.transport.write(
            b"POST /api/v1/reconnect HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\n\r\n{"
        )
        answer = await raw.closed.addTimeout(10, reactor)
        assert answer.startswith(b"HTTP/1.1 413 ")
    finally:
        await daemon.stopService()
        await node.stop()
