"""Byte vectors: payloads captured from a real sv2-tp, and hand-written frames.

Part (a) reads ``shared/vectors/sv2-tp-frames.txt`` (beside the repository) at
test time: every payload must decode to the fields written out below and
re-encode to the same bytes, and the header the file names must be what
``to_frame()`` writes.

Part (b) writes frames one field per line with a comment (STYLE.md, after
twisted.names' test_dns); each vector is checked both ways, decode and encode.
All integers on the wire are little-endian; hashes are raw SHA256d bytes
(block-header order), shown reversed by explorers (PROTOCOL.md §2, §6).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from sv2proxy.codec import template_distribution as tdp
from sv2proxy.codec.common import SetupConnection, SetupConnectionSuccess
from sv2proxy.codec.constants import REQUIRES_VERSION_ROLLING
from sv2proxy.codec.extensions import RequestExtensions
from sv2proxy.codec.framing import FRAME_HEADER_SIZE
from sv2proxy.codec.message import Message
from sv2proxy.codec.mining import (
    NewExtendedMiningJob,
    NewMiningJob,
    OpenExtendedMiningChannelSuccess,
    SetGroupChannel,
    SetNewPrevHash,
    SubmitSharesExtended,
    SubmitSharesStandard,
)
from sv2proxy.codec.registry import MessageDecoder, decode_message
from sv2proxy.codec.tlv import Tlv

VECTORS_DIR = Path(__file__).parents[2].parent / "shared" / "vectors"
TP_FRAMES_FILE = VECTORS_DIR / "sv2-tp-frames.txt"


def h(text: str) -> bytes:
    """Hex to bytes, spaces allowed."""
    return bytes.fromhex(text)


def display(raw_hash: bytes) -> str:
    """A raw SHA256d hash as explorers print it (byte-reversed hex)."""
    return raw_hash[::-1].hex()


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def bip34_height(coinbase_prefix: bytes) -> int:
    """The block height pushed at the start of a coinbase scriptSig (BIP34)."""
    push = coinbase_prefix[0]
    assert 1 <= push <= 8 and len(coinbase_prefix) == 1 + push
    return int.from_bytes(coinbase_prefix[1:], "little")


def nbits_target(nbits: int) -> int:
    """The target a compact nBits encodes: mantissa * 256**(exponent - 3)."""
    return (nbits & 0x007FFFFF) * 256 ** ((nbits >> 24) - 3)


# -- (a) sv2-tp payloads -------------------------------------------------------------


@dataclass(frozen=True)
class TpVector:
    title: str
    msg_type: int
    length: int
    payload: bytes


_TITLE = re.compile(r"^## (?P<title>.*)\(type 0x(?P<type>[0-9a-fA-F]{2}), len (?P<len>\d+)\)")


def read_tp_vectors() -> list[TpVector]:
    """The payloads of sv2-tp-frames.txt with the type and length each heading gives."""
    vectors: list[TpVector] = []
    heading: re.Match[str] | None = None
    for line in TP_FRAMES_FILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            heading = _TITLE.match(line)
            assert heading is not None, f"unparsed heading: {line!r}"
        elif line and not line.startswith("#"):
            assert heading is not None, f"payload before any heading: {line!r}"
            vectors.append(
                TpVector(
                    heading["title"].strip(),
                    int(heading["type"], 16),
                    int(heading["len"]),
                    bytes.fromhex(line.strip()),
                )
            )
            heading = None
    return vectors


# The fields each payload must decode to, in file order.  The file says every
# frame has extension_type 0x0000 and no channel_msg bit.
TP_EXPECTED: list[tuple[str, Message]] = [
    (
        "SetupConnection",
        SetupConnection(
            protocol=2,  # Template Distribution
            min_version=2,
            max_version=2,
            flags=0,
            endpoint_host="127.0.0.1",
            endpoint_port=18447,
            vendor="acceptance",
            hardware_version="tdp_probe",
            firmware="1.0",
            device_id="probe1",
        ),
    ),
    ("SetupConnection.Success", SetupConnectionSuccess(used_version=2, flags=0)),
    (
        "CoinbaseOutputConstraints",
        tdp.CoinbaseOutputConstraints(
            coinbase_output_max_additional_size=100, coinbase_output_max_additional_sigops=400
        ),
    ),
    (
        "NewTemplate future",
        tdp.NewTemplate(
            template_id=1,
            future_template=True,
            version=0x20000000,
            coinbase_tx_version=2,
            coinbase_prefix=h("01 66"),  # BIP34: push 1 byte, height 0x66 = 102
            coinbase_tx_input_sequence=0xFFFFFFFE,
            coinbase_tx_value_remaining=5_000_000_000,
            coinbase_tx_outputs_count=1,
            coinbase_tx_outputs=h(
                "0000000000000000"  # value 0
                "26"  # scriptPubKey length 38
                "6a24aa21a9ed"  # OP_RETURN PUSH36 witness-commitment header
                "e2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9"
            ),
            coinbase_tx_locktime=101,
            merkle_path=(),
        ),
    ),
    (
        "SetNewPrevHash",
        tdp.SetNewPrevHash(
            template_id=1,
            prev_hash=h("2dec3038a9277ed8f7780371622e50d9510be41adee8c6a3c8b8550d1a80674a"),
            header_timestamp=1795571302,
            n_bits=0x207FFFFF,
            target=(0x7FFFFF << 232).to_bytes(32, "little"),
        ),
    ),
    (
        "NewTemplate non-future",
        tdp.NewTemplate(
            template_id=6,
            future_template=False,
            version=0x30000000,
            coinbase_tx_version=2,
            coinbase_prefix=h("02 cc00"),  # BIP34: push 2 bytes, height 0x00cc = 204
            coinbase_tx_input_sequence=0xFFFFFFFE,
            coinbase_tx_value_remaining=2_500_050_000,  # 25 BTC subsidy + 50,000 sat fee
            coinbase_tx_outputs_count=1,
            coinbase_tx_outputs=h(
                "0000000000000000"  # value 0
                "26"  # scriptPubKey length 38
                "6a24aa21a9ed"  # OP_RETURN PUSH36 witness-commitment header
                "8a89dbe81112f6d714c91196f1f4e33beff310ef33015b2b848eebdf1c3e7f26"
            ),
            coinbase_tx_locktime=203,
            merkle_path=(h("c60da2be4579f81beee995d0a253e0c9743e90cd94521e5cae07c8a55206048d"),),
        ),
    ),
    (
        "RequestTransactionData.Error",
        tdp.RequestTransactionDataError(template_id=999999, error_code="template-id-not-found"),
    ),
]


def test_tp_file_holds_the_seven_payloads() -> None:
    vectors = read_tp_vectors()
    assert [(v.msg_type, v.length) for v in vectors] == [
        (0x00, 53),
        (0x01, 6),
        (0x70, 6),
        (0x71, 90),
        (0x72, 80),
        (0x71, 123),
        (0x75, 30),
    ]
    assert len(vectors) == len(TP_EXPECTED)


@pytest.mark.parametrize(
    ("index", "expected"),
    list(enumerate(msg for _, msg in TP_EXPECTED)),
    ids=[name for name, _ in TP_EXPECTED],
)
def test_tp_payload(index: int, expected: Message) -> None:
    vector = read_tp_vectors()[index]
    assert len(vector.payload) == vector.length
    assert type(expected).MSG_TYPE == vector.msg_type
    assert decode_message(0x0000, vector.msg_type, vector.payload) == expected
    assert type(expected).decode(vector.payload) == expected
    assert expected.encode() == vector.payload
    header = (
        (0x0000).to_bytes(2, "little")  # extension_type, no channel_msg bit
        + vector.msg_type.to_bytes(1, "little")
        + vector.length.to_bytes(3, "little")
    )
    assert expected.to_frame()[:FRAME_HEADER_SIZE] == header
    assert expected.to_frame() == header + vector.payload


def test_tp_new_templates_carry_bip34_heights() -> None:
    future, current = TP_EXPECTED[3][1], TP_EXPECTED[5][1]
    assert isinstance(future, tdp.NewTemplate) and isinstance(current, tdp.NewTemplate)
    assert bip34_height(future.coinbase_prefix) == 102
    assert bip34_height(current.coinbase_prefix) == 204
    # sv2-tp sets the coinbase locktime to height - 1 (PROTOCOL.md §11).
    assert future.coinbase_tx_locktime == 102 - 1
    assert current.coinbase_tx_locktime == 204 - 1
    # merkle_path nodes are raw txids; explorers show them reversed.
    assert display(current.merkle_path[0]) == (
        "8d040652a5c807ae5c1e5294cd903e74c9e053a2d095e9ee1bf87945bea20dc6"
    )


def test_tp_set_new_prev_hash_byte_orders() -> None:
    snph = TP_EXPECTED[4][1]
    assert isinstance(snph, tdp.SetNewPrevHash)
    # The file abbreviates the tip's display hash as 4a67801a…ec2d.
    assert display(snph.prev_hash).startswith("4a67801a")
    assert display(snph.prev_hash).endswith("ec2d")
    # The target is a little-endian U256: here exactly the nBits target.
    assert int.from_bytes(snph.target, "little") == nbits_target(snph.n_bits) == 0x7FFFFF << 232


# -- (b) hand-written frames ----------------------------------------------------------

# Genesis block (PROTOCOL.md §6): its coinbase txid and its header hash, raw.
GENESIS_COINBASE_TXID = h("3ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a")
GENESIS_HASH = h("6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000")
GENESIS_TIME = 1231006505  # 0x495fab29
GENESIS_NONCE = 2083236893  # 0x7c2bac1d
BLOCK_1_TIME = 1231469665  # 0x4966bc61
# Difficulty-1 target 0xFFFF * 2**208 as a little-endian U256.
DIFF1_TARGET = h("0000000000000000000000000000000000000000000000000000ffff00000000")


def test_genesis_byte_order() -> None:
    """§6's check: raw hashes are header order, explorers show them reversed."""
    assert display(GENESIS_COINBASE_TXID) == (
        "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
    )
    assert display(GENESIS_HASH) == (
        "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    )
    header = (
        (1).to_bytes(4, "little")  # version
        + bytes(32)  # prev_hash
        + GENESIS_COINBASE_TXID  # merkle_root (one transaction: the coinbase)
        + GENESIS_TIME.to_bytes(4, "little")
        + (0x1D00FFFF).to_bytes(4, "little")  # nbits
        + GENESIS_NONCE.to_bytes(4, "little")
    )
    assert sha256d(header) == GENESIS_HASH
    assert int.from_bytes(DIFF1_TARGET, "little") == 0xFFFF << 208


SETUP_CONNECTION_FRAME = h(
    "00 00"  # extension_type 0x0000, channel_msg 0
    "00"  # msg_type SetupConnection
    "33 00 00"  # msg_length 51
    "00"  # protocol 0 (Mining)
    "02 00"  # min_version 2
    "02 00"  # max_version 2
    "04 00 00 00"  # flags: bit 2 REQUIRES_VERSION_ROLLING
    "10 706f6f6c2e6578616d706c652e636f6d"  # endpoint_host "pool.example.com"
    "05 0d"  # endpoint_port 3333
    "08 7376327072 6f7879"  # vendor "sv2proxy"
    "00"  # hardware_version ""
    "05 302e312e30"  # firmware "0.1.0"
    "06 7269672d3031"  # device_id "rig-01"
)
SETUP_CONNECTION = SetupConnection(
    protocol=0,
    min_version=2,
    max_version=2,
    flags=REQUIRES_VERSION_ROLLING,
    endpoint_host="pool.example.com",
    endpoint_port=3333,
    vendor="sv2proxy",
    hardware_version="",
    firmware="0.1.0",
    device_id="rig-01",
)

SUBMIT_SHARES_STANDARD_FRAME = h(
    "00 80"  # extension_type 0x0000 | channel_msg 0x8000 (bit 7 of byte 1)
    "1a"  # msg_type SubmitSharesStandard
    "18 00 00"  # msg_length 24
    "01 00 00 00"  # channel_id 1
    "2a 00 00 00"  # sequence_number 42
    "07 00 00 00"  # job_id 7
    "1d ac 2b 7c"  # nonce 0x7c2bac1d
    "29 ab 5f 49"  # ntime 0x495fab29
    "00 00 00 20"  # version 0x20000000
)
SUBMIT_SHARES_STANDARD = SubmitSharesStandard(
    channel_id=1,
    sequence_number=42,
    job_id=7,
    nonce=GENESIS_NONCE,
    ntime=GENESIS_TIME,
    version=0x20000000,
)

SUBMIT_SHARES_EXTENDED_FRAME = h(
    "00 80"  # extension_type 0x0000 | channel_msg 0x8000
    "1b"  # msg_type SubmitSharesExtended
    "2c 00 00"  # msg_length 44
    "01 00 00 00"  # channel_id 1
    "2b 00 00 00"  # sequence_number 43
    "07 00 00 00"  # job_id 7
    "1d ac 2b 7c"  # nonce 0x7c2bac1d
    "29 ab 5f 49"  # ntime 0x495fab29
    "00 00 a0 20"  # version 0x20a00000 (rolled bits inside 0x1fffffe0)
    "08 0001020304050607"  # extranonce B0_32, 8 bytes
    "02 00"  # TLV extension_type 0x0002 (U16 LE, as SRI; the spec prints it BE)
    "01"  # TLV field_type 0x01 user_identity
    "06 00"  # TLV length 6 (U16 LE)
    "7269672d3031"  # TLV value "rig-01"
)
SUBMIT_SHARES_EXTENDED = SubmitSharesExtended(
    channel_id=1,
    sequence_number=43,
    job_id=7,
    nonce=GENESIS_NONCE,
    ntime=GENESIS_TIME,
    version=0x20A00000,
    extranonce=h("0001020304050607"),
    tlvs=(Tlv(0x0002, 0x01, b"rig-01"),),
)

OPEN_EXTENDED_SUCCESS_FRAME = h(
    "00 00"  # extension_type 0x0000, channel_msg 0
    "14"  # msg_type OpenExtendedMiningChannel.Success
    "33 00 00"  # msg_length 51
    "01 00 00 00"  # request_id 1
    "02 00 00 00"  # channel_id 2
    "0000000000000000000000000000000000000000000000000000ffff00000000"  # target: diff 1 (U256 LE)
    "08 00"  # extranonce_size 8 -- the size comes BEFORE the prefix
    "04 deadbeef"  # extranonce_prefix B0_32, 4 bytes
    "01 00 00 00"  # group_channel_id 1
)
OPEN_EXTENDED_SUCCESS = OpenExtendedMiningChannelSuccess(
    request_id=1,
    channel_id=2,
    target=DIFF1_TARGET,
    extranonce_size=8,
    extranonce_prefix=h("deadbeef"),
    group_channel_id=1,
)

NEW_MINING_JOB_FRAME = h(
    "00 80"  # extension_type 0x0000 | channel_msg 0x8000
    "15"  # msg_type NewMiningJob
    "31 00 00"  # msg_length 49
    "01 00 00 00"  # channel_id 1
    "01 00 00 00"  # job_id 1
    "01 29 ab 5f 49"  # min_ntime OPTION: count 1, U32 0x495fab29
    "01 00 00 00"  # version 1
    # merkle_root: the genesis coinbase txid, raw (explorers show 4a5e1e4b...)
    "3ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a"  # merkle_root
)
NEW_MINING_JOB = NewMiningJob(
    channel_id=1,
    job_id=1,
    min_ntime=GENESIS_TIME,
    version=1,
    merkle_root=GENESIS_COINBASE_TXID,
)

SET_NEW_PREV_HASH_FRAME = h(
    "00 80"  # extension_type 0x0000 | channel_msg 0x8000
    "20"  # msg_type SetNewPrevHash (mining)
    "30 00 00"  # msg_length 48
    "01 00 00 00"  # channel_id 1
    "02 00 00 00"  # job_id 2
    # prev_hash: the genesis block hash, raw (explorers show 000000000019d668...)
    "6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000"  # prev_hash
    "61 bc 66 49"  # min_ntime 0x4966bc61 (block 1's time)
    "ff ff 00 1d"  # nbits 0x1d00ffff
)
SET_NEW_PREV_HASH = SetNewPrevHash(
    channel_id=1,
    job_id=2,
    prev_hash=GENESIS_HASH,
    min_ntime=BLOCK_1_TIME,
    nbits=0x1D00FFFF,
)

MERKLE_NODE = h("c60da2be4579f81beee995d0a253e0c9743e90cd94521e5cae07c8a55206048d")

NEW_EXTENDED_JOB_FUTURE_FRAME = h(
    "00 80"  # extension_type 0x0000 | channel_msg 0x8000
    "1f"  # msg_type NewExtendedMiningJob
    "3c 00 00"  # msg_length 60
    "01 00 00 00"  # channel_id 1
    "03 00 00 00"  # job_id 3
    "00"  # min_ntime OPTION: count 0 (None: a future job)
    "00 00 00 20"  # version 0x20000000
    "01"  # version_rolling_allowed true
    "01"  # merkle_path SEQ0_255: 1 node
    "c60da2be4579f81beee995d0a253e0c9743e90cd94521e5cae07c8a55206048d"  # merkle_path[0], raw
    "05 00 0200000001"  # coinbase_tx_prefix B0_64K, 5 bytes (tx version 2, 1 input; shortened)
    "04 00 feffffff"  # coinbase_tx_suffix B0_64K, 4 bytes (input sequence; shortened)
)
NEW_EXTENDED_JOB_FUTURE = NewExtendedMiningJob(
    channel_id=1,
    job_id=3,
    min_ntime=None,
    version=0x20000000,
    version_rolling_allowed=True,
    merkle_path=(MERKLE_NODE,),
    coinbase_tx_prefix=h("0200000001"),
    coinbase_tx_suffix=h("feffffff"),
)

NEW_EXTENDED_JOB_ACTIVE_FRAME = h(
    "00 80"  # extension_type 0x0000 | channel_msg 0x8000
    "1f"  # msg_type NewExtendedMiningJob
    "40 00 00"  # msg_length 64
    "01 00 00 00"  # channel_id 1
    "04 00 00 00"  # job_id 4
    "01 61 bc 66 49"  # min_ntime OPTION: count 1, U32 0x4966bc61 (active at once)
    "00 00 00 20"  # version 0x20000000
    "00"  # version_rolling_allowed false
    "01"  # merkle_path SEQ0_255: 1 node
    "c60da2be4579f81beee995d0a253e0c9743e90cd94521e5cae07c8a55206048d"  # merkle_path[0], raw
    "05 00 0200000001"  # coinbase_tx_prefix B0_64K, 5 bytes
    "04 00 feffffff"  # coinbase_tx_suffix B0_64K, 4 bytes
)
NEW_EXTENDED_JOB_ACTIVE = NewExtendedMiningJob(
    channel_id=1,
    job_id=4,
    min_ntime=BLOCK_1_TIME,
    version=0x20000000,
    version_rolling_allowed=False,
    merkle_path=(MERKLE_NODE,),
    coinbase_tx_prefix=h("0200000001"),
    coinbase_tx_suffix=h("feffffff"),
)

REQUEST_EXTENSIONS_FRAME = h(
    "01 00"  # extension_type 0x0001 (Extensions Negotiation), channel_msg 0
    "00"  # msg_type RequestExtensions
    "06 00 00"  # msg_length 6
    "01 00"  # request_id 1 (U16 in this extension)
    "01 00"  # requested_extensions SEQ0_64K: 1 item
    "02 00"  # requested_extensions[0] 0x0002 (worker hashrate tracking)
)
REQUEST_EXTENSIONS = RequestExtensions(request_id=1, requested_extensions=(0x0002,))

SET_GROUP_CHANNEL_FRAME = h(
    "00 00"  # extension_type 0x0000, channel_msg 0 (not a channel message)
    "25"  # msg_type SetGroupChannel
    "12 00 00"  # msg_length 18
    "01 00 00 00"  # group_channel_id 1
    "03 00"  # channel_ids SEQ0_64K: 3 items
    "02 00 00 00"  # channel_ids[0] 2
    "03 00 00 00"  # channel_ids[1] 3
    "04 00 00 00"  # channel_ids[2] 4
)
SET_GROUP_CHANNEL = SetGroupChannel(group_channel_id=1, channel_ids=(2, 3, 4))

FRAME_VECTORS: list[tuple[str, bytes, Message]] = [
    ("SetupConnection", SETUP_CONNECTION_FRAME, SETUP_CONNECTION),
    ("SubmitSharesStandard", SUBMIT_SHARES_STANDARD_FRAME, SUBMIT_SHARES_STANDARD),
    ("SubmitSharesExtended+worker", SUBMIT_SHARES_EXTENDED_FRAME, SUBMIT_SHARES_EXTENDED),
    ("OpenExtendedMiningChannel.Success", OPEN_EXTENDED_SUCCESS_FRAME, OPEN_EXTENDED_SUCCESS),
    ("NewMiningJob", NEW_MINING_JOB_FRAME, NEW_MINING_JOB),
    ("SetNewPrevHash", SET_NEW_PREV_HASH_FRAME, SET_NEW_PREV_HASH),
    ("NewExtendedMiningJob-future", NEW_EXTENDED_JOB_FUTURE_FRAME, NEW_EXTENDED_JOB_FUTURE),
    ("NewExtendedMiningJob-active", NEW_EXTENDED_JOB_ACTIVE_FRAME, NEW_EXTENDED_JOB_ACTIVE),
    ("RequestExtensions", REQUEST_EXTENSIONS_FRAME, REQUEST_EXTENSIONS),
    ("SetGroupChannel", SET_GROUP_CHANNEL_FRAME, SET_GROUP_CHANNEL),
]
_FRAME_IDS = [name for name, _, _ in FRAME_VECTORS]


@pytest.mark.parametrize(("name", "frame", "msg"), FRAME_VECTORS, ids=_FRAME_IDS)
def test_frame_vector_decodes(name: str, frame: bytes, msg: Message) -> None:
    assert int.from_bytes(frame[3:6], "little") == len(frame) - FRAME_HEADER_SIZE
    assert MessageDecoder().feed(frame) == [msg]


@pytest.mark.parametrize(("name", "frame", "msg"), FRAME_VECTORS, ids=_FRAME_IDS)
def test_frame_vector_encodes(name: str, frame: bytes, msg: Message) -> None:
    assert msg.to_frame() == frame
    assert msg.encode() == frame[FRAME_HEADER_SIZE:]


def test_worker_name_from_tlv() -> None:
    assert SUBMIT_SHARES_EXTENDED.worker_name == "rig-01"
    (decoded,) = MessageDecoder().feed(SUBMIT_SHARES_EXTENDED_FRAME)
    assert isinstance(decoded, SubmitSharesExtended)
    assert decoded.worker_name == "rig-01"


def test_vectors_dir_is_beside_the_repository() -> None:
    # A clear failure, not a skip, when ../shared is not checked out next to the repo.
    assert TP_FRAMES_FILE.is_file(), f"missing {TP_FRAMES_FILE}"
