"""``twistd sv2proxy``: the command-line options and the service tree (DESIGN.md "Layout").

:class:`Options` reads and validates the whole configuration in ``postOptions``, before twistd
daemonizes, so a mistake reaches the terminal instead of a log file nobody is reading yet.  A
configuration mistake exits 1 with exactly the one line of the
:class:`~sv2proxy.errors.ConfigError` on stderr; twistd's usage dump would only bury it.
:func:`makeService` only composes services: no I/O, nothing asynchronous.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.interfaces import IReactorCore
from twisted.python import usage

from sv2proxy.config import Config, help_text, load_config, option_name
from sv2proxy.daemon import Daemon
from sv2proxy.errors import ConfigError

#: The settings the command line can override; each becomes ``--dotted-key-with-dashes``.
COMMAND_LINE_KEYS = ("mode", "data_dir", "pool_url", "listen.sv2", "listen.sv1")


class ConfigExit(SystemExit):
    """Ends ``twistd`` with status 1 and the configuration error as its only output."""

    def __init__(self, line: str) -> None:
        super().__init__(f"sv2proxy: {line}")
        self.line = line


def _override_option(key: str) -> list[str | None]:
    return [option_name(key).removeprefix("--"), None, None, f"{help_text(key)} [{key}]"]


class Options(usage.Options):
    """Options of ``twistd sv2proxy``: a configuration file and overrides of its common keys."""

    synopsis = "[--config FILE] [options]"
    longdesc = (
        "Run sv2proxy, a Stratum V2 mining daemon (pool, solo and proxy modes). Settings come from"
        " FILE (YAML, or TOML including the seed's [stratum_v2] form; see conf/sv2proxy.yaml for"
        " every key and its default), or from the built-in defaults without --config; the"
        " options below override single settings. Use 'null' to disable a listener."
    )
    optParameters = [
        ["config", "c", None, "configuration file (.yaml, .yml or .toml)"],
        *(_override_option(key) for key in COMMAND_LINE_KEYS),
    ]

    loaded: Config | None = None

    def postOptions(self) -> None:
        given = ((key, self[option_name(key).removeprefix("--")]) for key in COMMAND_LINE_KEYS)
        overrides = {key: value for key, value in given if value is not None}
        try:
            self.loaded = load_config(self["config"], overrides)
        except ConfigError as e:
            raise ConfigExit(str(e)) from None


def makeService(options: Options, reactor: IReactorCore | None = None) -> Daemon:
    """The daemon's service tree for parsed ``options``; ``reactor`` defaults to the global one."""
    if options.loaded is None:
        raise ValueError("makeService needs parsed options (call parseOptions first)")
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = cast(IReactorCore, global_reactor)
    return Daemon(options.loaded, reactor)


__all__ = ["COMMAND_LINE_KEYS", "ConfigExit", "Options", "makeService"]
