"""Mining protocol messages (PROTOCOL.md §3.2, SPEC 05 §5.3).

Hashes (prev_hash, merkle_root, merkle_path nodes) are raw SHA256d bytes in
block-header order; targets are U256 little-endian integers kept as bytes.
"""

from typing import Annotated

from sv2proxy.codec.message import Message, message
from sv2proxy.codec.tlv import (
    EXTENSION_WORKER_HASHRATE_TRACKING,
    TLV_FIELD_USER_IDENTITY,
    TLV_LIST,
    Tlv,
    find_tlv,
)
from sv2proxy.codec.types import (
    B0_32,
    B0_64K,
    B0_255,
    BOOL,
    F32,
    OPTION,
    SEQ0_64K,
    SEQ0_255,
    STR0_255,
    U16,
    U32,
    U64,
    U256,
)


@message(0x10, channel_msg=False)
class OpenStandardMiningChannel(Message):
    request_id: Annotated[int, U32]
    user_identity: Annotated[str, STR0_255]
    nominal_hash_rate: Annotated[float, F32]  # H/s
    max_target: Annotated[bytes, U256]


@message(0x11, channel_msg=False)
class OpenStandardMiningChannelSuccess(Message):
    request_id: Annotated[int, U32]
    channel_id: Annotated[int, U32]
    target: Annotated[bytes, U256]
    extranonce_prefix: Annotated[bytes, B0_32]
    group_channel_id: Annotated[int, U32]


@message(0x12, channel_msg=False)
class OpenMiningChannelError(Message):
    """The answer to a failed OpenStandard/OpenExtendedMiningChannel."""

    request_id: Annotated[int, U32]
    error_code: Annotated[str, STR0_255]


@message(0x13, channel_msg=False)
class OpenExtendedMiningChannel(Message):
    request_id: Annotated[int, U32]
    user_identity: Annotated[str, STR0_255]
    nominal_hash_rate: Annotated[float, F32]
    max_target: Annotated[bytes, U256]
    min_extranonce_size: Annotated[int, U16]


@message(0x14, channel_msg=False)
class OpenExtendedMiningChannelSuccess(Message):
    request_id: Annotated[int, U32]
    channel_id: Annotated[int, U32]
    target: Annotated[bytes, U256]
    extranonce_size: Annotated[int, U16]  # the size comes before the prefix
    extranonce_prefix: Annotated[bytes, B0_32]
    group_channel_id: Annotated[int, U32]


@message(0x15, channel_msg=True)
class NewMiningJob(Message):
    """A standard-channel job; ``min_ntime`` None makes it a future job."""

    channel_id: Annotated[int, U32]
    job_id: Annotated[int, U32]
    min_ntime: Annotated[int | None, OPTION(U32)]
    version: Annotated[int, U32]
    merkle_root: Annotated[bytes, U256]


@message(0x16, channel_msg=True)
class UpdateChannel(Message):
    channel_id: Annotated[int, U32]
    nominal_hash_rate: Annotated[float, F32]
    maximum_target: Annotated[bytes, U256]


@message(0x17, channel_msg=True)
class UpdateChannelError(Message):
    channel_id: Annotated[int, U32]
    error_code: Annotated[str, STR0_255]


@message(0x18, channel_msg=True)
class CloseChannel(Message):
    channel_id: Annotated[int, U32]
    reason_code: Annotated[str, STR0_255]


@message(0x19, channel_msg=True)
class SetExtranoncePrefix(Message):
    channel_id: Annotated[int, U32]
    extranonce_prefix: Annotated[bytes, B0_32]


@message(0x1A, channel_msg=True)
class SubmitSharesStandard(Message):
    channel_id: Annotated[int, U32]
    sequence_number: Annotated[int, U32]
    job_id: Annotated[int, U32]
    nonce: Annotated[int, U32]
    ntime: Annotated[int, U32]
    version: Annotated[int, U32]


@message(0x1B, channel_msg=True)
class SubmitSharesExtended(Message):
    """A share on an extended channel; ``tlvs`` carries extension fields (0x0002 worker name)."""

    channel_id: Annotated[int, U32]
    sequence_number: Annotated[int, U32]
    job_id: Annotated[int, U32]
    nonce: Annotated[int, U32]
    ntime: Annotated[int, U32]
    version: Annotated[int, U32]
    extranonce: Annotated[bytes, B0_32]
    tlvs: Annotated[tuple[Tlv, ...], TLV_LIST] = ()

    @property
    def worker_name(self) -> str | None:
        """The extension 0x0002 ``user_identity``, if the share carries one."""
        value = find_tlv(self.tlvs, EXTENSION_WORKER_HASHRATE_TRACKING, TLV_FIELD_USER_IDENTITY)
        return None if value is None else value.decode("utf-8")


@message(0x1C, channel_msg=True)
class SubmitSharesSuccess(Message):
    """Cumulative acknowledgement of the shares accepted since the previous one."""

    channel_id: Annotated[int, U32]
    last_sequence_number: Annotated[int, U32]
    new_submits_accepted_count: Annotated[int, U32]
    new_shares_sum: Annotated[int, U64]


@message(0x1D, channel_msg=True)
class SubmitSharesError(Message):
    channel_id: Annotated[int, U32]
    sequence_number: Annotated[int, U32]
    error_code: Annotated[str, STR0_255]


@message(0x1F, channel_msg=True)
class NewExtendedMiningJob(Message):
    """An extended/group job; coinbase prefix/suffix are stripped of BIP141 data."""

    channel_id: Annotated[int, U32]
    job_id: Annotated[int, U32]
    min_ntime: Annotated[int | None, OPTION(U32)]
    version: Annotated[int, U32]
    version_rolling_allowed: Annotated[bool, BOOL]
    merkle_path: Annotated[tuple[bytes, ...], SEQ0_255(U256)]
    coinbase_tx_prefix: Annotated[bytes, B0_64K]
    coinbase_tx_suffix: Annotated[bytes, B0_64K]


@message(0x20, channel_msg=True)
class SetNewPrevHash(Message):
    """Mining SetNewPrevHash: activates the future job ``job_id`` on a new tip."""

    channel_id: Annotated[int, U32]
    job_id: Annotated[int, U32]
    prev_hash: Annotated[bytes, U256]
    min_ntime: Annotated[int, U32]
    nbits: Annotated[int, U32]


@message(0x21, channel_msg=True)
class SetTarget(Message):
    channel_id: Annotated[int, U32]
    maximum_target: Annotated[bytes, U256]


@message(0x22, channel_msg=True)
class SetCustomMiningJob(Message):
    channel_id: Annotated[int, U32]
    request_id: Annotated[int, U32]
    mining_job_token: Annotated[bytes, B0_255]
    version: Annotated[int, U32]
    prev_hash: Annotated[bytes, U256]
    min_ntime: Annotated[int, U32]
    nbits: Annotated[int, U32]
    coinbase_tx_version: Annotated[int, U32]
    coinbase_prefix: Annotated[bytes, B0_255]
    coinbase_tx_input_n_sequence: Annotated[int, U32]
    coinbase_tx_outputs: Annotated[bytes, B0_64K]  # CompactSize-prefixed output list
    coinbase_tx_locktime: Annotated[int, U32]
    merkle_path: Annotated[tuple[bytes, ...], SEQ0_255(U256)]


@message(0x23, channel_msg=True)
class SetCustomMiningJobSuccess(Message):
    channel_id: Annotated[int, U32]
    request_id: Annotated[int, U32]
    job_id: Annotated[int, U32]


@message(0x24, channel_msg=True)
class SetCustomMiningJobError(Message):
    channel_id: Annotated[int, U32]
    request_id: Annotated[int, U32]
    error_code: Annotated[str, STR0_255]


@message(0x25, channel_msg=False)
class SetGroupChannel(Message):
    group_channel_id: Annotated[int, U32]
    channel_ids: Annotated[tuple[int, ...], SEQ0_64K(U32)]
