"""Job Declaration messages (PROTOCOL.md §3.3, SPEC 06 §6.4); none sets channel_msg."""

from typing import Annotated

from sv2proxy.codec.message import Message, message
from sv2proxy.codec.types import B0_16M, B0_32, B0_64K, B0_255, SEQ0_64K, STR0_255, U16, U32, U256


@message(0x50, channel_msg=False)
class AllocateMiningJobToken(Message):
    user_identifier: Annotated[str, STR0_255]
    request_id: Annotated[int, U32]


@message(0x51, channel_msg=False)
class AllocateMiningJobTokenSuccess(Message):
    request_id: Annotated[int, U32]
    mining_job_token: Annotated[bytes, B0_255]
    coinbase_tx_outputs: Annotated[bytes, B0_64K]  # first output: pool payout script, value 0


@message(0x55, channel_msg=False)
class ProvideMissingTransactions(Message):
    request_id: Annotated[int, U32]
    unknown_tx_position_list: Annotated[tuple[int, ...], SEQ0_64K(U16)]


@message(0x56, channel_msg=False)
class ProvideMissingTransactionsSuccess(Message):
    request_id: Annotated[int, U32]
    transaction_list: Annotated[tuple[bytes, ...], SEQ0_64K(B0_16M)]


@message(0x57, channel_msg=False)
class DeclareMiningJob(Message):
    """Coinbase prefix/suffix here keep their BIP141 fields (unlike mining jobs)."""

    request_id: Annotated[int, U32]
    mining_job_token: Annotated[bytes, B0_255]
    version: Annotated[int, U32]
    coinbase_tx_prefix: Annotated[bytes, B0_64K]
    coinbase_tx_suffix: Annotated[bytes, B0_64K]
    wtxid_list: Annotated[tuple[bytes, ...], SEQ0_64K(U256)]
    excess_data: Annotated[bytes, B0_64K]


@message(0x58, channel_msg=False)
class DeclareMiningJobSuccess(Message):
    request_id: Annotated[int, U32]
    new_mining_job_token: Annotated[bytes, B0_255]


@message(0x59, channel_msg=False)
class DeclareMiningJobError(Message):
    request_id: Annotated[int, U32]
    error_code: Annotated[str, STR0_255]
    error_details: Annotated[bytes, B0_64K]


@message(0x60, channel_msg=False)
class PushSolution(Message):
    """Spec field order nonce, ntime (SRI <= v1.9.0 had them swapped)."""

    extranonce: Annotated[bytes, B0_32]
    prev_hash: Annotated[bytes, U256]
    nonce: Annotated[int, U32]
    ntime: Annotated[int, U32]
    nbits: Annotated[int, U32]
    version: Annotated[int, U32]
