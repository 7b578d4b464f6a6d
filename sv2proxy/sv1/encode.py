"""Stratum V1 encoders: values in, one newline-terminated JSON line out (PROTOCOL.md §8).

Lines are compact ASCII JSON with the keys in the order miners' own pools
send them (``id``, then ``method``/``params`` or ``result``/``error``), so a
capture reads like any other pool's.  Arguments out of range raise
``ValueError``: they are our bugs, not a peer's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sv2proxy.sv1.constants import (
    EXTENSION_VERSION_ROLLING,
    MAX_EXTRANONCE2_SIZE,
    METHOD_AUTHORIZE,
    METHOD_CONFIGURE,
    METHOD_EXTRANONCE_SUBSCRIBE,
    METHOD_NOTIFY,
    METHOD_RECONNECT,
    METHOD_SET_DIFFICULTY,
    METHOD_SET_EXTRANONCE,
    METHOD_SET_VERSION_MASK,
    METHOD_SUBMIT,
    METHOD_SUBSCRIBE,
    METHOD_SUGGEST_DIFFICULTY,
    VERSION_ROLLING_MASK_PARAM,
    VERSION_ROLLING_MIN_BIT_COUNT_PARAM,
)
from sv2proxy.sv1.fields import PREVHASH_SIZE, difficulty_json, prevhash_to_sv1, u32_hex
from sv2proxy.sv1.messages import Configure, RequestId


def _line(message: dict[str, Any]) -> bytes:
    # allow_nan=False: NaN/Infinity are not JSON, and a miner choking on one loses the connection.
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


def _request(request_id: RequestId, method: str, params: list[Any]) -> bytes:
    return _line({"id": request_id, "method": method, "params": params})


def _notification(method: str, params: list[Any]) -> bytes:
    # "id": null rather than no id, as slush's document and pools since write it.
    return _line({"id": None, "method": method, "params": params})


# Server -> client: responses ---------------------------------------------------------------


def result(request_id: RequestId | None, value: Any) -> bytes:
    """A successful response."""
    return _line({"id": request_id, "result": value, "error": None})


def error(request_id: RequestId | None, code: int, message: str) -> bytes:
    """An error response, ``[code, message, null]`` as Stratum V1 pools send it."""
    return _line({"id": request_id, "result": None, "error": [code, message, None]})


def subscribe_result(request_id: RequestId, subscription_id: str, extranonce1: bytes, extranonce2_size: int) -> bytes:
    """The ``mining.subscribe`` answer: subscriptions, extranonce1, extranonce2 size."""
    _check_extranonce2_size(extranonce2_size)
    subscriptions = [[METHOD_SET_DIFFICULTY, subscription_id], [METHOD_NOTIFY, subscription_id]]
    return result(request_id, [subscriptions, extranonce1.hex(), extranonce2_size])


def configure_result(request_id: RequestId, request: Configure, version_mask: int | None) -> bytes:
    """The ``mining.configure`` answer, naming only the extensions the miner asked for.

    WhatsMiner firmware refuses a reply with keys it did not ask about, so
    every other asked extension is answered ``false`` and nothing is added.
    """
    answer: dict[str, Any] = {}
    for extension in request.extensions:
        if extension == EXTENSION_VERSION_ROLLING and version_mask is not None:
            answer[extension] = True
            answer[VERSION_ROLLING_MASK_PARAM] = u32_hex(version_mask)
        else:
            answer[extension] = False
    return result(request_id, answer)


# Server -> client: notifications ------------------------------------------------------------


def notify(
    job_id: str,
    prev_hash: bytes,
    coinbase_prefix: bytes,
    coinbase_suffix: bytes,
    merkle_path: Sequence[bytes],
    version: int,
    nbits: int,
    ntime: int,
    clean_jobs: bool,
) -> bytes:
    """``mining.notify``; ``prev_hash`` is the 32 raw bytes of SV2 ``SetNewPrevHash``."""
    for branch in merkle_path:
        if len(branch) != PREVHASH_SIZE:
            raise ValueError(f"a merkle branch is {PREVHASH_SIZE} bytes, got {len(branch)}")
    params = [
        job_id,
        prevhash_to_sv1(prev_hash),
        coinbase_prefix.hex(),
        coinbase_suffix.hex(),
        [branch.hex() for branch in merkle_path],
        u32_hex(version),
        u32_hex(nbits),
        u32_hex(ntime),
        bool(clean_jobs),
    ]
    return _notification(METHOD_NOTIFY, params)


def set_difficulty(difficulty: float) -> bytes:
    """``mining.set_difficulty``; integral difficulties go out as JSON integers."""
    return _notification(METHOD_SET_DIFFICULTY, [difficulty_json(difficulty)])


def set_extranonce(extranonce1: bytes, extranonce2_size: int) -> bytes:
    """``mining.set_extranonce`` (only for miners that sent ``mining.extranonce.subscribe``)."""
    _check_extranonce2_size(extranonce2_size)
    return _notification(METHOD_SET_EXTRANONCE, [extranonce1.hex(), extranonce2_size])


def set_version_mask(mask: int) -> bytes:
    """``mining.set_version_mask`` (BIP310)."""
    return _notification(METHOD_SET_VERSION_MASK, [u32_hex(mask)])


def reconnect(host: str, port: int, wait_seconds: int = 0) -> bytes:
    """``client.reconnect``: move to ``host:port`` after ``wait_seconds``.

    The port goes as decimal text: cgminer and the firmware built on it (most ASICs) read it
    with ``json_string_value`` and silently keep their old port for a number, while cpuminer
    and our own decoder take either.
    """
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"a port is 0..65535, got {port}")
    if wait_seconds < 0:
        raise ValueError(f"wait_seconds must not be negative, got {wait_seconds}")
    return _notification(METHOD_RECONNECT, [host, str(port), wait_seconds])


# Client -> server requests -------------------------------------------------------------------


def subscribe_request(request_id: RequestId, user_agent: str | None = None) -> bytes:
    """``mining.subscribe``, with the user agent if there is one."""
    return _request(request_id, METHOD_SUBSCRIBE, [] if user_agent is None else [user_agent])


def authorize_request(request_id: RequestId, username: str, password: str = "") -> bytes:
    """``mining.authorize``."""
    return _request(request_id, METHOD_AUTHORIZE, [username, password])


def configure_request(request_id: RequestId, mask: int, min_bit_count: int = 0) -> bytes:
    """``mining.configure`` asking for version rolling only (BIP310)."""
    if not 0 <= min_bit_count <= 32:
        raise ValueError(f"min_bit_count is 0..32, got {min_bit_count}")
    parameters = {VERSION_ROLLING_MASK_PARAM: u32_hex(mask), VERSION_ROLLING_MIN_BIT_COUNT_PARAM: min_bit_count}
    return _request(request_id, METHOD_CONFIGURE, [[EXTENSION_VERSION_ROLLING], parameters])


def extranonce_subscribe_request(request_id: RequestId) -> bytes:
    """``mining.extranonce.subscribe``."""
    return _request(request_id, METHOD_EXTRANONCE_SUBSCRIBE, [])


def suggest_difficulty_request(request_id: RequestId, difficulty: float) -> bytes:
    """``mining.suggest_difficulty``."""
    return _request(request_id, METHOD_SUGGEST_DIFFICULTY, [difficulty_json(difficulty)])


def submit_request(
    request_id: RequestId,
    worker: str,
    job_id: str,
    extranonce2: bytes,
    ntime: int,
    nonce: int,
    version_bits: int | None = None,
) -> bytes:
    """``mining.submit``; the sixth param (version bits) only when rolling the version."""
    params: list[Any] = [worker, job_id, extranonce2.hex(), u32_hex(ntime), u32_hex(nonce)]
    if version_bits is not None:
        params.append(u32_hex(version_bits))
    return _request(request_id, METHOD_SUBMIT, params)


def _check_extranonce2_size(size: int) -> None:
    if not 0 <= size <= MAX_EXTRANONCE2_SIZE:
        raise ValueError(f"extranonce2_size is 0..{MAX_EXTRANONCE2_SIZE}, got {size}")
