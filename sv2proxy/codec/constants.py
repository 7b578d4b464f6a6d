"""Protocol numbers and strings with the spec's names (PROTOCOL.md §4, §6).

The spec dropped its suggested error codes in 2026-05; these are the strings
SRI and sv2-tp use on the wire, which is what peers understand.
"""

# SetupConnection.protocol
PROTOCOL_MINING = 0
PROTOCOL_JOB_DECLARATION = 1
PROTOCOL_TEMPLATE_DISTRIBUTION = 2

PROTOCOL_VERSION = 2

# SetupConnection.flags for the Mining protocol (bit 0 = LSB)
REQUIRES_STANDARD_JOBS = 1 << 0
REQUIRES_WORK_SELECTION = 1 << 1
REQUIRES_VERSION_ROLLING = 1 << 2
# SetupConnection.Success.flags for the Mining protocol
REQUIRES_FIXED_VERSION = 1 << 0
REQUIRES_EXTENDED_CHANNELS = 1 << 1
# SetupConnection.flags for Job Declaration
DECLARE_TX_DATA = 1 << 0

# Version-rolling masks: BIP323 (what the spec references now) and BIP320.
VERSION_ROLLING_MASK = 0x1FFFFFE0
BIP320_VERSION_ROLLING_MASK = 0x1FFFE000

MAX_EXTRANONCE_SIZE = 32

# SetupConnection.Error
ERROR_UNSUPPORTED_FEATURE_FLAGS = "unsupported-feature-flags"
ERROR_UNSUPPORTED_PROTOCOL = "unsupported-protocol"
ERROR_PROTOCOL_VERSION_MISMATCH = "protocol-version-mismatch"
ERROR_MISSING_DECLARE_TX_DATA_FLAG = "missing-declare-tx-data-flag"

# OpenMiningChannel.Error / UpdateChannel.Error
ERROR_UNKNOWN_USER = "unknown-user"
ERROR_MAX_TARGET_OUT_OF_RANGE = "max-target-out-of-range"
ERROR_INVALID_USER_IDENTITY = "invalid-user-identity"
ERROR_INVALID_NOMINAL_HASHRATE = "invalid-nominal-hashrate"
ERROR_MIN_EXTRANONCE_SIZE_TOO_LARGE = "min-extranonce-size-too-large"
ERROR_UNSUPPORTED_MIN_EXTRANONCE_SIZE = "unsupported-min-extranonce-size"
ERROR_STANDARD_CHANNELS_NOT_SUPPORTED_FOR_CUSTOM_WORK = "standard-channels-not-supported-for-custom-work"
ERROR_EXTENDED_CHANNELS_NOT_SUPPORTED_FOR_STANDARD_JOBS = "extended-channels-not-supported-for-standard-jobs"

# SubmitShares.Error (also UpdateChannel.Error's invalid-channel-id)
ERROR_INVALID_CHANNEL_ID = "invalid-channel-id"
ERROR_STALE_SHARE = "stale-share"
ERROR_DIFFICULTY_TOO_LOW = "difficulty-too-low"
ERROR_INVALID_JOB_ID = "invalid-job-id"
ERROR_INVALID_SHARE = "invalid-share"
ERROR_DUPLICATE_SHARE = "duplicate-share"
ERROR_BAD_EXTRANONCE_SIZE = "bad-extranonce-size"
ERROR_VERSION_ROLLING_NOT_ALLOWED = "version-rolling-not-allowed"
ERROR_INVALID_NON_ROLLABLE_VERSION_BIT = "invalid-non-rollable-version-bit"

# RequestTransactionData.Error
ERROR_TEMPLATE_ID_NOT_FOUND = "template-id-not-found"
ERROR_STALE_TEMPLATE_ID = "stale-template-id"
