"""sv2proxy.tap: the options of ``twistd sv2proxy`` and the service tree they make."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from twisted.application.service import IService, MultiService
from twisted.internet.testing import MemoryReactor

from _twistd import run
from sv2proxy.config import Mode, load_config
from sv2proxy.daemon import Daemon
from sv2proxy.tap import COMMAND_LINE_KEYS, ConfigExit, Options, makeService

PUBKEY = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def test_no_config_means_the_defaults() -> None:
    assert parse().loaded == load_config(None)


def test_config_file(tmp_path: Path) -> None:
    file = tmp_path / "x.yaml"
    file.write_text("listen:\n  sv1: null\n")
    for flag in ("--config", "-c"):
        options = parse(flag, str(file))
        assert options.loaded is not None
        assert options.loaded.listen.sv1 is None


def test_overrides(tmp_path: Path) -> None:
    options = parse(
        "--mode=proxy",
        f"--pool-url=stratum2+tcp://pool.example.com:34254/{PUBKEY}",
        f"--data-dir={tmp_path}",
        "--listen-sv2=127.0.0.1:0",
        "--listen-sv1=null",
    )
    config = options.loaded
    assert config is not None
    assert config.mode is Mode.PROXY
    assert config.data_dir == tmp_path
    assert config.listen.sv2 is not None and config.listen.sv2.text == "127.0.0.1:0"
    assert config.listen.sv1 is None


def test_help_documents_every_option() -> None:
    text = str(Options())
    for option in ("--config", "-c", "--mode", "--data-dir", "--pool-url", "--listen-sv2"):
        assert option in text
    assert "--listen-sv1" in text and "--web-listen" in text
    assert len(COMMAND_LINE_KEYS) == 6


def test_bad_config_is_a_one_line_exit(tmp_path: Path) -> None:
    file = tmp_path / "x.yaml"
    file.write_text("listen:\n  sv2: '3333'\n")
    with pytest.raises(ConfigExit) as caught:
        parse("--config", str(file))
    assert caught.value.line == f"{file}: listen.sv2: expected HOST:PORT, got '3333'"
    assert caught.value.code == f"sv2proxy: {file}: listen.sv2: expected HOST:PORT, got '3333'"


def test_bad_override_names_the_option() -> None:
    with pytest.raises(ConfigExit) as caught:
        parse("--listen-sv2", "3333")
    assert caught.value.line == "--listen-sv2: expected HOST:PORT, got '3333'"


def test_make_service(tmp_path: Path) -> None:
    file = tmp_path / "x.yaml"
    file.write_text(f"data_dir: {tmp_path / 'data'}\nlisten:\n  sv2: 127.0.0.1:0\n")
    options = parse("--config", str(file))
    # Parsing made the data directory and the authority key, before any daemonizing.
    assert (tmp_path / "data" / "authority.key").stat().st_mode & 0o777 == 0o600
    assert options.authority is not None and options.authority_created
    before = sorted((tmp_path / "data").iterdir())
    reactor = MemoryReactor()
    service = makeService(options, reactor)
    assert isinstance(service, Daemon)
    assert isinstance(service, MultiService)
    assert IService.providedBy(service)
    assert service.config == options.loaded
    assert service.reactor is reactor
    assert service.authority == options.authority
    assert [child.name for child in service] == ["store", "mining", "regtest-node", "node", "sv2-miners", "web"]
    assert not service.running
    assert sorted((tmp_path / "data").iterdir()) == before  # makeService does no I/O


@pytest.mark.parametrize(
    ("listen", "names"),
    [
        ("  sv2: 127.0.0.1:3334\n  sv1: 127.0.0.1:3333\n", ["sv2-miners", "sv1-miners"]),
        ("  sv2: 127.0.0.1:3334\n  sv1: 127.0.0.1:3334\n", ["miners"]),  # one port for both
        ("  sv2: null\n  sv1: 127.0.0.1:3333\n", ["sv1-miners"]),
    ],
)
def test_miner_listeners_follow_the_listen_section(tmp_path: Path, listen: str, names: list[str]) -> None:
    file = tmp_path / "x.yaml"
    file.write_text(f"data_dir: {tmp_path / 'data'}\nlisten:\n{listen}")
    service = makeService(parse("--config", str(file)), MemoryReactor())
    miners = [child.name for child in service if child.name.endswith("miners")]
    assert miners == names


def test_the_web_side_is_last_and_can_be_disabled(tmp_path: Path) -> None:
    file = tmp_path / "x.yaml"
    file.write_text(f"data_dir: {tmp_path / 'data'}\nweb:\n  listen: 127.0.0.1:0\n")
    service = makeService(parse("--config", str(file)), MemoryReactor())
    assert [child.name for child in service][-1] == "web"
    file.write_text(f"data_dir: {tmp_path / 'data'}\nweb:\n  listen: null\n")
    service = makeService(parse("--config", str(file)), MemoryReactor())
    assert "web" not in [child.name for child in service]


def test_the_authority_key_is_kept_across_starts(tmp_path: Path) -> None:
    file = tmp_path / "x.yaml"
    file.write_text(f"data_dir: {tmp_path / 'data'}\n")
    first = parse("--config", str(file))
    second = parse("--config", str(file))
    assert first.authority_created and not second.authority_created
    assert second.authority == first.authority


def test_a_readable_key_file_is_one_line_at_start(tmp_path: Path) -> None:
    key = tmp_path / "authority.key"
    parse("--config", _write(tmp_path, f"noise:\n  authority_key_file: {key}\n"))
    key.chmod(0o644)
    with pytest.raises(ConfigExit) as caught:
        parse("--config", _write(tmp_path, f"noise:\n  authority_key_file: {key}\n"))
    assert str(key) in caught.value.line and "chmod 600" in caught.value.line


def test_no_sv2_listener_needs_no_key(tmp_path: Path) -> None:
    options = parse("--config", _write(tmp_path, f"data_dir: {tmp_path / 'data'}\nlisten:\n  sv2: null\n"))
    assert options.authority is None
    assert not (tmp_path / "data").exists()
    children = [child.name for child in makeService(options, MemoryReactor())]
    assert children == ["store", "mining", "regtest-node", "node", "web"]


def _write(tmp_path: Path, text: str) -> str:
    file = tmp_path / "x.yaml"
    file.write_text(text)
    return str(file)


def test_make_service_defaults_to_the_global_reactor() -> None:
    from twisted.internet import reactor

    assert makeService(parse()).reactor is reactor


def test_make_service_needs_parsed_options() -> None:
    with pytest.raises(ValueError, match="parseOptions"):
        makeService(Options())


def test_importing_the_tap_leaves_the_reactor_alone() -> None:
    # Importing the global reactor installs the default one; twistd must choose it instead.
    code = (
        "import sys, sv2proxy.tap, sv2proxy.config, sv2proxy.daemon;"
        " sys.exit('twisted.internet.reactor' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_twistd_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("listen:\n  sv3: 0.0.0.0:1\n")
    result = run(["-n", "--pidfile=", "sv2proxy", "--config", "bad.yaml"], cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout
    # Exactly one line: no usage dump, no traceback.
    assert result.stdout.splitlines() == ["sv2proxy: bad.yaml: listen.sv3: unknown key (did you mean 'sv2'?)"]
    assert not (tmp_path / "twistd.pid").exists()
