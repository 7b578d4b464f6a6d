"""Stratum V1 numbers: error codes, line limit, version-rolling masks (PROTOCOL.md §8).

The error codes are the ones slush's Stratum V1 document lists and every
pool and firmware since understands; BIP310 and BIP320/BIP323 define the
version-rolling masks.
"""

from __future__ import annotations

# JSON-RPC error codes answered in ``"error": [code, message, null]``.
ERROR_OTHER = 20
ERROR_JOB_NOT_FOUND = 21  # job not found, or stale
ERROR_DUPLICATE = 22
ERROR_LOW_DIFFICULTY = 23
ERROR_UNAUTHORIZED = 24
ERROR_NOT_SUBSCRIBED = 25

#: The texts pools traditionally send with each code; miners only show them.
ERROR_MESSAGES: dict[int, str] = {
    ERROR_OTHER: "Other/Unknown",
    ERROR_JOB_NOT_FOUND: "Job not found",
    ERROR_DUPLICATE: "Duplicate share",
    ERROR_LOW_DIFFICULTY: "Low difficulty share",
    ERROR_UNAUTHORIZED: "Unauthorized worker",
    ERROR_NOT_SUBSCRIBED: "Not subscribed",
}

#: Longest line accepted from a peer; a mining.notify with a few thousand bytes of
#: coinbase and a 12-branch merkle path fits many times over.
MAX_LINE_LENGTH = 16 * 1024

# Version-rolling masks: BIP320 reserves bits 13-28, BIP323 widens that to 5-28.
BIP320_MASK = 0x1FFFE000
VERSION_ROLLING_MASK = 0x1FFFFFE0

#: Largest extranonce2 size accepted: SV2 caps the whole extranonce at 32 bytes.
MAX_EXTRANONCE2_SIZE = 32

# Method names, as they appear on the wire.
METHOD_SUBSCRIBE = "mining.subscribe"
METHOD_AUTHORIZE = "mining.authorize"
METHOD_CONFIGURE = "mining.configure"
METHOD_EXTRANONCE_SUBSCRIBE = "mining.extranonce.subscribe"
METHOD_SUGGEST_DIFFICULTY = "mining.suggest_difficulty"
METHOD_SUBMIT = "mining.submit"
METHOD_NOTIFY = "mining.notify"
METHOD_SET_DIFFICULTY = "mining.set_difficulty"
METHOD_SET_EXTRANONCE = "mining.set_extranonce"
METHOD_SET_VERSION_MASK = "mining.set_version_mask"
METHOD_RECONNECT = "client.reconnect"

# BIP310 extension and parameter names.
EXTENSION_VERSION_ROLLING = "version-rolling"
VERSION_ROLLING_MASK_PARAM = "version-rolling.mask"
VERSION_ROLLING_MIN_BIT_COUNT_PARAM = "version-rolling.min-bit-count"
