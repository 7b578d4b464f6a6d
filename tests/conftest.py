"""Shared pytest configuration for the whole test suite.

Hypothesis profiles: ``ci`` is bounded and derandomized (the same examples on
every run, no example database written), ``dev`` explores more and keeps its
database so a failure found locally replays.  Both disable the per-example
deadline: timing belongs to ``benchmarks/``, never to tests (STYLE.md).
The ``CI`` environment variable selects ``ci``; ``HYPOTHESIS_PROFILE``
overrides the choice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True, database=None)
settings.register_profile("dev", max_examples=100, deadline=None)
_IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _IN_CI else "dev"))


@pytest.fixture(autouse=True, scope="session")
def private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A HOME of the session's own, so defaults such as ~/.local/share/sv2proxy never touch
    the real one (twistd subprocesses inherit it too)."""
    home = tmp_path_factory.mktemp("home")
    saved = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    yield home
    if saved is None:
        del os.environ["HOME"]
    else:
        os.environ["HOME"] = saved


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[str]:
    """A PostgreSQL server the tests may create databases on (see sv2proxy.testing.postgresql)."""
    from sv2proxy.testing import postgresql

    try:
        with postgresql.server() as url:
            yield url
    except postgresql.Unavailable as e:
        if os.environ.get(postgresql.REQUIRE_VARIABLE):
            pytest.fail(f"PostgreSQL is required here ({postgresql.REQUIRE_VARIABLE}) but: {e}")
        pytest.skip(str(e))


@pytest.fixture
def postgresql_url(postgresql_server: str, request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, empty database of its own for one test."""
    import re

    from sv2proxy.testing import postgresql

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    return postgresql.with_database(postgresql_server, name)
