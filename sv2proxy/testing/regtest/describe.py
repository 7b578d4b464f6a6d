"""Bitcoin Core's JSON for scripts and transactions (core_write.cpp, ``TxToUniv``, ``ScriptToUniv``).

Used by ``getblock`` (verbosity 2 and 3), ``getrawtransaction`` and ``getrawmempool``.  A
scriptPubKey is described as Core does: ``asm``, ``desc`` (the descriptor Core infers when it
knows no keys: ``addr()``, ``pk()``, ``multi()``, ``rawtr()`` or ``raw()``, with its BIP380
checksum), ``hex``, ``address`` when the script has one, and the Solver's ``type``.

The one liberty: Core prints amounts as fixed 8-decimal numbers (``50.00000000``); JSON
numbers here come from floats (``50.0``), which every JSON reader takes as the same value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import base58
from base58_bech32.bech32 import BECH32_1_CONST, BECH32_M_CONST, bech32_encode, convertbits
from coincurve import PublicKey, PublicKeyXOnly

from sv2proxy.bitcoin.address import Network
from sv2proxy.bitcoin.descriptor import add_checksum
from sv2proxy.bitcoin.hashing import display_hex
from sv2proxy.bitcoin.script import OP_1, OP_16, OP_CHECKSIG, OP_RETURN, decode_script_num
from sv2proxy.bitcoin.serialize import Transaction
from sv2proxy.testing.regtest.consensus import (
    COIN,
    OP_CHECKMULTISIG,
    Coin,
    is_p2sh,
    is_push_only,
    is_unspendable,
    script_ops,
    witness_program,
)

NETWORK = Network.REGTEST
_PAY_TO_ANCHOR = bytes.fromhex("51024e73")

_OPCODE_NAMES = {
    0x00: "0",
    0x4C: "OP_PUSHDATA1",
    0x4D: "OP_PUSHDATA2",
    0x4E: "OP_PUSHDATA4",
    0x4F: "-1",
    0x50: "OP_RESERVED",
    **{OP_1 + n: str(n + 1) for n in range(16)},
    **dict(
        enumerate(
            (
                "OP_NOP OP_VER OP_IF OP_NOTIF OP_VERIF OP_VERNOTIF OP_ELSE OP_ENDIF OP_VERIFY OP_RETURN "
                "OP_TOALTSTACK OP_FROMALTSTACK OP_2DROP OP_2DUP OP_3DUP OP_2OVER OP_2ROT OP_2SWAP OP_IFDUP "
                "OP_DEPTH OP_DROP OP_DUP OP_NIP OP_OVER OP_PICK OP_ROLL OP_ROT OP_SWAP OP_TUCK OP_CAT "
                "OP_SUBSTR OP_LEFT OP_RIGHT OP_SIZE OP_INVERT OP_AND OP_OR OP_XOR OP_EQUAL OP_EQUALVERIFY "
                "OP_RESERVED1 OP_RESERVED2 OP_1ADD OP_1SUB OP_2MUL OP_2DIV OP_NEGATE OP_ABS OP_NOT "
                "OP_0NOTEQUAL OP_ADD OP_SUB OP_MUL OP_DIV OP_MOD OP_LSHIFT OP_RSHIFT OP_BOOLAND OP_BOOLOR "
                "OP_NUMEQUAL OP_NUMEQUALVERIFY OP_NUMNOTEQUAL OP_LESSTHAN OP_GREATERTHAN "
                "OP_LESSTHANOREQUAL OP_GREATERTHANOREQUAL OP_MIN OP_MAX OP_WITHIN OP_RIPEMD160 OP_SHA1 "
                "OP_SHA256 OP_HASH160 OP_HASH256 OP_CODESEPARATOR OP_CHECKSIG OP_CHECKSIGVERIFY "
                "OP_CHECKMULTISIG OP_CHECKMULTISIGVERIFY OP_NOP1 OP_CHECKLOCKTIMEVERIFY "
                "OP_CHECKSEQUENCEVERIFY OP_NOP4 OP_NOP5 OP_NOP6 OP_NOP7 OP_NOP8 OP_NOP9 OP_NOP10 "
                "OP_CHECKSIGADD"
            ).split(),
            start=0x61,
        )
    ),
    0xFF: "OP_INVALIDOPCODE",
}
_SIGHASH_NAMES = {
    0x01: "ALL",
    0x02: "NONE",
    0x03: "SINGLE",
    0x81: "ALL|ANYONECANPAY",
    0x82: "NONE|ANYONECANPAY",
    0x83: "SINGLE|ANYONECANPAY",
}


def amount(satoshis: int) -> float:
    """Satoshis as the BTC number Core's ValueFromAmount writes."""
    return satoshis / COIN


def _is_der_signature(sig: bytes) -> bool:
    """BIP66's IsValidSignatureEncoding (DER with the sighash byte appended)."""
    if not 9 <= len(sig) <= 73 or sig[0] != 0x30 or sig[1] != len(sig) - 3:
        return False
    len_r = sig[3]
    if 5 + len_r >= len(sig):
        return False
    len_s = sig[5 + len_r]
    if len_r + len_s + 7 != len(sig) or sig[2] != 0x02 or len_r == 0 or sig[4] & 0x80:
        return False
    if len_r > 1 and sig[4] == 0 and not sig[5] & 0x80:
        return False
    if sig[len_r + 4] != 0x02 or len_s == 0 or sig[len_r + 6] & 0x80:
        return False
    return not (len_s > 1 and sig[len_r + 6] == 0 and not sig[len_r + 7] & 0x80)


def script_asm(script: bytes, decode_sighash: bool = False) -> str:
    """ScriptToAsmStr: small pushes as numbers, others hex, opcodes by name, ``[error]`` if malformed.

    With ``decode_sighash`` (scriptSigs), a DER signature's last byte is written as
    ``[ALL]`` etc., as Core does.
    """
    parts: list[str] = []
    ops = script_ops(script)
    while True:
        try:
            op, data = next(ops)
        except StopIteration:
            break
        except ValueError:
            parts.append("[error]")
            break
        if op <= 0x4E:
            if len(data) <= 4:
                parts.append(str(_script_num_lax(data)))
                continue
            text = data.hex()
            if decode_sighash and not is_unspendable(script) and _is_der_signature(data):
                name = _SIGHASH_NAMES.get(data[-1])
                if name is not None:
                    text = data[:-1].hex() + f"[{name}]"
            parts.append(text)
        else:
            parts.append(_OPCODE_NAMES.get(op, "OP_UNKNOWN"))
    return " ".join(parts)


def _script_num_lax(data: bytes) -> int:
    """CScriptNum(vch, fRequireMinimal=false): sign-magnitude little-endian, any encoding."""
    try:
        return decode_script_num(data)
    except ValueError:
        if not data:
            return 0
        magnitude = int.from_bytes(data, "little") & ~(0x80 << 8 * (len(data) - 1))
        return -magnitude if data[-1] & 0x80 else magnitude


def _is_pubkey(data: bytes) -> bool:
    return (len(data) == 33 and data[0] in (2, 3)) or (len(data) == 65 and data[0] in (4, 6, 7))


def _fully_valid_pubkey(data: bytes) -> bool:
    try:
        PublicKey(data)
    except ValueError:
        return False
    return True


def _multisig(script: bytes) -> tuple[int, list[bytes]] | None:
    """(required, keys) of a bare ``m <keys> n OP_CHECKMULTISIG`` script (MatchMultisig)."""
    try:
        ops = list(script_ops(script))
    except ValueError:
        return None
    if len(ops) < 4 or ops[-1][0] != OP_CHECKMULTISIG:
        return None
    first, last = ops[0][0], ops[-2][0]
    if not (OP_1 <= first <= OP_16 and OP_1 <= last <= OP_16):
        return None
    middle = ops[1:-2]
    if any(op > 0x4E or not _is_pubkey(data) for op, data in middle):
        return None
    required, count = first - OP_1 + 1, last - OP_1 + 1
    if len(middle) != count or required > count:
        return None
    return required, [data for _, data in middle]


def script_type(script: bytes) -> str:
    """Core's Solver name for an output script (GetTxnOutputType)."""
    if is_p2sh(script):
        return "scripthash"
    program = witness_program(script)
    if program is not None:
        version, data = program
        if version == 0 and len(data) == 20:
            return "witness_v0_keyhash"
        if version == 0 and len(data) == 32:
            return "witness_v0_scripthash"
        if version == 1 and len(data) == 32:
            return "witness_v1_taproot"
        if script == _PAY_TO_ANCHOR:
            return "anchor"
        return "witness_unknown" if version != 0 else "nonstandard"
    if script[:1] == bytes((OP_RETURN,)) and is_push_only(script[1:]):
        return "nulldata"
    if len(script) in (35, 67) and script[0] == len(script) - 2 and script[-1] == OP_CHECKSIG:
        if _is_pubkey(script[1:-1]):
            return "pubkey"
    if (
        len(script) == 25
        and script[:3] == bytes.fromhex("76a914")
        and script[23:] == bytes.fromhex("88ac")
    ):
        return "pubkeyhash"
    if _multisig(script) is not None:
        return "multisig"
    return "nonstandard"


def script_address(script: bytes) -> str | None:
    """The regtest address of an output script (ExtractDestination), None when it has none."""
    kind = script_type(script)
    if kind == "pubkeyhash":
        return base58.b58encode_check(bytes((NETWORK.p2pkh_prefix,)) + script[3:23]).decode()
    if kind == "scripthash":
        return base58.b58encode_check(bytes((NETWORK.p2sh_prefix,)) + script[2:22]).decode()
    if kind in ("witness_v0_keyhash", "witness_v0_scripthash", "witness_v1_taproot", "witness_unknown", "anchor"):
        program = witness_program(script)
        if program is None:
            return None
        version, data = program
        const = BECH32_1_CONST if version == 0 else BECH32_M_CONST
        return bech32_encode(NETWORK.bech32_hrp, [version, *convertbits(data, 8, 5)], m=const).decode()
    return None


def script_descriptor(script: bytes) -> str:
    """The descriptor Core's InferDescriptor gives without key information, with checksum."""
    kind = script_type(script)
    if kind == "pubkey" and _fully_valid_pubkey(script[1:-1]):
        return add_checksum(f"pk({script[1:-1].hex()})")
    if kind == "witness_v1_taproot" and _is_xonly(script[2:]):
        return add_checksum(f"rawtr({script[2:].hex()})")
    if kind == "multisig":
        parsed = _multisig(script)
        if parsed is not None and all(_fully_valid_pubkey(key) for key in parsed[1]):
            keys = ",".join(key.hex() for key in parsed[1])
            return add_checksum(f"multi({parsed[0]},{keys})")
    address = script_address(script)
    if address is not None:
        return add_checksum(f"addr({address})")
    return add_checksum(f"raw({script.hex()})")


def script_pubkey_json(script: bytes) -> dict[str, Any]:
    """ScriptToUniv for an output: asm, desc, hex, address (when any), type."""
    result: dict[str, Any] = {"asm": script_asm(script), "desc": script_descriptor(script), "hex": script.hex()}
    address = script_address(script)
    if address is not None:
        result["address"] = address
    result["type"] = script_type(script)
    return result


def transaction_json(
    tx: Transaction,
    *,
    spent: Sequence[Coin] | None = None,
    with_prevout: bool = False,
    include_hex: bool = True,
) -> dict[str, Any]:
    """TxToUniv: the decoded transaction; ``spent`` (undo data) adds the fee and, with
    ``with_prevout``, each input's prevout as getblock verbosity 3 does."""
    vin: list[dict[str, Any]] = []
    for index, txin in enumerate(tx.inputs):
        item: dict[str, Any]
        if tx.is_coinbase:
            item = {"coinbase": txin.script_sig.hex()}
        else:
            item = {
                "txid": display_hex(txin.prev_txid),
                "vout": txin.prev_index,
                "scriptSig": {"asm": script_asm(txin.script_sig, decode_sighash=True), "hex": txin.script_sig.hex()},
            }
        if txin.witness:
            item["txinwitness"] = [element.hex() for element in txin.witness]
        if spent is not None and with_prevout and not tx.is_coinbase:
            coin = spent[index]
            item["prevout"] = {
                "generated": coin.is_coinbase,
                "height": coin.height,
                "value": amount(coin.value),
                "scriptPubKey": script_pubkey_json(coin.script_pubkey),
            }
        item["sequence"] = txin.sequence
        vin.append(item)
    result: dict[str, Any] = {
        "txid": display_hex(tx.txid),
        "hash": display_hex(tx.wtxid),
        "version": tx.version,  # unsigned since Core v28
        "size": len(tx.serialize()),
        "vsize": tx.vsize,
        "weight": tx.weight,
        "locktime": tx.lock_time,
        "vin": vin,
        "vout": [
            {"value": amount(txout.value), "n": n, "scriptPubKey": script_pubkey_json(txout.script_pubkey)}
            for n, txout in enumerate(tx.outputs)
        ],
    }
    if spent is not None and not tx.is_coinbase:
        result["fee"] = amount(sum(coin.value for coin in spent) - sum(txout.value for txout in tx.outputs))
    if include_hex:
        result["hex"] = tx.serialize().hex()
    return result


def _is_xonly(key: bytes) -> bool:
    """Whether ``key`` is a valid BIP340 x-only public key (Core's rawtr() needs one)."""
    try:
        PublicKeyXOnly(key)
    except ValueError:
        return False
    return True
