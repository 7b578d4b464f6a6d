"""A throwaway PostgreSQL server for tests and benchmarks: the distribution's own binaries, a
private cluster in a temporary directory, on a free loopback port, gone when the caller is done.

``SV2PROXY_TEST_POSTGRESQL`` (a ``postgresql://`` URL of a server on which databases may be
created) is used instead when set.  Without either, the PostgreSQL tests skip with the reason,
unless ``SV2PROXY_REQUIRE_POSTGRESQL`` is set (CI sets it: there a missing server is a failure).
Test and demo equipment only, like the rest of :mod:`sv2proxy.testing`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

URL_VARIABLE = "SV2PROXY_TEST_POSTGRESQL"
REQUIRE_VARIABLE = "SV2PROXY_REQUIRE_POSTGRESQL"
ROLE = "sv2proxy"


class Unavailable(Exception):
    """No PostgreSQL server can be had on this machine."""


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if not candidates:
        raise Unavailable(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return candidates[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def private_server() -> Iterator[str]:
    """Start a private cluster; yields the URL of its ``postgres`` database as the owner role."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    prefix: list[str] = []
    directory = tempfile.mkdtemp(prefix="sv2proxy-pg-")
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: the distribution's postgres user runs it.
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no postgres user to run PostgreSQL") from None
        os.chown(directory, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(directory, "data")
    port = _free_port()
    try:
        subprocess.run(
            [*prefix, initdb, "-D", data, "-U", ROLE, "-A", "trust", "--no-sync", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1"
        subprocess.run(
            [*prefix, pg_ctl, "-D", data, "-o", options, "-l", os.path.join(directory, "log"), "-w", "start"],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as e:
        shutil.rmtree(directory, ignore_errors=True)
        raise Unavailable(f"cannot start PostgreSQL: {(e.stderr or b'').decode(errors='replace').strip()}") from e
    try:
        yield f"postgresql://{ROLE}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def server() -> Iterator[str]:
    """The configured server's URL, or a private one's."""
    url = os.environ.get(URL_VARIABLE)
    if url:
        yield url
        return
    with private_server() as url:
        yield url


def with_database(server_url: str, name: str) -> str:
    """``server_url`` pointing at a new empty database ``name`` (dropped first if it exists)."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"
