"""The miner protocol over a plain StringTransport: ordered messages out for messages in."""

from twisted.internet.testing import StringTransport

from sv2proxy.codec import (
    MessageDecoder,
    OpenExtendedMiningChannel,
    OpenMiningChannelError,
    SetupConnection,
    SetupConnectionError,
    SetupConnectionSuccess,
    SubmitSharesStandard,
)
from sv2proxy.server.miner import MINER_MAX_PAYLOAD, MinerFactory, Phase

SETUP = SetupConnection(0, 2, 2, 0, "h", 1, "v", "hw", "fw", "id")


def connect():
    protocol = MinerFactory().buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def sent(transport):
    messages = MessageDecoder().feed(transport.value())
    transport.clear()
    return messages


def test_setup_then_channel_request_is_told_no_jobs_are_available():
    protocol, transport = connect()
    protocol.dataReceived(SETUP.to_frame())
    assert sent(transport) == [SetupConnectionSuccess(2, 0)]
    assert protocol.phase is Phase.SET_UP
    protocol.dataReceived(OpenExtendedMiningChannel(3, "w", 1.0, b"\xff" * 32, 4).to_frame())
    assert sent(transport) == [OpenMiningChannelError(3, "no-jobs-available")]
    assert not transport.disconnecting


def test_refused_setup_is_answered_then_closed():
    protocol, transport = connect()
    protocol.dataReceived(SetupConnection(1, 2, 2, 0, "h", 1, "v", "hw", "fw", "id").to_frame())
    assert sent(transport) == [SetupConnectionError(0, "unsupported-protocol")]
    assert transport.disconnecting
    assert protocol.phase is Phase.CLOSING


def test_anything_before_setup_closes_the_connection():
    protocol, transport = connect()
    protocol.dataReceived(SubmitSharesStandard(1, 1, 1, 1, 1, 1).to_frame())
    assert transport.value() == b""
    assert transport.disconnecting


def test_garbage_and_oversized_frames_close_the_connection():
    protocol, transport = connect()
    protocol.dataReceived(b"\x00\x00\x99\x00\x00\x00")  # unknown msg_type, empty payload
    assert transport.disconnecting

    protocol, transport = connect()
    too_big = MINER_MAX_PAYLOAD + 1
    protocol.dataReceived(b"\x00\x00\x00" + too_big.to_bytes(3, "little"))
    assert transport.disconnecting


def test_mining_message_it_does_not_serve_closes_the_connection():
    protocol, transport = connect()
    protocol.dataReceived(SETUP.to_frame())
    sent(transport)
    protocol.dataReceived(SubmitSharesStandard(1, 1, 1, 1, 1, 1).to_frame())
    assert transport.disconnecting
