"""A Stratum V2 miner against the real ``twistd sv2proxy`` over loopback, through Noise.

The daemon runs as a child process; the test is the miner: it pins the authority key the
daemon logged, completes the handshake and SetupConnection, and checks the daemon's answers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory

from _twistd import Twistd
from sv2proxy.codec import (
    OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
    SetupConnection,
    SetupConnectionError,
    SetupConnectionSuccess,
)
from sv2proxy.codec.message import Message
from sv2proxy.link import FramedProtocol, NoiseClientFactory
from sv2proxy.noise.keys import decode_authority_public_key


class Miner(FramedProtocol):
    def connectionMade(self) -> None:  # noqa: N802
        self.factory.connected.callback(self)

    def messageReceived(self, message: Message) -> None:  # noqa: N802
        self.factory.inbox.append(message)
        waiting, self.factory.waiting = self.factory.waiting, None
        if waiting is not None:
            waiting.callback(message)

    def connectionLost(self, reason) -> None:  # noqa: N802
        self.factory.lost.callback(None)

    def next_message(self) -> defer.Deferred:
        self.factory.waiting = defer.Deferred()
        return self.factory.waiting


class MinerFactory(ClientFactory):
    protocol = Miner

    def __init__(self) -> None:
        self.connected = defer.Deferred()
        self.lost = defer.Deferred()
        self.inbox: list[Message] = []
        self.waiting: defer.Deferred | None = None


def setup(protocol: int = 0, flags: int = 0) -> SetupConnection:
    return SetupConnection(protocol, 2, 2, flags, "127.0.0.1", 0, "sv2proxy-tests", "cpu", "1", "e2e")


@pytest.fixture
def daemon(tmp_path: Path):
    (tmp_path / "sv2proxy.yaml").write_text("data_dir: data\nlisten:\n  sv2: 127.0.0.1:0\n  sv1: null\n")
    process = Twistd(["-n", "--pidfile=", "sv2proxy", "--config", "sv2proxy.yaml"], cwd=tmp_path)
    try:
        key_line = process.wait_for("authority public key ")
        port_line = process.wait_for("Stratum V2 miners listening on ")
        process.wait_for("sv2proxy running pid=")
        key = decode_authority_public_key(re.search(r"authority public key (\S+)", key_line).group(1))
        port = int(re.search(r"listening on [\d.]+:(\d+)", port_line).group(1))
        yield process, key, port
    finally:
        process.kill()


async def connect(port: int, key: bytes) -> Miner:
    factory = MinerFactory()
    reactor.connectTCP("127.0.0.1", port, NoiseClientFactory(factory, key, reactor))
    return await factory.connected


@pytest_twisted.ensureDeferred
async def test_miner_sets_up_and_opens_a_channel_on_the_real_daemon(daemon):
    process, key, port = daemon
    miner = await connect(port, key)
    answer = miner.next_message()
    miner.sendMessage(setup(flags=0b100))
    assert await answer == SetupConnectionSuccess(used_version=2, flags=0)

    answer = miner.next_message()
    miner.sendMessage(OpenStandardMiningChannel(7, "worker.1", 1e12, b"\xff" * 32))
    success = await answer
    assert isinstance(success, OpenStandardMiningChannelSuccess)
    assert (success.request_id, len(success.extranonce_prefix)) == (7, 16)
    miner.transport.loseConnection()
    await miner.factory.lost
    process.wait_for("miner 127.0.0.1")


@pytest_twisted.ensureDeferred
async def test_refused_setups_get_the_spec_error_and_others_keep_being_served(daemon):
    process, key, port = daemon
    cases = [
        (setup(protocol=2), SetupConnectionError(0, "unsupported-protocol")),
        (setup(flags=0b010), SetupConnectionError(0b010, "unsupported-feature-flags")),
    ]
    for request, expected in cases:
        miner = await connect(port, key)
        answer = miner.next_message()
        miner.sendMessage(request)
        assert await answer == expected
        await miner.factory.lost  # the daemon closes after a refused setup

    # Garbage instead of a handshake: that connection is dropped ...
    garbage = MinerFactory()
    client = ClientFactory.forProtocol(Miner)
    lost = defer.Deferred()
    client.clientConnectionLost = lambda connector, reason: lost.callback(None)
    connector = reactor.connectTCP("127.0.0.1", port, client)
    await defer.succeed(None)
    connector.transport.write(b"\x00" * 64 + b"definitely not act 3")
    del garbage
    # ... and a well-behaved miner is still served.
    miner = await connect(port, key)
    answer = miner.next_message()
    miner.sendMessage(setup())
    assert await answer == SetupConnectionSuccess(2, 0)
    miner.transport.loseConnection()
    await miner.factory.lost
