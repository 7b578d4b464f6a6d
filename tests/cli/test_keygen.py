"""``sv2proxy-keygen`` (sv2proxy/cli/keygen.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sv2proxy.authority import load_secret_key_file
from sv2proxy.cli.keygen import main
from sv2proxy.noise.keys import decode_authority_public_key


def test_creates_the_key_and_prints_only_the_public_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "authority.key"
    assert main([str(path)]) == 0
    out, err = capsys.readouterr()
    public_text = out.strip()
    assert out == public_text + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = load_secret_key_file(path)
    assert key.public_text == public_text
    assert decode_authority_public_key(public_text) == key.public
    assert str(path) in err and "0600" in err
    assert key.secret_text() not in out + err


def test_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "authority.key"
    assert main([str(path)]) == 0
    before = path.read_bytes()
    capsys.readouterr()
    assert main([str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("sv2proxy-keygen: error: ") and "already exists" in err
    assert path.read_bytes() == before


def test_show_prints_the_public_key_of_an_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "authority.key"
    main([str(path)])
    created = capsys.readouterr().out
    assert main(["--show", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == created and err == ""


def test_show_refuses_a_readable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "authority.key"
    main([str(path)])
    path.chmod(0o644)
    capsys.readouterr()
    assert main(["--show", str(path)]) == 1
    assert f"chmod 600 {path}" in capsys.readouterr().err


def test_missing_directory_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "no" / "such" / "dir" / "k")]) == 1
    assert "directory does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["a", "b"], ["--force", "k"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: sv2proxy-keygen" in capsys.readouterr().err
