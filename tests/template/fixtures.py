"""Templates to test with: a getblocktemplate result and the sv2-tp Template Distribution vectors.

The getblocktemplate result is what Bitcoin Core returns on regtest at height 205 (25 BTC
subsidy), with three transactions: a P2WPKH spend, a legacy P2PKH spend, and a P2WPKH spend of
the first one's output (hence ``depends``).  Their signatures are not valid, which no template
consumer checks; every id in it is what the data hashes to, and ``default_witness_commitment``
is computed from those wtxids with the bitcoin helpers, so the fixture is self-consistent.

The sv2-tp payloads come from ``shared/vectors/sv2-tp-frames.txt`` beside the repository.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sv2proxy.bitcoin.script import witness_commitment, witness_commitment_script
from sv2proxy.codec.message import Message
from sv2proxy.codec.registry import decode_message
from sv2proxy.codec.template_distribution import NewTemplate, SetNewPrevHash

VECTORS_DIR = Path(__file__).resolve().parents[3] / "shared" / "vectors"
TP_FRAMES_FILE = VECTORS_DIR / "sv2-tp-frames.txt"

TX_A_DATA = (
    "02000000"  # version 2
    "0001"  # BIP144 marker, flag
    "01"  # one input
    "8c29d4d2aae22484dcd3dc598258c7a2d610075b51db16a20edbd00a6e6fa3f7"  # prev txid (raw)
    "01000000"  # prev index 1
    "00"  # empty scriptSig
    "fdffffff"  # sequence (RBF)
    "02"  # two outputs
    "d012130000000000"  # 1_250_000 sat
    "160014"
    "3a419818a1ff56da72f3b1cb3c976c4b03786971"  # P2WPKH
    "601ae70200000000"  # 48_700_000 sat
    "225120"
    "590f66b52651f27ea35375ac650efed5dda285c92b99536af057a359aad751b8"  # P2TR
    "02"  # witness: two items
    "47"
    "30440220ab5b62081b1d305e78d0daadb2cd23470b3faeb65af7370627798b7219ea2061"
    "0220f4bf9f7fcbedaba0392f108c59d8f4a38b3838efb64877380171b54475c2ade801"  # signature
    "21"
    "02ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"  # public key
    "00000000"  # lock_time
)
TX_B_DATA = (
    "01000000"  # version 1, no witness
    "01"  # one input
    "fd3fbfb5ae377cd548440bb9d9f4bc3a516ec8ad56c1b344e4a57e01c85b0d48"  # prev txid (raw)
    "00000000"  # prev index 0
    "6a"  # scriptSig: 106 bytes
    "47"
    "30440220885036a0da3dff3c3e05bc79bf49382b12bc5098514ed57ce0875aba1aa2c40d"
    "02208185d5e4c340bf13a2f2933e13c90727a16ea6991a2314f36bfa5eadfe58fb8701"  # signature
    "21"
    "023e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"  # public key
    "ffffffff"  # sequence
    "01"  # one output
    "301b0f0000000000"  # 990_000 sat
    "1976a914"
    "36700f56833f4506bcd8dc655f00ef5fb8e804ec"
    "88ac"  # P2PKH
    "00000000"  # lock_time
)
TX_C_DATA = (
    "02000000"  # version 2
    "0001"  # BIP144 marker, flag
    "01"  # one input
    "dc2605a8d37bc2639544341d87b352c55bb8004264fa1d4f19402b10caac84cd"  # spends TX_A (raw txid)
    "00000000"  # output 0
    "00"  # empty scriptSig
    "fdffffff"  # sequence
    "01"  # one output
    "804f120000000000"  # 1_200_000 sat
    "17a914"
    "cc7fec0fc79d09cced0059e748292e3093b04802"
    "87"  # P2SH
    "02"  # witness: two items
    "47"
    "304402202b6bdfb2a0c30eaf5b7e128575ecc13354d74315c22edafa1141ea3445cefc5d"
    "02203b8b91c75627bee566dcb88f4805901b20a3eab2520bcff8d26c87157a03502601"  # signature
    "21"
    "022e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6"  # public key
    "41d10c00"  # lock_time 840_001
)

# Display hex, as the RPC prints them.
TX_A_TXID = "cd84acca102b40194f1dfa644200b85bc552b3871d34449563c27bd3a80526dc"
TX_A_WTXID = "a348612a3971559e85647a8278afb1f55154d61e583a1c748673bcdc2fcd8d23"
TX_B_TXID = "448296a152633711251fb3511752da0171982d6f45edea832004c1347ae01a51"
TX_C_TXID = "1ede2468435bf3b44ee37426e2e23affe7bf4e3784ccd6cc9216936b0872cc9b"
TX_C_WTXID = "57fd502a2a4afab3fe587d5dcf6d106bdaa518b0671c8fefe9f548f65e8247e6"
FEES = (2_110, 1_320, 4_410)
SUBSIDY = 2_500_000_000  # regtest halves every 150 blocks: 25 BTC at height 205

DEFAULT_WITNESS_COMMITMENT = witness_commitment_script(
    witness_commitment([bytes.fromhex(wtxid)[::-1] for wtxid in (TX_A_WTXID, TX_B_TXID, TX_C_WTXID)])
).hex()

PREVIOUS_BLOCK_HASH = "3b1f0d3c0b8fdbc3df1e6ac7fc57e8b4b3b0e0c4b1f6b1f7a0b9c8d7e6f50413"


def getblocktemplate_result() -> dict[str, Any]:
    """A fresh copy each call, so tests may mutate it."""
    return {
        "capabilities": ["proposal"],
        "version": 0x20000000,
        "rules": ["csv", "!segwit", "taproot"],
        "vbavailable": {},
        "vbrequired": 0,
        "previousblockhash": PREVIOUS_BLOCK_HASH,
        "transactions": [
            {
                "data": TX_A_DATA,
                "txid": TX_A_TXID,
                "hash": TX_A_WTXID,
                "depends": [],
                "fee": FEES[0],
                "sigops": 1,
                "weight": 609,
            },
            {
                "data": TX_B_DATA,
                "txid": TX_B_TXID,
                "hash": TX_B_TXID,
                "depends": [],
                "fee": FEES[1],
                "sigops": 4,
                "weight": 764,
            },
            {
                "data": TX_C_DATA,
                "txid": TX_C_TXID,
                "hash": TX_C_WTXID,
                "depends": [1],
                "fee": FEES[2],
                "sigops": 1,
                "weight": 441,
            },
        ],
        "coinbaseaux": {},
        "coinbasevalue": SUBSIDY + sum(FEES),
        "longpollid": PREVIOUS_BLOCK_HASH + "3",
        "target": "7fffff0000000000000000000000000000000000000000000000000000000000",
        "mintime": 1_795_571_303,
        "mutable": ["time", "transactions", "prevblock"],
        "noncerange": "00000000ffffffff",
        "sigoplimit": 80000,
        "sizelimit": 4000000,
        "weightlimit": 4000000,
        "curtime": 1_795_571_900,
        "bits": "207fffff",
        "height": 205,
        "default_witness_commitment": DEFAULT_WITNESS_COMMITMENT,
    }


_TITLE = re.compile(r"^## .*\(type 0x(?P<type>[0-9a-fA-F]{2}), len (?P<len>\d+)\)")


def tp_messages() -> list[Message]:
    """Every payload of sv2-tp-frames.txt, decoded with the codec, in file order."""
    messages: list[Message] = []
    msg_type: int | None = None
    for line in TP_FRAMES_FILE.read_text(encoding="utf-8").splitlines():
        heading = _TITLE.match(line)
        if heading is not None:
            msg_type = int(heading["type"], 16)
        elif line and not line.startswith("#"):
            assert msg_type is not None, f"payload before any heading: {line!r}"
            messages.append(decode_message(0, msg_type, bytes.fromhex(line.strip())))
            msg_type = None
    return messages


def tp_templates() -> tuple[NewTemplate, NewTemplate, SetNewPrevHash]:
    """The future NewTemplate (id 1, height 102), the non-future one (id 6, height 204), and the
    SetNewPrevHash that activates template 1."""
    new_templates = [m for m in tp_messages() if isinstance(m, NewTemplate)]
    prev_hashes = [m for m in tp_messages() if isinstance(m, SetNewPrevHash)]
    future, current = new_templates
    (prev,) = prev_hashes
    return future, current, prev
