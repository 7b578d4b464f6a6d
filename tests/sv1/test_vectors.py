"""Hand-written Stratum V1 lines, checked both ways where we send them too.

The shapes are those of slush's Stratum V1 document (its ``mining.notify``
and ``mining.submit`` examples are reproduced verbatim, spacing included) and
BIP310 for ``mining.configure``; the prevhash vector is PROTOCOL.md's genesis
worked example (§6, referenced from §8).  Hashes are raw SHA256d bytes, as on
the SV2 wire.
"""

from __future__ import annotations

import json

import pytest

from sv2proxy import sv1
from sv2proxy.sv1 import (
    BIP320_MASK,
    ERROR_LOW_DIFFICULTY,
    VERSION_ROLLING_MASK,
    Authorize,
    Configure,
    Notification,
    Notify,
    Reconnect,
    Request,
    Response,
    SetDifficulty,
    Submit,
    Subscribe,
    SuggestDifficulty,
    Sv1Error,
)


def h(text: str) -> bytes:
    """Hex to bytes, spaces allowed."""
    return bytes.fromhex(text)


# Genesis block hash: explorers show 000000000019d668...; raw (SetNewPrevHash.prev_hash for block 1):
GENESIS_RAW = h("6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000")
# The same as mining.notify's prevhash: each 4-byte word byte-reversed.
GENESIS_SV1 = "0a8ce26f72b3f1b646a2a6c14ff763ae65831e939c085ae10019d66800000000"


def notification(line: bytes) -> object:
    """The typed notification of a server line."""
    message = sv1.parse_message(line)
    assert isinstance(message, Notification)
    return sv1.parse_notification(message)


def request(line: bytes) -> object:
    """The typed request of a client line."""
    message = sv1.parse_message(line)
    assert isinstance(message, Request)
    return sv1.parse_request(message)


def test_genesis_prevhash() -> None:
    assert sv1.prevhash_to_sv1(GENESIS_RAW) == GENESIS_SV1
    assert sv1.prevhash_from_sv1(GENESIS_SV1) == GENESIS_RAW
    # Explorers print the raw bytes reversed; the SV1 text is neither order.
    assert GENESIS_RAW[::-1].hex().startswith("000000000019d668")


# slush's document, mining.notify (block 0x1c2ac4af-era testnet job), spacing as published.
SLUSH_NOTIFY = (
    b'{"params": ["bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000",'
    b' "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff'
    b'20020862062f503253482f04b8864e5008",'
    b' "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef990332704'
    b'8ed988ac00000000", [], "00000002", "1c2ac4af", "504e86b9", false], "id": null, "method": "mining.notify"}'
)
SLUSH_NOTIFY_VALUES = Notify(
    job_id="bf",
    # the prevhash text with its words swapped back
    prev_hash=h("f8b6164d19e2f65a2aae448f787fe66d61e57a48c0c6771b1e920b4400000000"),
    # version 1 | 1 input | null prevout | scriptSig length 0x20 | BIP34 height push ... extranonce goes after
    coinbase_prefix=h(
        "01000000 01 0000000000000000000000000000000000000000000000000000000000000000 ffffffff"
        " 20 020862062f503253482f04b8864e5008"
    ),
    # rest of scriptSig | sequence | 1 output of 50 BTC to a P2PKH | locktime
    coinbase_suffix=h(
        "072f736c7573682f 00000000 01 00f2052a01000000 19 76a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac 00000000"
    ),
    merkle_path=(),
    version=0x00000002,
    nbits=0x1C2AC4AF,
    ntime=0x504E86B9,
    clean_jobs=False,
)


def test_slush_notify_parses() -> None:
    message = sv1.parse_message(SLUSH_NOTIFY)
    assert isinstance(message, Notification)
    assert sv1.parse_notification(message) == SLUSH_NOTIFY_VALUES


def test_slush_notify_is_what_we_send() -> None:
    v = SLUSH_NOTIFY_VALUES
    line = sv1.notify(
        v.job_id, v.prev_hash, v.coinbase_prefix, v.coinbase_suffix, v.merkle_path, v.version, v.nbits, v.ntime, False
    )
    assert json.loads(line) == json.loads(SLUSH_NOTIFY)
    assert line.startswith(b'{"id":null,"method":"mining.notify","params":["bf","4d16b6f8')


def test_notify_exact_bytes() -> None:
    branch = bytes(range(32))
    line = sv1.notify("1a", GENESIS_RAW, h("0102"), h("0304"), [branch], 0x20000000, 0x1D00FFFF, 0x495FAB29, True)
    assert line == (
        b'{"id":null,"method":"mining.notify","params":["1a",'
        b'"0a8ce26f72b3f1b646a2a6c14ff763ae65831e939c085ae10019d66800000000","0102","0304",'
        b'["000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"],'
        b'"20000000","1d00ffff","495fab29",true]}\n'
    )


# slush's document, mining.submit, spacing as published.
SLUSH_SUBMIT = (
    b'{"params": ["slush.miner1", "bf", "00000001", "504e86ed", "b2957c02"], "id": 4, "method": "mining.submit"}'
)


def test_slush_submit() -> None:
    message = sv1.parse_message(SLUSH_SUBMIT)
    assert message == Request(4, "mining.submit", ("slush.miner1", "bf", "00000001", "504e86ed", "b2957c02"))
    submit = sv1.parse_request(message)
    assert submit == Submit("slush.miner1", "bf", h("00000001"), 0x504E86ED, 0xB2957C02, None)
    assert sv1.submit_request(4, "slush.miner1", "bf", h("00000001"), 0x504E86ED, 0xB2957C02) == (
        b'{"id":4,"method":"mining.submit","params":["slush.miner1","bf","00000001","504e86ed","b2957c02"]}\n'
    )


def test_submit_with_version_bits() -> None:
    # BIP310: the sixth param is the rolled version bits, big-endian hex.
    line = (
        b'{"id":7,"method":"mining.submit",'
        b'"params":["acct.rig1","2a","0000000000000000","5d4a6b1c","9f3b1e24","1c800000"]}'
    )
    submit = request(line)
    assert submit == Submit("acct.rig1", "2a", bytes(8), 0x5D4A6B1C, 0x9F3B1E24, 0x1C800000)
    assert sv1.submit_request(7, "acct.rig1", "2a", bytes(8), 0x5D4A6B1C, 0x9F3B1E24, 0x1C800000) == line + b"\n"


def test_short_hex_fields_are_zero_extended() -> None:
    line = b'{"id":1,"method":"mining.submit","params":["w","j","00","1","ab",null]}'
    assert request(line) == Submit("w", "j", b"\x00", 1, 0xAB, None)


# BIP310 mining.configure, the BIP's own example request.
BIP310_CONFIGURE = (
    b'{"method": "mining.configure","id": 1,"params": [["minimum-difficulty", "version-rolling"],'
    b'{"minimum-difficulty.value": 2048, "version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2}]}'
)


def test_bip310_configure_exchange() -> None:
    configure = request(BIP310_CONFIGURE)
    assert isinstance(configure, Configure)
    assert configure.extensions == ("minimum-difficulty", "version-rolling")
    assert configure.version_rolling() == (0x1FFFE000, 2)
    mask = sv1.negotiate_version_mask(0x1FFFE000, 2)
    assert mask == 0x1FFFE000
    reply = sv1.configure_result(1, configure, mask)
    assert reply == (
        b'{"id":1,"result":{"minimum-difficulty":false,"version-rolling":true,'
        b'"version-rolling.mask":"1fffe000"},"error":null}\n'
    )
    # Exactly the two extensions asked for, plus the mask: WhatsMiner refuses anything more.
    assert set(json.loads(reply)["result"]) == {"minimum-difficulty", "version-rolling", "version-rolling.mask"}
    assert sv1.parse_configure_result(json.loads(reply)["result"]) == 0x1FFFE000


def test_configure_refused_and_other_extensions() -> None:
    asked = Configure(("version-rolling", "subscribe-extranonce", "info"), {})
    assert sv1.configure_result(3, asked, None) == (
        b'{"id":3,"result":{"version-rolling":false,"subscribe-extranonce":false,"info":false},"error":null}\n'
    )
    assert sv1.parse_configure_result({"version-rolling": False}) is None
    assert sv1.configure_result(4, Configure(("minimum-difficulty",)), 0x1FFFE000) == (
        b'{"id":4,"result":{"minimum-difficulty":false},"error":null}\n'
    )


def test_configure_without_mask_asks_for_every_bit() -> None:
    line = b'{"id":1,"method":"mining.configure","params":[["version-rolling"],{}]}'
    configure = request(line)
    assert isinstance(configure, Configure)
    assert configure.version_rolling() == (0xFFFFFFFF, 0)
    assert sv1.negotiate_version_mask(0xFFFFFFFF, 0) == VERSION_ROLLING_MASK
    assert Configure(("minimum-difficulty",), {}).version_rolling() is None


def test_configure_request_bytes() -> None:
    assert sv1.configure_request(2, 0x1FFFE000, 2) == (
        b'{"id":2,"method":"mining.configure","params":[["version-rolling"],'
        b'{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2}]}\n'
    )


@pytest.mark.parametrize(
    ("requested", "min_bit_count", "allowed", "granted"),
    [
        (0x1FFFE000, 2, VERSION_ROLLING_MASK, 0x1FFFE000),
        (0xFFFFFFFF, 0, VERSION_ROLLING_MASK, 0x1FFFFFE0),
        (0xFFFFFFFF, 16, BIP320_MASK, 0x1FFFE000),
        (0xFFFFFFFF, 17, BIP320_MASK, None),
        (0x0000001F, 1, VERSION_ROLLING_MASK, None),  # only bits outside BIP323's range
        (0x00006000, 2, VERSION_ROLLING_MASK, 0x00006000),
    ],
)
def test_negotiate_version_mask(requested: int, min_bit_count: int, allowed: int, granted: int | None) -> None:
    assert sv1.negotiate_version_mask(requested, min_bit_count, allowed) == granted


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"id": 1, "method": "mining.subscribe", "params": []}', Subscribe()),
        (b'{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.10.0"]}', Subscribe("cgminer/4.10.0")),
        (b'{"id":1,"method":"mining.subscribe","params":["bmminer/2.0.0","5a3b"]}', Subscribe("bmminer/2.0.0", "5a3b")),
        (b'{"id":1,"method":"mining.subscribe","params":["agent",null]}', Subscribe("agent")),
        # extra host and port after the session id, as some firmwares send
        (b'{"id":1,"method":"mining.subscribe","params":["a",null,"pool.example",3333]}', Subscribe("a")),
        (
            b'{"params": ["slush.miner1", "password"], "id": 2, "method": "mining.authorize"}',
            Authorize("slush.miner1", "password"),
        ),
        (b'{"id":2,"method":"mining.authorize","params":["w"]}', Authorize("w")),
        (b'{"id":2,"method":"mining.authorize","params":["w",null]}', Authorize("w")),
        (b'{"id":3,"method":"mining.suggest_difficulty","params":[0.0001]}', SuggestDifficulty(0.0001)),
        (b'{"id":3,"method":"mining.suggest_difficulty","params":["0.0001"]}', SuggestDifficulty(0.0001)),
        (b'{"id":3,"method":"mining.suggest_difficulty","params":[512]}', SuggestDifficulty(512.0)),
        (b'{"id":3,"method":"mining.suggest_difficulty","params":[1e-8]}', SuggestDifficulty(1e-8)),
        (b'{"id":4,"method":"mining.extranonce.subscribe","params":[]}', sv1.ExtranonceSubscribe()),
        (b'{"id":4,"method":"mining.extranonce.subscribe"}', sv1.ExtranonceSubscribe()),
    ],
)
def test_client_requests(line: bytes, expected: object) -> None:
    assert request(line) == expected


def test_suggest_difficulty_keeps_tiny_values() -> None:
    parsed = request(b'{"id":3,"method":"mining.suggest_difficulty","params":[0.0001]}')
    assert isinstance(parsed, SuggestDifficulty)
    assert parsed.difficulty == 0.0001 and parsed.difficulty > 0


def test_subscribe_result_bytes() -> None:
    line = sv1.subscribe_result(1, "ae6812eb", h("08000002"), 4)
    assert line == (
        b'{"id":1,"result":[[["mining.set_difficulty","ae6812eb"],["mining.notify","ae6812eb"]],'
        b'"08000002",4],"error":null}\n'
    )


def test_slush_subscribe_result() -> None:
    # slush's document's answer: subscriptions, extranonce1, extranonce2_size.
    line = (
        b'{"id": 1, "result": [ [ ["mining.set_difficulty", "b4b6693b72a50c7116db18d6497cac52"],'
        b' ["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]], "08000002", 4], "error": null}'
    )
    response = sv1.parse_message(line)
    assert isinstance(response, Response) and response.id == 1
    assert sv1.parse_subscribe_result(response.result) == (h("08000002"), 4)


def test_result_and_error_bytes() -> None:
    assert sv1.result(2, True) == b'{"id":2,"result":true,"error":null}\n'
    assert sv1.error(4, ERROR_LOW_DIFFICULTY, "Low difficulty share") == (
        b'{"id":4,"result":null,"error":[23,"Low difficulty share",null]}\n'
    )
    assert sv1.error(None, 20, "bad") == b'{"id":null,"result":null,"error":[20,"bad",null]}\n'


@pytest.mark.parametrize(
    ("difficulty", "text"),
    [
        (1024.0, b"[1024]"),
        (1024, b"[1024]"),
        (1.0, b"[1]"),
        (0.0001, b"[0.0001]"),
        (2.5, b"[2.5]"),
        (1e-8, b"[1e-08]"),
    ],
)
def test_set_difficulty_bytes(difficulty: float, text: bytes) -> None:
    assert sv1.set_difficulty(difficulty) == b'{"id":null,"method":"mining.set_difficulty","params":' + text + b"}\n"


def test_other_notifications_bytes() -> None:
    assert sv1.set_extranonce(h("deadbeef"), 4) == (
        b'{"id":null,"method":"mining.set_extranonce","params":["deadbeef",4]}\n'
    )
    assert sv1.set_version_mask(0x1FFFE000) == b'{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}\n'
    assert sv1.reconnect("pool.example", 3333) == (
        b'{"id":null,"method":"client.reconnect","params":["pool.example","3333",0]}\n'
    )  # the port as text: what cgminer-based firmware reads


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ('["pool.example.com", 3333, 5]', Reconnect("pool.example.com", 3333, 5)),
        ('["pool.example.com", "3333"]', Reconnect("pool.example.com", 3333, 0)),
        ("[]", Reconnect(None, None, 0)),
        ('["", null, null]', Reconnect(None, None, 0)),
    ],
)
def test_reconnect_variants(params: str, expected: Reconnect) -> None:
    line = b'{"id":null,"method":"client.reconnect","params":' + params.encode() + b"}"
    assert sv1.parse_notification(sv1.parse_message(line)) == expected  # type: ignore[arg-type]


def test_set_difficulty_from_pool() -> None:
    line = b'{"id": null, "method": "mining.set_difficulty", "params": [0.5]}'
    assert sv1.parse_notification(sv1.parse_message(line)) == SetDifficulty(0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (None, None),
        ([21, "Job not found", None], (21, "Job not found")),
        ({"code": 23, "message": "low"}, (23, "low")),
        ("Stale share", (20, "Stale share")),
        ([True, 5], (20, "5")),
        ([], (20, "[]")),
    ],
)
def test_parse_error(error: object, expected: tuple[int, str] | None) -> None:
    assert sv1.parse_error(error) == expected


def test_sv1_error_is_a_protocol_error() -> None:
    with pytest.raises(Sv1Error) as caught:
        sv1.parse_request(Request(9, "mining.get_transactions", ()))
    assert (caught.value.code, caught.value.message, caught.value.request_id) == (
        20,
        "unknown method 'mining.get_transactions'",
        9,
    )
