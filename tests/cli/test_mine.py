"""sv2proxy-mine: a clear error and a non-zero exit when it cannot mine; SV1 mining end to end."""

import json
import re
import socket
import subprocess
import sys

import pytest

from sv2proxy.bitcoin.coinbase import build_coinbase
from sv2proxy.cli.mine import parse_url

KEY = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"


def test_parse_url():
    host, port, key = parse_url(f"stratum2+tcp://127.0.0.1:34254/{KEY}")
    assert (host, port, len(key)) == ("127.0.0.1", 34254, 32)
    for bad, why in [
        (f"http://127.0.0.1:3333/{KEY}", "expected stratum2"),
        (f"stratum2+tcp://127.0.0.1/{KEY}", "host and a port"),
        ("stratum2+tcp://127.0.0.1:3333/", "authority public key"),
        ("stratum2+tcp://127.0.0.1:3333/notakey", "base58check"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_url(bad)


def test_parse_stratum_v1_url():
    assert parse_url("stratum+tcp://127.0.0.1:3333") == ("127.0.0.1", 3333, None)
    assert parse_url("stratum+tcp://pool.example:3333/") == ("pool.example", 3333, None)
    assert parse_url("stratum+tcp://[::1]:3333") == ("::1", 3333, None)
    for bad, why in [
        ("stratum+tcp://127.0.0.1", "host and a port"),
        ("stratum+tcp://:3333", "host and a port"),
        (f"stratum+tcp://127.0.0.1:3333/{KEY}", "only HOST:PORT"),
        ("stratum+tcp://127.0.0.1:99999", "not a pool URL"),
        ("stratum+ssl://127.0.0.1:3333", "or stratum\\+tcp://HOST:PORT"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_url(bad)


@pytest.mark.parametrize(
    "args, why",
    [
        (["--standard", "stratum+tcp://127.0.0.1:3333"], "--standard is for stratum2"),
        (["--password", "x", f"stratum2+tcp://127.0.0.1:3333/{KEY}"], "are for stratum\\+tcp URLs"),
        (["--no-version-rolling", f"stratum2+tcp://127.0.0.1:3333/{KEY}"], "are for stratum\\+tcp URLs"),
        (["--suggest-difficulty", "0", "stratum+tcp://127.0.0.1:3333"], "must be positive"),
    ],
)
def test_options_that_do_not_fit_the_url_are_refused(args, why):
    result = subprocess.run(
        [sys.executable, "-m", "sv2proxy.cli.mine", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert re.search(why, result.stderr), result.stderr


def test_a_refused_stratum_v1_connection_exits_1_with_the_reason():
    result = subprocess.run(
        [sys.executable, "-m", "sv2proxy.cli.mine", "--seconds", "10", "stratum+tcp://127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot connect to 127.0.0.1:1" in result.stderr


def _answer(request, notify):
    """What the scripted pool writes back to one request."""
    method = request["method"]
    if method == "mining.configure":
        return _reply(request["id"], {"version-rolling": True, "version-rolling.mask": "1fffe000"})
    if method == "mining.subscribe":
        return _reply(request["id"], [[["mining.notify", "1"]], "f000000d", 4])
    if method == "mining.authorize":
        return (
            _reply(request["id"], True)
            + _notification("mining.set_difficulty", [2e-9])
            + _notification("mining.notify", notify)
        )
    return _reply(request["id"], True)


def _reply(request_id, result):
    return json.dumps({"id": request_id, "result": result, "error": None}).encode() + b"\n"


def _notification(method, params):
    return json.dumps({"id": None, "method": method, "params": params}).encode() + b"\n"


@pytest.mark.parametrize("version_rolling", [True, False])
def test_it_mines_against_a_stratum_v1_pool(version_rolling):
    """A scripted SV1 pool on loopback: the CLI subscribes, authorizes, mines and prints its stats."""
    payout = bytes.fromhex("0014") + bytes(20)  # P2WPKH
    coinbase = build_coinbase(extranonce_size=4 + 4, payouts=[(payout, 50 * 10**8)], height=1)
    notify = [
        "1",
        "0a8ce26f72b3f1b646a2a6c14ff763ae65831e939c085ae10019d66800000000",  # the genesis block, word-swapped
        coinbase.prefix.hex(),
        coinbase.suffix.hex(),
        [],
        "20000000",
        "1d00ffff",
        "4966bc61",
        True,
    ]
    flag = "--version-rolling" if version_rolling else "--no-version-rolling"
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(30)
        url = f"stratum+tcp://127.0.0.1:{server.getsockname()[1]}"
        miner = subprocess.Popen(
            [
                *(sys.executable, "-m", "sv2proxy.cli.mine", "--seconds", "4", "--hashes-per-second", "400"),
                *(flag, "--user", "alice.rig1", "--password", "secret", url),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        requests = []
        try:
            connection, _ = server.accept()
            with connection, connection.makefile("rb") as lines:
                connection.settimeout(30)
                try:
                    for line in lines:  # until the miner stops after --seconds and closes
                        request = json.loads(line)
                        requests.append(request)
                        connection.sendall(_answer(request, notify))
                except OSError:
                    pass  # the miner went away mid-reply: its run is over
            out, err = miner.communicate(timeout=30)
        finally:
            if miner.poll() is None:
                miner.kill()
                miner.communicate()
    assert miner.returncode == 0, err
    expected = ["mining.configure"] * version_rolling + ["mining.subscribe", "mining.authorize"]
    assert [r["method"] for r in requests[: len(expected)]] == expected
    assert requests[len(expected) - 1]["params"] == ["alice.rig1", "secret"]
    submits = [r for r in requests if r["method"] == "mining.submit"]
    assert submits
    assert {len(s["params"]) for s in submits} == {6 if version_rolling else 5}
    stats = re.search(r"shares submitted (\d+)\s+acknowledged (\d+)", out)
    assert stats and int(stats.group(2)) > 0, out


def test_a_refused_connection_exits_1_with_the_reason():
    result = subprocess.run(
        [sys.executable, "-m", "sv2proxy.cli.mine", "--seconds", "10", f"stratum2+tcp://127.0.0.1:1/{KEY}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot connect to 127.0.0.1:1" in result.stderr
