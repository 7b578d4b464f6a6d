"""SetupConnection negotiation for miner connections (PROTOCOL.md §4, SPEC 03 §3.6.1).

Pure: a SetupConnection in, the Success or Error to answer out.  We serve the
Mining protocol at version 2; of its flags we honour REQUIRES_STANDARD_JOBS and
REQUIRES_VERSION_ROLLING, and refuse REQUIRES_WORK_SELECTION (no Job
Declaration here) and any bit the spec does not define.
"""

from __future__ import annotations

from sv2proxy.codec.common import SetupConnection, SetupConnectionError, SetupConnectionSuccess
from sv2proxy.codec.constants import (
    ERROR_PROTOCOL_VERSION_MISMATCH,
    ERROR_UNSUPPORTED_FEATURE_FLAGS,
    ERROR_UNSUPPORTED_PROTOCOL,
    PROTOCOL_MINING,
    PROTOCOL_VERSION,
    REQUIRES_STANDARD_JOBS,
    REQUIRES_VERSION_ROLLING,
)

SUPPORTED_MINING_FLAGS = REQUIRES_STANDARD_JOBS | REQUIRES_VERSION_ROLLING


def negotiate_mining_setup(
    request: SetupConnection, supported_flags: int = SUPPORTED_MINING_FLAGS
) -> SetupConnectionSuccess | SetupConnectionError:
    """The answer to a miner's SetupConnection."""
    if request.protocol != PROTOCOL_MINING:
        return SetupConnectionError(flags=0, error_code=ERROR_UNSUPPORTED_PROTOCOL)
    if not request.min_version <= PROTOCOL_VERSION <= request.max_version:
        return SetupConnectionError(flags=0, error_code=ERROR_PROTOCOL_VERSION_MISMATCH)
    unsupported = request.flags & ~supported_flags
    if unsupported:
        # The error's flags name exactly what we do not support.
        return SetupConnectionError(flags=unsupported, error_code=ERROR_UNSUPPORTED_FEATURE_FLAGS)
    # No flags of ours: we accept version changes and standard channels.
    return SetupConnectionSuccess(used_version=PROTOCOL_VERSION, flags=0)
