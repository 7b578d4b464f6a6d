"""Whatever a peer sends, the codec answers with Sv1Error (or a value), never anything else.

Fuzzing covers arbitrary bytes, arbitrary JSON, known methods with arbitrary
params, and valid lines with one field replaced by arbitrary JSON.  The
targeted cases pin the error code (20) and the request id the reply needs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy import sv1
from sv2proxy.sv1 import ERROR_OTHER, ERROR_UNAUTHORIZED, Configure, Notification, Request, Response, Sv1Error

from .strategies import json_objects, json_values, request_ids

REQUEST_METHODS = (
    "mining.subscribe",
    "mining.authorize",
    "mining.configure",
    "mining.extranonce.subscribe",
    "mining.suggest_difficulty",
    "mining.submit",
)
NOTIFICATION_METHODS = (
    "mining.notify",
    "mining.set_difficulty",
    "mining.set_extranonce",
    "mining.set_version_mask",
    "client.reconnect",
)
VALID_SUBMIT = ["w", "1", "00000000", "5d4a6b1c", "9f3b1e24", "20000000"]
VALID_NOTIFY = ["1", "00" * 32, "01", "02", ["00" * 32], "20000000", "1d00ffff", "5d4a6b1c", True]


def parse_fully(line: bytes) -> object:
    """parse_message, then the typed parser that applies: what a protocol would do with a line."""
    message = sv1.parse_message(line)
    if isinstance(message, Request):
        return sv1.parse_request(message)
    if isinstance(message, Notification):
        return sv1.parse_notification(message)
    return message


def expect_sv1_error(line: bytes) -> Sv1Error:
    with pytest.raises(Sv1Error) as caught:
        parse_fully(line)
    assert caught.value.code == ERROR_OTHER
    return caught.value


# Fuzzing


@given(st.binary(max_size=200))
def test_arbitrary_bytes(line: bytes) -> None:
    try:
        parse_fully(line)
    except Sv1Error:
        pass


@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    try:
        parse_fully(json.dumps(value).encode())
    except Sv1Error:
        pass


@given(json_objects)
def test_arbitrary_objects(value: dict[str, Any]) -> None:
    try:
        parse_fully(json.dumps(value).encode())
    except Sv1Error:
        pass


@given(request_ids, st.sampled_from(REQUEST_METHODS), st.lists(json_values, max_size=7))
def test_known_requests_with_arbitrary_params(request_id: int | str, method: str, params: list[Any]) -> None:
    try:
        sv1.parse_request(Request(request_id, method, tuple(params)))
    except Sv1Error as e:
        assert e.request_id == request_id


@given(st.sampled_from(NOTIFICATION_METHODS), st.lists(json_values, max_size=10))
def test_known_notifications_with_arbitrary_params(method: str, params: list[Any]) -> None:
    try:
        sv1.parse_notification(Notification(method, tuple(params)))
    except Sv1Error as e:
        assert e.request_id is None


@given(st.integers(0, len(VALID_SUBMIT) - 1), json_values)
def test_submit_with_one_field_replaced(index: int, value: Any) -> None:
    params = list(VALID_SUBMIT)
    params[index] = value
    try:
        sv1.parse_request(Request(5, "mining.submit", tuple(params)))
    except Sv1Error as e:
        assert e.request_id == 5


@given(st.integers(0, len(VALID_NOTIFY) - 1), json_values)
def test_notify_with_one_field_replaced(index: int, value: Any) -> None:
    params = list(VALID_NOTIFY)
    params[index] = value
    try:
        sv1.parse_notification(Notification("mining.notify", tuple(params)))
    except Sv1Error:
        pass


@given(json_values)
def test_result_parsers(value: Any) -> None:
    for parse in (sv1.parse_subscribe_result, sv1.parse_configure_result):
        try:
            parse(value)
        except Sv1Error:
            pass


@given(json_values)
def test_configure_parameters(parameters: Any) -> None:
    try:
        configure = sv1.parse_request(Request(1, "mining.configure", (["version-rolling"], parameters)))
    except Sv1Error as e:
        assert e.request_id == 1
    else:
        assert isinstance(configure, Configure)
        assert configure.version_rolling() is not None


@given(json_values)
def test_parse_error_never_raises(value: Any) -> None:
    parsed = sv1.parse_error(value)
    assert parsed is None or (isinstance(parsed[0], int) and isinstance(parsed[1], str))


def test_the_valid_bases_are_valid() -> None:
    sv1.parse_request(Request(5, "mining.submit", tuple(VALID_SUBMIT)))
    sv1.parse_notification(Notification("mining.notify", tuple(VALID_NOTIFY)))


# Targeted cases


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"not json",
        b"\xff\xfe{}",
        b'{"id":1,"method":"mining.subscribe"',  # cut short
        b"[1, 2]",
        b'"mining.subscribe"',
        b"null",
        b'{"id":1,"method":"mining.suggest_difficulty","params":[NaN]}',
        b'{"id":1,"method":"mining.suggest_difficulty","params":[Infinity]}',
        b"[" * 100_000,
        b'{"id":1}',  # neither a method nor a result
    ],
)
def test_garbage_lines(line: bytes) -> None:
    error = expect_sv1_error(line)
    if line != b'{"id":1}':
        assert error.request_id is None
    else:
        assert error.request_id == 1


@pytest.mark.parametrize("raw_id", [b"true", b"1.5", b"[1]", b'{"a":1}'])
def test_unusable_ids(raw_id: bytes) -> None:
    error = expect_sv1_error(b'{"id":' + raw_id + b',"method":"mining.subscribe","params":[]}')
    assert error.request_id is None


@pytest.mark.parametrize("params", [b'"x"', b"{}", b"1", b"true"])
def test_params_not_a_list(params: bytes) -> None:
    error = expect_sv1_error(b'{"id":"abc","method":"mining.subscribe","params":' + params + b"}")
    assert error.request_id == "abc"


def test_method_not_a_string() -> None:
    assert expect_sv1_error(b'{"id":3,"method":5,"params":[]}').request_id == 3


def test_unknown_method() -> None:
    error = expect_sv1_error(b'{"id":8,"method":"x","params":[]}')
    assert (error.request_id, error.message) == (8, "unknown method 'x'")
    assert expect_sv1_error(b'{"id":null,"method":"client.show_message","params":["hi"]}').request_id is None


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (3, "123456789"),  # ntime: nine hex digits
        (3, ""),
        (3, "xyz"),
        (3, "0x1234"),
        (3, " 1234"),
        (3, "12_34"),
        (3, "１２"),  # fullwidth digits
        (3, 1234),  # a number, not hex text
        (4, "1234567890"),
        (4, None),
        (5, "1fffe0000"),
        (5, "g"),
        (2, "abc"),  # extranonce2: odd length
        (2, "ab cd"),
        (0, 7),  # worker
        (0, "\ud800"),  # a lone surrogate, which SV2's UTF-8 strings cannot carry
        (1, 42),  # job_id
    ],
)
def test_bad_submit_fields(index: int, value: Any) -> None:
    params = list(VALID_SUBMIT)
    params[index] = value
    line = json.dumps({"id": 11, "method": "mining.submit", "params": params}).encode()
    assert expect_sv1_error(line).request_id == 11


def test_submit_needs_five_params() -> None:
    line = json.dumps({"id": 12, "method": "mining.submit", "params": VALID_SUBMIT[:4]}).encode()
    assert expect_sv1_error(line).request_id == 12


@pytest.mark.parametrize(
    "value",
    [0, -1, 0.0, -0.0001, "nan", "inf", "-inf", "1e999", True, None, [], "", "1_000", "0x10", "1e400", 10**400],
)
def test_bad_difficulty(value: Any) -> None:
    request = Request(13, "mining.suggest_difficulty", (value,))
    with pytest.raises(Sv1Error) as caught:
        sv1.parse_request(request)
    assert caught.value.request_id == 13
    with pytest.raises(Sv1Error):
        sv1.parse_notification(Notification("mining.set_difficulty", (value,)))


def test_json_overflowing_float_is_refused() -> None:
    # Python's json reads 1e400 as inf; a difficulty must be finite.
    expect_sv1_error(b'{"id":1,"method":"mining.suggest_difficulty","params":[1e400]}')


@pytest.mark.parametrize(
    "params",
    [
        [],
        ["version-rolling"],
        [["version-rolling"], []],
        [[1], {}],
        [["version-rolling"], {"version-rolling.mask": "fffffffff"}],
        [["version-rolling"], {"version-rolling.mask": 536862720}],
        [["version-rolling"], {"version-rolling.min-bit-count": 33}],
        [["version-rolling"], {"version-rolling.min-bit-count": "2"}],
        [["version-rolling"], {"version-rolling.min-bit-count": True}],
    ],
)
def test_bad_configure(params: list[Any]) -> None:
    with pytest.raises(Sv1Error) as caught:
        sv1.parse_request(Request(14, "mining.configure", tuple(params)))
    assert caught.value.request_id == 14


def test_configure_built_by_hand_with_bad_mask() -> None:
    with pytest.raises(Sv1Error):
        Configure(("version-rolling",), {"version-rolling.mask": "zz"}).version_rolling()


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("mining.authorize", []),
        ("mining.authorize", [None]),
        ("mining.authorize", ["w", 5]),
        ("mining.subscribe", [5]),
        ("mining.subscribe", ["agent", 5]),
    ],
)
def test_bad_subscribe_and_authorize(method: str, params: list[Any]) -> None:
    with pytest.raises(Sv1Error) as caught:
        sv1.parse_request(Request("q", method, tuple(params)))
    assert caught.value.request_id == "q"


@pytest.mark.parametrize("name", ["a\u0000b", "rig\n1", "\u001b[31mred", "tab\there", "del\u007f"])
@pytest.mark.parametrize(("method", "params"), [("mining.authorize", ["w", "x"]), ("mining.submit", VALID_SUBMIT)])
def test_worker_names_with_control_characters_are_unauthorized(name: str, method: str, params: list[Any]) -> None:
    """A worker's name is logged, shown and stored (PostgreSQL text takes no NUL): 24, not 20."""
    line = json.dumps({"id": 7, "method": method, "params": [name, *params[1:]]}).encode()
    with pytest.raises(Sv1Error) as caught:
        parse_fully(line)
    assert (caught.value.code, caught.value.request_id) == (ERROR_UNAUTHORIZED, 7)
    assert "must not contain control characters" in caught.value.message


@pytest.mark.parametrize("name", ["bc1q.rig-1_α", "ünïcode rig", "a~b"])
def test_worker_names_without_control_characters_are_kept(name: str) -> None:
    assert sv1.parse_request(Request(1, "mining.authorize", (name, "x"))) == sv1.Authorize(name, "x")


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (1, "00" * 31),  # prevhash one byte short
        (1, "zz" * 32),
        (1, 5),
        (2, "0"),
        (4, "00"),  # merkle path not a list
        (4, ["00" * 31]),  # branch not 32 bytes
        (5, "123456789"),
        (8, "true"),
        (8, 1),
        (0, None),
    ],
)
def test_bad_notify_fields(index: int, value: Any) -> None:
    params = list(VALID_NOTIFY)
    params[index] = value
    with pytest.raises(Sv1Error):
        sv1.parse_notification(Notification("mining.notify", tuple(params)))


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("mining.notify", VALID_NOTIFY[:8]),
        ("mining.set_extranonce", ["abc", 4]),
        ("mining.set_extranonce", ["ab", -1]),
        ("mining.set_extranonce", ["ab", 33]),
        ("mining.set_extranonce", ["ab"]),
        ("mining.set_version_mask", []),
        ("mining.set_version_mask", ["1fffe0000"]),
        ("client.reconnect", ["host", 70000]),
        ("client.reconnect", ["host", "port"]),
        ("client.reconnect", ["host", 3333, -5]),
        ("client.reconnect", [5]),
    ],
)
def test_bad_notifications(method: str, params: list[Any]) -> None:
    with pytest.raises(Sv1Error):
        sv1.parse_notification(Notification(method, tuple(params)))


@pytest.mark.parametrize(
    "value",
    [None, [], [[], "08000002"], [[], "0800000", 4], [[], "08000002", -1], [[], "08000002", True], {"a": 1}],
)
def test_bad_subscribe_result(value: Any) -> None:
    with pytest.raises(Sv1Error):
        sv1.parse_subscribe_result(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        True,
        {"version-rolling": True},  # granted without a mask
        {"version-rolling": "yes"},
        {"version-rolling": True, "version-rolling.mask": 5},
    ],
)
def test_bad_configure_result(value: Any) -> None:
    with pytest.raises(Sv1Error):
        sv1.parse_configure_result(value)


def test_response_with_bad_id() -> None:
    assert expect_sv1_error(b'{"id":true,"result":true,"error":null}').request_id is None
    response = sv1.parse_message(b'{"id":null,"result":null,"error":[20,"x",null]}')
    assert response == Response(None, None, [20, "x", None])


@pytest.mark.parametrize(
    "call",
    [
        lambda: sv1.prevhash_to_sv1(bytes(31)),
        lambda: sv1.notify("1", bytes(32), b"", b"", [bytes(31)], 0, 0, 0, False),
        lambda: sv1.notify("1", bytes(32), b"", b"", [], 1 << 32, 0, 0, False),
        lambda: sv1.set_difficulty(0),
        lambda: sv1.set_difficulty(float("nan")),
        lambda: sv1.set_difficulty(float("inf")),
        lambda: sv1.set_version_mask(-1),
        lambda: sv1.set_extranonce(b"", 33),
        lambda: sv1.subscribe_result(1, "s", b"", -1),
        lambda: sv1.reconnect("h", 70000),
        lambda: sv1.configure_request(1, 0x1FFFE000, 33),
        lambda: sv1.submit_request(1, "w", "j", b"", 0, -1),
        lambda: sv1.result(1, float("nan")),
    ],
)
def test_encoders_refuse_values_out_of_range(call: Any) -> None:
    with pytest.raises(ValueError):
        call()
