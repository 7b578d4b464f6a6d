"""Template Distribution messages (PROTOCOL.md §3.4, §7, SPEC 07); none sets channel_msg."""

from typing import Annotated

from sv2proxy.codec.message import Message, message
from sv2proxy.codec.types import B0_16M, B0_64K, B0_255, BOOL, SEQ0_64K, SEQ0_255, STR0_255, U16, U32, U64, U256


@message(0x70, channel_msg=False)
class CoinbaseOutputConstraints(Message):
    """The 6-byte form (the 4-byte CoinbaseOutputDataSize is obsolete)."""

    coinbase_output_max_additional_size: Annotated[int, U32]
    coinbase_output_max_additional_sigops: Annotated[int, U16]


@message(0x71, channel_msg=False)
class NewTemplate(Message):
    """``coinbase_tx_outputs`` has no count prefix: the count is its own field."""

    template_id: Annotated[int, U64]
    future_template: Annotated[bool, BOOL]
    version: Annotated[int, U32]
    coinbase_tx_version: Annotated[int, U32]
    coinbase_prefix: Annotated[bytes, B0_255]
    coinbase_tx_input_sequence: Annotated[int, U32]
    coinbase_tx_value_remaining: Annotated[int, U64]
    coinbase_tx_outputs_count: Annotated[int, U32]
    coinbase_tx_outputs: Annotated[bytes, B0_64K]
    coinbase_tx_locktime: Annotated[int, U32]
    merkle_path: Annotated[tuple[bytes, ...], SEQ0_255(U256)]


@message(0x72, channel_msg=False)
class SetNewPrevHash(Message):
    """Template Distribution SetNewPrevHash: activates the future template ``template_id``."""

    template_id: Annotated[int, U64]
    prev_hash: Annotated[bytes, U256]
    header_timestamp: Annotated[int, U32]
    n_bits: Annotated[int, U32]
    target: Annotated[bytes, U256]


@message(0x73, channel_msg=False)
class RequestTransactionData(Message):
    template_id: Annotated[int, U64]


@message(0x74, channel_msg=False)
class RequestTransactionDataSuccess(Message):
    template_id: Annotated[int, U64]
    excess_data: Annotated[bytes, B0_64K]
    transaction_list: Annotated[tuple[bytes, ...], SEQ0_64K(B0_16M)]


@message(0x75, channel_msg=False)
class RequestTransactionDataError(Message):
    template_id: Annotated[int, U64]
    error_code: Annotated[str, STR0_255]


@message(0x76, channel_msg=False)
class SubmitSolution(Message):
    """``coinbase_tx`` is the full coinbase including its witness."""

    template_id: Annotated[int, U64]
    version: Annotated[int, U32]
    header_timestamp: Annotated[int, U32]
    header_nonce: Annotated[int, U32]
    coinbase_tx: Annotated[bytes, B0_64K]
