"""The twistd plugin: found by Twisted from any directory, and calm about its plugin cache.

Twisted finds ``twistd`` plugins by scanning ``twisted/plugins`` under every ``sys.path`` entry
and keeps what it learnt in a ``dropin.cache`` beside them (twisted.plugin.getCache).  When that
cache is older than a plugin file it is rebuilt by importing the plugins, and rewritten; where the
directory is not writable the rewrite fails and Twisted logs "Unable to write to plugin cache"
into the daemon's start-up output.  These tests pin down both halves: a stale, unwritable cache
never breaks anything, and the refresh the systemd unit runs before starting the daemon leaves
nothing for the daemon itself to write, so its output stays clean.
"""

from __future__ import annotations

import ast
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin, getPlugins
from zope.interface.verify import verifyObject

from _twistd import Twistd, run, unprivileged

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "twisted" / "plugins" / "sv2proxy_plugin.py"
UNIT = ROOT / "conf" / "sv2proxy.service"
NOT_WRITTEN = "Unable to write to plugin cache"


def test_found_by_twisted() -> None:
    makers = [m for m in getPlugins(IServiceMaker) if m.tapname == "sv2proxy"]
    assert len(makers) == 1
    maker = makers[0]
    assert verifyObject(IServiceMaker, maker)
    assert IPlugin.providedBy(maker)
    assert maker.description
    from sv2proxy.tap import Options

    assert maker.options is Options


def test_plugin_file_is_one_service_maker() -> None:
    assert not (PLUGIN.parent / "__init__.py").exists()  # it would shadow twisted.plugins
    tree = ast.parse(PLUGIN.read_text())
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ServiceMaker"
    ]
    assert len(calls) == 1
    assert [ast.literal_eval(arg) for arg in calls[0].args] == [
        "sv2proxy",
        "sv2proxy.tap",
        "A Stratum V2 mining daemon: pool, solo and proxy modes",
        "sv2proxy",
    ]


def test_distribution_ships_the_plugin() -> None:
    setupcfg = pytest.importorskip("setuptools.config.setupcfg")
    options = setupcfg.read_configuration(str(ROOT / "setup.cfg"))["options"]
    assert "twisted.plugins" in options["packages"]
    assert "twisted" not in options["packages"]  # never a twisted/__init__.py of ours


def test_twistd_lists_the_plugin_from_any_directory(tmp_path: Path) -> None:
    result = run(["--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "sv2proxy" in result.stdout.split("Commands:")[1]


# -- the plugin cache ------------------------------------------------------------------------------


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Iterator[Path]:
    """A read-only plugin directory holding our plugin and a stale dropin.cache.

    It is put on PYTHONPATH, as a system-wide install is: the cache was right once (written by
    a refresh), then the plugin file was replaced by a newer one (an upgrade).
    """
    plugins = tmp_path / "site" / "twisted" / "plugins"
    plugins.mkdir(parents=True)
    shutil.copy(PLUGIN, plugins / PLUGIN.name)
    refresh_cache(plugins)
    cache = plugins / "dropin.cache"
    assert cache.exists()
    long_ago = (plugins / PLUGIN.name).stat().st_mtime - 3600
    os.utime(cache, (long_ago, long_ago))
    plugins.chmod(0o555)
    yield plugins
    plugins.chmod(0o755)


def env_for(plugins: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(plugins.parent.parent)}


def unit_refresh_command() -> str:
    """The Python code the systemd unit runs (with full privileges) before the daemon."""
    for line in UNIT.read_text().splitlines():
        if line.startswith("ExecStartPre=+"):
            argv = shlex.split(line.removeprefix("ExecStartPre=+"))
            assert argv[1] == "-c"
            return argv[2]
    raise AssertionError("the unit refreshes no plugin cache")


def refresh_cache(plugins: Path) -> None:
    """Run the unit's refresh as the directory's owner would: allowed to write it."""
    mode = stat.S_IMODE(plugins.stat().st_mode)
    plugins.chmod(0o755)
    try:
        subprocess.run(
            [sys.executable, "-c", unit_refresh_command()],
            # Not this checkout's directory: `python -c` puts the working directory first on
            # sys.path, and Twisted scans only the first twisted/plugins/sv2proxy_plugin.py.
            cwd=plugins.parent.parent,
            env={**os.environ, **env_for(plugins)},
            check=True,
            timeout=60,
        )
    finally:
        plugins.chmod(mode)


@pytest.fixture
def as_unprivileged() -> list[str]:
    try:
        return unprivileged()
    except LookupError as e:
        pytest.skip(str(e))


def test_stale_unwritable_cache_breaks_nothing(
    tmp_path: Path, plugin_dir: Path, as_unprivileged: list[str]
) -> None:
    cache = plugin_dir / "dropin.cache"
    before = (cache.read_bytes(), cache.stat().st_mtime)
    result = run(["--help"], cwd=tmp_path, env=env_for(plugin_dir), prefix=as_unprivileged)
    assert result.returncode == 0, result.stdout
    assert "sv2proxy" in result.stdout.split("Commands:")[1]
    assert "Traceback" not in result.stdout
    assert (cache.read_bytes(), cache.stat().st_mtime) == before  # it really could not write


def test_refreshed_cache_keeps_the_daemon_output_clean(
    tmp_path: Path, plugin_dir: Path, as_unprivileged: list[str]
) -> None:
    refresh_cache(plugin_dir)  # ExecStartPre=+ in conf/sv2proxy.service
    (tmp_path / "sv2proxy.yaml").write_text(
        "data_dir: data\nlisten:\n  sv2: 127.0.0.1:0\n  sv1: null\n"
    )
    daemon = Twistd(
        ["-n", "--pidfile=", "sv2proxy", "--config", "sv2proxy.yaml"],
        cwd=tmp_path,
        env=env_for(plugin_dir),
        prefix=as_unprivileged,
    )
    try:
        daemon.wait_for("sv2proxy running")
        status = daemon.terminate()
    finally:
        daemon.kill()
    assert status in (0, -signal.SIGTERM)
    assert NOT_WRITTEN not in daemon.output
    assert "Traceback" not in daemon.output
