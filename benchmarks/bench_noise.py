"""Noise transport (PROTOCOL.md §5): handshakes/s, encrypted frames/s, bulk MB/s.

Both ends run in this process on one core, so every figure pays for both
sides.  A handshake is built as the daemon builds it: the responder comes from
:class:`~sv2proxy.link.noise.ServerCredentials` (one cached static key and
certificate, a fresh ephemeral key per connection) and the initiator checks
that certificate against the pinned authority key.

The frame figures encrypt one SubmitSharesStandard frame on the client's
session and feed it to the server's, one frame at a time, as a busy proxy
forwards shares.  Their yardstick is the bare-AEAD floor: the same frame is 4
ChaCha20-Poly1305 calls (the 6-byte header to 22 bytes and the 24-byte payload
to 40, each encrypted and decrypted), timed as raw ``cryptography`` calls with
precomputed nonces.  What is left between the floor and our rate is Python
overhead in ``sv2proxy.noise``, and the ratio row holds it to the issue's goal.
The bulk figure sends 1 MiB payloads (17 chunks each way) cut into 64 KiB reads.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import partial
from typing import cast

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock

from benchmarks import Row, rate, rates
from benchmarks.samples import SUBMIT_SHARES_STANDARD
from sv2proxy.codec.framing import FRAME_HEADER_SIZE, Frame, encode_frame
from sv2proxy.link.noise import ServerCredentials
from sv2proxy.noise.handshake import Initiator
from sv2proxy.noise.keys import AuthorityKey
from sv2proxy.noise.transport import NoiseSession

#: Issue goal: one core completes at least this many handshakes a second.
HANDSHAKE_GOAL = 1_000.0
#: Issue goal: encrypted frames/s at least this share of the bare-AEAD floor.
FLOOR_RATIO_GOAL = 0.6

#: The clock the credentials and the initiator share (any time inside the certificate).
NOW = 1_750_000_000
CHUNK = 64 * 1024
BULK_PAYLOAD = 1 << 20


_NONCE = struct.Struct("<4xQ")


def _handshake(credentials: ServerCredentials, authority_key: bytes) -> tuple[NoiseSession, NoiseSession]:
    """One full handshake as the daemon runs it: (client session, server session)."""
    responder = credentials.responder()  # cached static key and certificate, fresh ephemeral
    initiator = Initiator(authority_key)  # pins the authority, verifies the certificate
    act2, server = responder.read_act1(initiator.write_act1())
    return initiator.read_act2(act2, NOW), server


def _sessions() -> tuple[Callable[[], tuple[NoiseSession, NoiseSession]], NoiseSession, NoiseSession]:
    """A handshake to time, and the two sessions of one run of it."""
    clock = Clock()
    clock.advance(NOW)
    authority = AuthorityKey.generate()
    credentials = ServerCredentials(authority, cast(IReactorTime, clock))
    handshake = partial(_handshake, credentials, authority.public)
    client, server = handshake()
    assert client.certificate is not None and client.remote_static_key is not None
    return handshake, client, server


def _frame_round_trip(
    encrypt_frame: Callable[[bytes], bytes], feed: Callable[[bytes], list[Frame]], frame: bytes
) -> None:
    feed(encrypt_frame(frame))


def _aead_frame(
    sender: ChaCha20Poly1305,
    receiver: ChaCha20Poly1305,
    nonces: tuple[bytes, bytes],
    header: bytes,
    payload: bytes,
) -> None:
    """The floor: exactly the 4 AEAD calls of one encrypted and decrypted frame."""
    header_nonce, payload_nonce = nonces
    header_ciphertext = sender.encrypt(header_nonce, header, None)  # 6 -> 22 bytes
    payload_ciphertext = sender.encrypt(payload_nonce, payload, None)  # 24 -> 40 bytes
    receiver.decrypt(header_nonce, header_ciphertext, None)
    receiver.decrypt(payload_nonce, payload_ciphertext, None)


def _bulk(client: NoiseSession, server: NoiseSession, frame: bytes) -> None:
    wire = client.encrypt_frame(frame)
    feed = server.feed
    got = 0
    for start in range(0, len(wire), CHUNK):
        got += len(feed(wire[start : start + CHUNK]))
    assert got == 1


def run(quick: bool) -> list[Row]:
    handshake, client, server = _sessions()
    rows = [Row("Noise handshake, cached certificate", rate(handshake, quick=quick), "handshakes/s", HANDSHAKE_GOAL)]

    frame = SUBMIT_SHARES_STANDARD.to_frame()
    header, payload = frame[:FRAME_HEADER_SIZE], frame[FRAME_HEADER_SIZE:]
    assert server.feed(client.encrypt_frame(frame)) == [
        Frame(SUBMIT_SHARES_STANDARD.EXTENSION_TYPE, SUBMIT_SHARES_STANDARD.MSG_TYPE, True, payload)
    ]
    key = bytes(range(32))
    nonces = (_NONCE.pack(client.encryptor.nonce), _NONCE.pack(client.encryptor.nonce + 1))
    # Measured in alternation: the figure that matters is their ratio.
    floor, ours = rates(
        partial(_aead_frame, ChaCha20Poly1305(key), ChaCha20Poly1305(key), nonces, header, payload),
        partial(_frame_round_trip, client.encrypt_frame, server.feed, frame),
        quick=quick,
    )
    rows += [
        Row("SubmitSharesStandard bare AEAD floor (4 calls)", floor, "frames/s"),
        Row("SubmitSharesStandard encrypt_frame + feed", ours, "frames/s", FLOOR_RATIO_GOAL * floor),
        Row("  encrypt_frame + feed / bare AEAD floor", 100 * ours / floor, "%", 100 * FLOOR_RATIO_GOAL),
    ]

    bulk_frame = encode_frame(0, 0x7F, bytes(BULK_PAYLOAD), False)
    _bulk(client, server, bulk_frame)
    rows.append(
        Row(
            "1 MiB frames encrypt + feed in 64 KiB reads",
            rate(partial(_bulk, client, server, bulk_frame), quick=quick, work=BULK_PAYLOAD / 1e6),
            "MB/s",
        )
    )
    return rows
