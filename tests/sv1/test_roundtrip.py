"""Every encoder's line parses back to the values it was given.

Requests go encoder -> parse_message -> parse_request, notifications
encoder -> parse_message -> parse_notification, responses encoder ->
parse_message (and the result parsers).  Bytes and the prevhash come back
exactly; difficulties come back as the same float.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sv2proxy import sv1
from sv2proxy.sv1 import (
    Authorize,
    Configure,
    ExtranonceSubscribe,
    Notification,
    Notify,
    Reconnect,
    Request,
    Response,
    SetDifficulty,
    SetExtranonce,
    SetVersionMask,
    Submit,
    Subscribe,
    SuggestDifficulty,
)

from .strategies import difficulties, hash32, json_values, request_ids, small_bytes, u32, utf8_text, worker_names


def one_line(line: bytes) -> bytes:
    """The line without its newline, checking it is one line of compact ASCII JSON."""
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    body = line[:-1]
    assert json.dumps(json.loads(body), separators=(",", ":")).encode("ascii") == body
    return body


def request_of(line: bytes, request_id: int | str) -> Any:
    message = sv1.parse_message(one_line(line))
    assert isinstance(message, Request)
    assert message.id == request_id
    return sv1.parse_request(message)


def notification_of(line: bytes) -> Any:
    message = sv1.parse_message(one_line(line))
    assert isinstance(message, Notification)
    return sv1.parse_notification(message)


def response_of(line: bytes) -> Response:
    message = sv1.parse_message(one_line(line))
    assert isinstance(message, Response)
    return message


# Client -> server requests


@given(request_ids, st.none() | utf8_text)
def test_subscribe(request_id: int | str, user_agent: str | None) -> None:
    assert request_of(sv1.subscribe_request(request_id, user_agent), request_id) == Subscribe(user_agent)


@given(request_ids, worker_names, utf8_text)
def test_authorize(request_id: int | str, username: str, password: str) -> None:
    line = sv1.authorize_request(request_id, username, password)
    assert request_of(line, request_id) == Authorize(username, password)


@given(request_ids, u32, st.integers(0, 32))
def test_configure(request_id: int | str, mask: int, min_bit_count: int) -> None:
    parsed = request_of(sv1.configure_request(request_id, mask, min_bit_count), request_id)
    assert isinstance(parsed, Configure)
    assert parsed.extensions == ("version-rolling",)
    assert parsed.version_rolling() == (mask, min_bit_count)


@given(request_ids)
def test_extranonce_subscribe(request_id: int | str) -> None:
    assert request_of(sv1.extranonce_subscribe_request(request_id), request_id) == ExtranonceSubscribe()


@given(request_ids, difficulties)
def test_suggest_difficulty(request_id: int | str, difficulty: float) -> None:
    line = sv1.suggest_difficulty_request(request_id, difficulty)
    assert request_of(line, request_id) == SuggestDifficulty(difficulty)


@given(request_ids, worker_names, utf8_text, small_bytes, u32, u32, st.none() | u32)
def test_submit(
    request_id: int | str,
    worker: str,
    job_id: str,
    extranonce2: bytes,
    ntime: int,
    nonce: int,
    version_bits: int | None,
) -> None:
    line = sv1.submit_request(request_id, worker, job_id, extranonce2, ntime, nonce, version_bits)
    assert request_of(line, request_id) == Submit(worker, job_id, extranonce2, ntime, nonce, version_bits)


# Server -> client notifications


@given(utf8_text, hash32, small_bytes, small_bytes, st.lists(hash32, max_size=12), u32, u32, u32, st.booleans())
def test_notify(
    job_id: str,
    prev_hash: bytes,
    coinbase_prefix: bytes,
    coinbase_suffix: bytes,
    merkle_path: list[bytes],
    version: int,
    nbits: int,
    ntime: int,
    clean_jobs: bool,
) -> None:
    line = sv1.notify(
        job_id, prev_hash, coinbase_prefix, coinbase_suffix, merkle_path, version, nbits, ntime, clean_jobs
    )
    assert json.loads(line)["id"] is None
    assert notification_of(line) == Notify(
        job_id, prev_hash, coinbase_prefix, coinbase_suffix, tuple(merkle_path), version, nbits, ntime, clean_jobs
    )


@given(difficulties)
def test_set_difficulty(difficulty: float) -> None:
    parsed = notification_of(sv1.set_difficulty(difficulty))
    assert parsed == SetDifficulty(difficulty)


@given(small_bytes, st.integers(0, sv1.MAX_EXTRANONCE2_SIZE))
def test_set_extranonce(extranonce1: bytes, extranonce2_size: int) -> None:
    parsed = notification_of(sv1.set_extranonce(extranonce1, extranonce2_size))
    assert parsed == SetExtranonce(extranonce1, extranonce2_size)


@given(u32)
def test_set_version_mask(mask: int) -> None:
    assert notification_of(sv1.set_version_mask(mask)) == SetVersionMask(mask)


@given(utf8_text.filter(bool), st.integers(0, 0xFFFF), st.integers(0, 3600))
def test_reconnect(host: str, port: int, wait_seconds: int) -> None:
    assert notification_of(sv1.reconnect(host, port, wait_seconds)) == Reconnect(host, port, wait_seconds)


@given(hash32)
def test_prevhash_text(raw: bytes) -> None:
    text = sv1.prevhash_to_sv1(raw)
    assert len(text) == 64
    assert sv1.prevhash_from_sv1(text) == raw
    assert sv1.prevhash_from_sv1(text.upper()) == raw


# Responses


@given(st.none() | request_ids, json_values)
def test_result(request_id: int | str | None, value: Any) -> None:
    assert response_of(sv1.result(request_id, value)) == Response(request_id, value, None)


@given(st.none() | request_ids, st.integers(20, 25), st.text(max_size=30))
def test_error(request_id: int | str | None, code: int, message: str) -> None:
    response = response_of(sv1.error(request_id, code, message))
    assert response == Response(request_id, None, [code, message, None])
    assert sv1.parse_error(response.error) == (code, message)


@given(request_ids, utf8_text, small_bytes, st.integers(0, sv1.MAX_EXTRANONCE2_SIZE))
def test_subscribe_result(request_id: int | str, subscription_id: str, extranonce1: bytes, size: int) -> None:
    response = response_of(sv1.subscribe_result(request_id, subscription_id, extranonce1, size))
    assert response.id == request_id and response.error is None
    assert sv1.parse_subscribe_result(response.result) == (extranonce1, size)


_extension_names = st.sampled_from(
    ["version-rolling", "minimum-difficulty", "subscribe-extranonce", "info", "x-vendor"]
)


@given(request_ids, st.lists(_extension_names, max_size=5), st.none() | u32)
def test_configure_result(request_id: int | str, extensions: list[str], version_mask: int | None) -> None:
    configure = Configure(tuple(extensions))
    response = response_of(sv1.configure_result(request_id, configure, version_mask))
    granted = "version-rolling" in extensions and version_mask is not None
    assert set(response.result) == set(extensions) | ({"version-rolling.mask"} if granted else set())
    assert sv1.parse_configure_result(response.result) == (version_mask if granted else None)
