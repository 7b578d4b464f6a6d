"""The error kinds of SEED-API.md share one root and carry what a reply needs."""

import pytest

from sv2proxy.errors import (
    ConfigError,
    MiningJob,
    MiningJobError,
    PoolError,
    ProtocolError,
    ServerError,
    StratumV2Error,
)


@pytest.mark.parametrize("kind", [ServerError, ProtocolError, MiningJobError, PoolError, ConfigError])
def test_every_kind_is_a_stratum_v2_error(kind):
    assert issubclass(kind, StratumV2Error)


def test_the_seed_name_mining_job_is_the_same_class():
    assert MiningJob is MiningJobError


def test_protocol_error_carries_the_spec_error_code():
    error = ProtocolError("share for an unknown channel", "invalid-channel-id")
    assert error.error_code == "invalid-channel-id"
    assert str(error) == "share for an unknown channel"
    assert ProtocolError("garbage").error_code is None
