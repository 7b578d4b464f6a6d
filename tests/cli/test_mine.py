"""sv2proxy-mine: a clear error and a non-zero exit when it cannot mine."""

import subprocess
import sys

import pytest

from sv2proxy.cli.mine import parse_url

KEY = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"


def test_parse_url():
    host, port, key = parse_url(f"stratum2+tcp://127.0.0.1:34254/{KEY}")
    assert (host, port, len(key)) == ("127.0.0.1", 34254, 32)
    for bad, why in [
        (f"stratum+tcp://127.0.0.1:3333/{KEY}", "expected stratum2"),
        (f"stratum2+tcp://127.0.0.1/{KEY}", "host and a port"),
        ("stratum2+tcp://127.0.0.1:3333/", "authority public key"),
        ("stratum2+tcp://127.0.0.1:3333/notakey", "base58check"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_url(bad)


def test_a_refused_connection_exits_1_with_the_reason():
    result = subprocess.run(
        [sys.executable, "-m", "sv2proxy.cli.mine", "--seconds", "10", f"stratum2+tcp://127.0.0.1:1/{KEY}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot connect to 127.0.0.1:1" in result.stderr
