"""The Stratum V2 wire codec, sans-IO: bytes in, messages out, no reactor.

- :mod:`.types`: the data types and their bounds (PROTOCOL.md §2)
- :mod:`.framing`: frame headers and :class:`FrameDecoder` (§1)
- :mod:`.common`, :mod:`.mining`, :mod:`.job_declaration`,
  :mod:`.template_distribution`, :mod:`.extensions`: every message (§3)
- :mod:`.tlv`: TLV extension fields, the 0x0002 worker name
- :mod:`.registry`: (extension_type, msg_type) -> class, and decoding

Mining and Template Distribution both have a ``SetNewPrevHash``; the name
exported here is the mining one, the other is
``template_distribution.SetNewPrevHash``.
"""

from sv2proxy.codec import common, extensions, job_declaration, mining, template_distribution
from sv2proxy.codec.common import (
    ChannelEndpointChanged,
    Reconnect,
    SetupConnection,
    SetupConnectionError,
    SetupConnectionSuccess,
)
from sv2proxy.codec.extensions import RequestExtensions, RequestExtensionsError, RequestExtensionsSuccess
from sv2proxy.codec.framing import (
    CHANNEL_MSG_BIT,
    FRAME_HEADER_SIZE,
    Frame,
    FrameDecoder,
    encode_frame,
    encode_header,
    parse_header,
)
from sv2proxy.codec.job_declaration import (
    AllocateMiningJobToken,
    AllocateMiningJobTokenSuccess,
    DeclareMiningJob,
    DeclareMiningJobError,
    DeclareMiningJobSuccess,
    ProvideMissingTransactions,
    ProvideMissingTransactionsSuccess,
    PushSolution,
)
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import (
    CloseChannel,
    NewExtendedMiningJob,
    NewMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
    SetCustomMiningJob,
    SetCustomMiningJobError,
    SetCustomMiningJobSuccess,
    SetExtranoncePrefix,
    SetGroupChannel,
    SetNewPrevHash,
    SetTarget,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSharesStandard,
    SubmitSharesSuccess,
    UpdateChannel,
    UpdateChannelError,
)
from sv2proxy.codec.registry import MESSAGE_TYPES, MessageDecoder, decode_frame, decode_message
from sv2proxy.codec.template_distribution import (
    CoinbaseOutputConstraints,
    NewTemplate,
    RequestTransactionData,
    RequestTransactionDataError,
    RequestTransactionDataSuccess,
    SubmitSolution,
)
from sv2proxy.codec.tlv import Tlv, find_tlv, worker_name_tlv

__all__ = [
    "common", "extensions", "job_declaration", "mining", "template_distribution",
    "CHANNEL_MSG_BIT", "FRAME_HEADER_SIZE", "Frame", "FrameDecoder", "encode_frame", "encode_header",
    "parse_header", "Message", "MESSAGE_TYPES", "MessageDecoder", "decode_frame", "decode_message",
    "Tlv", "find_tlv", "worker_name_tlv",
    "SetupConnection", "SetupConnectionSuccess", "SetupConnectionError", "ChannelEndpointChanged",
    "Reconnect",
    "OpenStandardMiningChannel", "OpenStandardMiningChannelSuccess", "OpenMiningChannelError",
    "OpenExtendedMiningChannel", "OpenExtendedMiningChannelSuccess", "NewMiningJob", "UpdateChannel",
    "UpdateChannelError", "CloseChannel", "SetExtranoncePrefix", "SubmitSharesStandard",
    "SubmitSharesExtended", "SubmitSharesSuccess", "SubmitSharesError", "NewExtendedMiningJob",
    "SetNewPrevHash", "SetTarget", "SetCustomMiningJob", "SetCustomMiningJobSuccess",
    "SetCustomMiningJobError", "SetGroupChannel",
    "AllocateMiningJobToken", "AllocateMiningJobTokenSuccess", "ProvideMissingTransactions",
    "ProvideMissingTransactionsSuccess", "DeclareMiningJob", "DeclareMiningJobSuccess",
    "DeclareMiningJobError", "PushSolution",
    "CoinbaseOutputConstraints", "NewTemplate", "RequestTransactionData",
    "RequestTransactionDataSuccess", "RequestTransactionDataError", "SubmitSolution",
    "RequestExtensions", "RequestExtensionsSuccess", "RequestExtensionsError",
]
