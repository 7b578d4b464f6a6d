"""The authority secret key file (sv2proxy/authority.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sv2proxy.authority import (
    AuthorityKeyExistsError,
    AuthorityKeyFileError,
    create_secret_key_file,
    load_or_create,
    load_secret_key_file,
)
from sv2proxy.errors import ConfigError
from sv2proxy.noise.keys import AuthorityKey

SRI_SECRET = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write(path: Path, text: str, mode: int) -> None:
    path.write_text(text)
    path.chmod(mode)


def test_create_writes_one_line_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "authority.key"
    key = create_secret_key_file(path)
    assert _mode(path) == 0o600
    assert path.read_text() == key.secret_text() + "\n"
    assert load_secret_key_file(path) == key


def test_create_ignores_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        create_secret_key_file(tmp_path / "k")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "k") == 0o600


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "authority.key"
    _write(path, SRI_SECRET + "\n", 0o600)
    with pytest.raises(AuthorityKeyExistsError, match="already exists; refusing to overwrite"):
        create_secret_key_file(path)
    assert path.read_text() == SRI_SECRET + "\n"


def test_create_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    link = tmp_path / "authority.key"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(AuthorityKeyExistsError):
        create_secret_key_file(link)
    assert not (tmp_path / "elsewhere").exists()


def test_create_in_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(AuthorityKeyFileError, match="directory does not exist"):
        create_secret_key_file(tmp_path / "nope" / "authority.key")


def test_create_a_given_key(tmp_path: Path) -> None:
    key = AuthorityKey.from_secret_text(SRI_SECRET)
    assert create_secret_key_file(tmp_path / "k", key) == key
    assert (tmp_path / "k").read_text() == SRI_SECRET + "\n"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
def test_load_refuses_access_by_others(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "authority.key"
    _write(path, SRI_SECRET, mode)
    with pytest.raises(AuthorityKeyFileError) as info:
        load_secret_key_file(path)
    message = str(info.value)
    assert f"has mode {mode:04o}" in message
    assert message.endswith(f"fix it with: chmod 600 {path}")
    assert isinstance(info.value, ConfigError)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_load_accepts_owner_only(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "authority.key"
    _write(path, SRI_SECRET + "\n", mode)
    assert load_secret_key_file(path).public_text == "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"


def test_load_missing_file_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "authority.key"
    with pytest.raises(AuthorityKeyFileError, match=f"create one with: sv2proxy-keygen {path}"):
        load_secret_key_file(path)


def test_load_garbage_does_not_echo_the_content(tmp_path: Path) -> None:
    path = tmp_path / "authority.key"
    _write(path, "0OIl-not-a-key", 0o600)
    with pytest.raises(AuthorityKeyFileError, match="does not hold a valid secret key") as info:
        load_secret_key_file(path)
    assert "0OIl" not in str(info.value) and "'0'" not in str(info.value)


def test_load_a_public_key_by_mistake(tmp_path: Path) -> None:
    path = tmp_path / "authority.key"
    _write(path, "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72", 0o600)
    with pytest.raises(AuthorityKeyFileError, match="does not hold a valid secret key"):
        load_secret_key_file(path)


def test_load_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(AuthorityKeyFileError, match="not a regular file"):
        load_secret_key_file(tmp_path)


def test_load_refuses_a_huge_file(tmp_path: Path) -> None:
    path = tmp_path / "big"
    _write(path, "x" * 10_000, 0o600)
    with pytest.raises(AuthorityKeyFileError, match="larger than 4096 bytes"):
        load_secret_key_file(path)


def test_load_or_create_creates_once_then_reuses(tmp_path: Path) -> None:
    path = tmp_path / "authority.key"
    created, was_created = load_or_create(path)
    assert was_created and _mode(path) == 0o600
    loaded, was_created = load_or_create(str(path))
    assert not was_created
    assert loaded == created


def test_load_or_create_still_checks_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "authority.key"
    _write(path, SRI_SECRET, 0o644)
    with pytest.raises(AuthorityKeyFileError, match="chmod 600"):
        load_or_create(path)
