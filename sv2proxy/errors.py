"""The error hierarchy of sv2proxy (SEED-API.md, "Errors").

Every failure we raise on purpose is a :class:`StratumV2Error`; its kinds say
which layer gave up, and the message says what a person can do about it.
"""

from __future__ import annotations


class StratumV2Error(Exception):
    """Root of every error sv2proxy raises deliberately."""


class ServerError(StratumV2Error):
    """The daemon could not do what was asked (listener, node, store, config)."""


class ProtocolError(StratumV2Error):
    """A peer sent bytes that break the wire format or the protocol state.

    ``error_code`` is the spec's error string to answer with where a reply
    exists (``SetupConnection.Error``, ``SubmitShares.Error``, ...); it is
    ``None`` when the only sensible answer is to close the connection.
    """

    def __init__(self, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class MiningJobError(StratumV2Error):
    """A job could not be built or does not exist (the seed's ``MiningJob``)."""


#: The seed API names this kind ``MiningJob``; both names refer to one class.
MiningJob = MiningJobError


class PoolError(StratumV2Error):
    """The pool refused an operation: channel space exhausted, unknown channel, ..."""


class ConfigError(ServerError):
    """The configuration is wrong; ``str()`` is the one line to show the operator."""


__all__ = [
    "StratumV2Error",
    "ServerError",
    "ProtocolError",
    "MiningJobError",
    "MiningJob",
    "PoolError",
    "ConfigError",
]
