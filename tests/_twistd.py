"""Run the real ``twistd`` in a child process and read its output with deadlines, never sleeps.

Shared by the tests that prove the plugin, the options and the daemon work as an operator runs
them: the ``twistd`` script installed next to this interpreter, started from a scratch directory.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Generous: a loaded CI machine may take seconds to import Twisted; a healthy run takes ~1 s.
DEADLINE = 60.0


def twistd_script() -> str:
    """The ``twistd`` console script of the environment running the tests."""
    beside = Path(sys.executable).parent / "twistd"
    found = str(beside) if beside.exists() else shutil.which("twistd")
    if found is None:
        raise RuntimeError("no twistd script beside the interpreter nor on PATH")
    return found


def unprivileged() -> list[str]:
    """A command prefix under which file permissions apply to this process's children.

    Root ignores permission bits; dropping CAP_DAC_OVERRIDE (with setpriv) makes a read-only
    directory read-only for a root child too.  Empty when not root; LookupError when root
    cannot drop it (the caller skips).
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise LookupError("running as root without setpriv: cannot drop CAP_DAC_OVERRIDE")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]


def run(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run ``twistd ARGS`` to completion (stderr merged into stdout)."""
    return subprocess.run(
        [*prefix, twistd_script(), *args],
        cwd=cwd,
        env=_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class Twistd:
    """A running ``twistd`` whose output lines are collected as they arrive."""

    def __init__(
        self,
        args: Sequence[str],
        cwd: Path,
        env: Mapping[str, str] | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        self.process = subprocess.Popen(
            [*prefix, twistd_script(), *args],
            cwd=cwd,
            env=_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            bufsize=0,
        )
        self.lines: list[str] = []
        self._partial = b""

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = DEADLINE) -> str:
        """The first output line containing ``text``; fails if the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if text in line:
                    return line
            seen = len(self.lines)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {text!r} within {timeout}s:\n{self.output}")
            if not self._read(remaining):
                raise AssertionError(f"twistd ended before printing {text!r}:\n{self.output}")

    def _read(self, timeout: float) -> bool:
        """Read what is available (waiting up to ``timeout``); False at end of output."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return True
        chunk = os.read(fd, 65536)
        if not chunk:
            if self._partial:
                self.lines.append(self._partial.decode(errors="replace"))
                self._partial = b""
            return False
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        self.lines.extend(line.decode(errors="replace") + "\n" for line in complete)
        return True

    def terminate(self, timeout: float = DEADLINE) -> int:
        """Send SIGTERM, read the rest of the output and return the exit status."""
        self.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._read(max(deadline - time.monotonic(), 0.0)):
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError(f"twistd still running {timeout}s after SIGTERM")
        return self.process.wait(timeout=max(deadline - time.monotonic(), 1.0))

    def kill(self) -> None:
        """Make sure the process is gone (test teardown)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=DEADLINE)
        assert self.process.stdout is not None
        self.process.stdout.close()
