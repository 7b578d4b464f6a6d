"""sv2proxy.daemon: the top service, in memory and as a real ``twistd`` process."""

from __future__ import annotations

import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail
from twisted.internet.testing import MemoryReactor
from twisted.logger import ILogObserver, LogEvent, LogLevel, formatEvent, globalLogPublisher
from zope.interface import implementer

from _twistd import Twistd
from sv2proxy.config import Config, describe, load_config
from sv2proxy.daemon import Daemon
from sv2proxy.errors import ServerError
from sv2proxy.events import EventBus


@implementer(ILogObserver)
class DaemonEvents(list[LogEvent]):
    """Collects the log events of sv2proxy.daemon."""

    def __call__(self, event: LogEvent) -> None:
        if event.get("log_namespace") == "sv2proxy.daemon":
            self.append(event)


@pytest.fixture
def events() -> Iterator[list[LogEvent]]:
    """Log events emitted by sv2proxy.daemon while the test runs."""
    seen = DaemonEvents()
    globalLogPublisher.addObserver(seen)
    yield seen
    globalLogPublisher.removeObserver(seen)


def config_in(tmp_path: Path) -> Config:
    return load_config(None, {"data_dir": str(tmp_path / "state" / "sv2proxy")})


class Recorder(Service):
    """A child that notes when it starts and stops, and can fail its stop."""

    def __init__(self, log: list[str], fail_stop: bool = False) -> None:
        self.log = log
        self.fail_stop = fail_stop

    def startService(self) -> None:
        super().startService()
        self.log.append(f"start {self.name}")

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        self.log.append(f"stop {self.name}")
        return fail(RuntimeError("boom")) if self.fail_stop else None


def stop(daemon: Daemon) -> None:
    results: list[object] = []
    daemon.stopService().addBoth(results.append)
    assert results == [None]  # nothing here waits: the stop completes at once


def test_holds_what_children_share(tmp_path: Path) -> None:
    config = config_in(tmp_path)
    reactor = MemoryReactor()
    bus = EventBus()
    daemon = Daemon(config, reactor, bus)
    assert (daemon.config, daemon.reactor, daemon.events) == (config, reactor, bus)
    assert daemon.name == "sv2proxy"
    assert isinstance(Daemon(config, reactor).events, EventBus)


def test_start_creates_the_data_dir_private(tmp_path: Path) -> None:
    daemon = Daemon(config_in(tmp_path), MemoryReactor())
    daemon.startService()
    data_dir = tmp_path / "state" / "sv2proxy"
    assert data_dir.is_dir()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    stop(daemon)


def test_start_keeps_an_existing_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "state" / "sv2proxy"
    data_dir.mkdir(parents=True, mode=0o700)
    (data_dir / "authority.key").write_text("kept")
    daemon = Daemon(config_in(tmp_path), MemoryReactor())
    daemon.startService()
    assert (data_dir / "authority.key").read_text() == "kept"
    stop(daemon)


def test_start_warns_about_a_data_dir_others_can_read(
    tmp_path: Path, events: list[LogEvent]
) -> None:
    data_dir = tmp_path / "state" / "sv2proxy"
    data_dir.mkdir(parents=True)
    data_dir.chmod(0o755)
    daemon = Daemon(config_in(tmp_path), MemoryReactor())
    daemon.startService()
    warnings = [e for e in events if e["log_level"] is LogLevel.warn and "path" in e]
    assert [(e["path"], e["mode"]) for e in warnings] == [(data_dir, 0o755)]
    stop(daemon)


def test_start_refuses_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "sv2proxy").write_text("")
    daemon = Daemon(config_in(tmp_path), MemoryReactor())
    with pytest.raises(ServerError, match="exists and is not a directory"):
        daemon.startService()
    assert not daemon.running


def test_start_logs_the_configuration_and_the_children(
    tmp_path: Path, events: list[LogEvent]
) -> None:
    config = config_in(tmp_path)
    reactor = MemoryReactor()
    daemon = Daemon(config, reactor)
    order: list[str] = []
    daemon.add(Recorder(order), "listener-sv2")
    daemon.add(Recorder(order), "listener-sv1")
    daemon.startService()
    logged = [f"{e['key']} = {e['value']}" for e in events if "key" in e]
    assert logged == describe(config)
    assert events[-1]["services"] == "listener-sv2, listener-sv1"
    assert order == ["start listener-sv2", "start listener-sv1"]
    reactor.run()
    assert events[-1]["log_format"] == "sv2proxy running pid={pid}"
    stop(daemon)
    assert order[2:] == ["stop listener-sv1", "stop listener-sv2"]  # reverse order
    assert events[-1]["log_format"] == "sv2proxy stopped cleanly"


def test_stop_reports_a_child_that_failed_to_stop(tmp_path: Path, events: list[LogEvent]) -> None:
    daemon = Daemon(config_in(tmp_path), MemoryReactor())
    order: list[str] = []
    daemon.add(Recorder(order, fail_stop=True), "bad")
    daemon.add(Recorder(order), "good")
    daemon.startService()
    stop(daemon)
    assert order[2:] == ["stop good", "stop bad"]
    failures = [e for e in events if e.get("log_failure") is not None]
    assert len(failures) == 1
    failures[0]["log_failure"].trap(RuntimeError)
    assert events[-1]["failed"] == 1


def test_twistd_runs_and_stops_the_daemon(tmp_path: Path) -> None:
    (tmp_path / "sv2proxy.yaml").write_text(
        "data_dir: data\nlisten:\n  sv2: 127.0.0.1:0\n  sv1: 127.0.0.1:0\n"
    )
    daemon = Twistd(
        ["-n", "--pidfile=", "sv2proxy", "--config", "sv2proxy.yaml"],
        cwd=tmp_path,
    )
    try:
        daemon.wait_for("sv2proxy starting")
        daemon.wait_for("config listen.sv2 = 127.0.0.1:0")
        daemon.wait_for("config noise.clock_leeway = 10")
        daemon.wait_for("sv2proxy started services=")
        daemon.wait_for("sv2proxy running pid=")  # SIGTERM before this would not be handled
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
        status = daemon.terminate()
    finally:
        daemon.kill()
    # twistd re-raises the signal that stopped it once everything is shut down, so a clean
    # stop on SIGTERM ends "killed by SIGTERM", which systemd counts as a clean exit.
    assert status in (0, -signal.SIGTERM)
    assert "sv2proxy stopped cleanly" in daemon.output
    assert "Server Shut Down." in daemon.output
    assert "Traceback" not in daemon.output


def test_start_warns_about_roles_this_version_does_not_serve(tmp_path: Path) -> None:
    config = load_config(
        None,
        {
            "data_dir": str(tmp_path / "data"),
            "listen.sv1": "127.0.0.1:3333",
            "pool_url": "stratum+tcp://pool.example.com:3333",
        },
    )
    warnings: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("log_level") == LogLevel.warn:
            warnings.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        Daemon(config, MemoryReactor()).startService()
    finally:
        globalLogPublisher.removeObserver(observe)
    texts = [formatEvent(event) for event in warnings]
    assert any("no block template source" in text for text in texts) is False  # proxy mode here
    assert not any("Stratum V1 miners" in text for text in texts)  # served since issue 6
    # Stratum V1 upstream pools are served since proxy mode learned them: nothing to warn about.
    assert not any("Stratum V1 upstream" in text for text in texts)
    assert not any("no Stratum V2 pool to connect to" in text for text in texts)
