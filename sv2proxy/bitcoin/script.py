"""Script building blocks: pushes, the BIP34 height, output templates, the BIP141 commitment.

Pushes are written exactly as Bitcoin Core's ``CScript::operator<<`` writes them, because
consensus compares bytes: BIP34 checks that the coinbase scriptSig *starts with*
``CScript() << nHeight`` (ContextualCheckBlock), and the sv2-tp Template Provider sends that
push as NewTemplate.coinbase_prefix (PROTOCOL.md §7, §11).  Script numbers are little-endian
sign-magnitude, minimal (CScriptNum::serialize); push lengths after OP_PUSHDATA2/4 are LE.
"""

from __future__ import annotations

from collections.abc import Sequence

from sv2proxy.bitcoin.hashing import merkle_root, sha256d

OP_0 = 0x00
OP_PUSHDATA1 = 0x4C
OP_PUSHDATA2 = 0x4D
OP_PUSHDATA4 = 0x4E
OP_1NEGATE = 0x4F
OP_1 = 0x51
OP_16 = 0x60
OP_RETURN = 0x6A
OP_DUP = 0x76
OP_EQUAL = 0x87
OP_EQUALVERIFY = 0x88
OP_HASH160 = 0xA9
OP_CHECKSIG = 0xAC

WITNESS_COMMITMENT_HEADER = bytes.fromhex("aa21a9ed")  # BIP141: the 4 bytes after OP_RETURN PUSH36
WITNESS_COMMITMENT_SCRIPT_PREFIX = bytes((OP_RETURN, 0x24)) + WITNESS_COMMITMENT_HEADER
MINIMUM_WITNESS_COMMITMENT_SIZE = 38  # Core's MINIMUM_WITNESS_COMMITMENT: prefix + 32
WITNESS_RESERVED_VALUE = bytes(32)  # what Core and sv2-tp put in the coinbase witness
MAX_BIP34_HEIGHT = 0x7FFF_FFFF  # Core's nHeight is an int


def encode_script_num(value: int) -> bytes:
    """``value`` as a minimal script number (CScriptNum::serialize): LE magnitude, sign in the top bit.

    0 is the empty string; a magnitude whose top byte has its high bit set gets an extra
    0x00 (or 0x80 when negative) so the sign bit stays free.
    """
    if value == 0:
        return b""
    negative = value < 0
    magnitude = -value if negative else value
    out = bytearray(magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "little"))
    if out[-1] & 0x80:
        out.append(0x80 if negative else 0x00)
    elif negative:
        out[-1] |= 0x80
    return bytes(out)


def decode_script_num(data: bytes, max_size: int = 4) -> int:
    """The script number ``data`` encodes, refusing non-minimal encodings (as MINIMALDATA does)."""
    if len(data) > max_size:
        raise ValueError(f"script number of {len(data)} bytes exceeds {max_size}")
    if not data:
        return 0
    if data[-1] & 0x7F == 0 and (len(data) == 1 or not data[-2] & 0x80):
        raise ValueError(f"non-minimally encoded script number {data.hex()}")
    magnitude = int.from_bytes(data, "little") & ~(0x80 << 8 * (len(data) - 1))
    return -magnitude if data[-1] & 0x80 else magnitude


def push_data(data: bytes) -> bytes:
    """The push of ``data`` as ``CScript() << data`` writes it: length byte, or PUSHDATA1/2/4 + LE length.

    Like Core's operator<< for byte vectors this never turns a 1-byte value into OP_N; use
    :func:`push_int` for numbers.
    """
    size = len(data)
    if size < OP_PUSHDATA1:
        prefix = bytes((size,))
    elif size <= 0xFF:
        prefix = bytes((OP_PUSHDATA1, size))
    elif size <= 0xFFFF:
        prefix = bytes((OP_PUSHDATA2,)) + size.to_bytes(2, "little")
    elif size <= 0xFFFF_FFFF:
        prefix = bytes((OP_PUSHDATA4,)) + size.to_bytes(4, "little")
    else:
        raise ValueError(f"cannot push {size} bytes")
    return prefix + data


def push_int(value: int) -> bytes:
    """The push of a number as ``CScript() << int64`` writes it: OP_0, OP_1NEGATE, OP_1..OP_16, else a push."""
    if not -(1 << 63) <= value < 1 << 63:
        raise ValueError(f"{value} is outside int64")
    if value == 0:
        return bytes((OP_0,))
    if value == -1:
        return bytes((OP_1NEGATE,))
    if 1 <= value <= 16:
        return bytes((OP_1 - 1 + value,))
    return push_data(encode_script_num(value))


def bip34_height_push(height: int) -> bytes:
    """The BIP34 height push that must begin a coinbase scriptSig: ``CScript() << nHeight``.

    Heights 1..16 are the single opcodes OP_1..OP_16 (Core's push_int64), others a minimal
    script number: 102 -> ``01 66``, 204 -> ``02 cc 00`` (0xcc has its sign bit set).
    Core also requires a coinbase scriptSig of 2..100 bytes, so a 1-byte push alone is not a
    valid scriptSig: whoever builds the coinbase appends at least one more byte.
    """
    if not 0 <= height <= MAX_BIP34_HEIGHT:
        raise ValueError(f"block height must be 0..{MAX_BIP34_HEIGHT}, got {height}")
    return push_int(height)


def bip34_height_from_script_sig(script_sig: bytes) -> int:
    """The height a coinbase scriptSig starts with, refusing anything Core's check would not match.

    The inverse of :func:`bip34_height_push`: only the exact bytes it writes are accepted, so
    a template whose prefix we can read is one whose prefix Core accepts.
    """
    if not script_sig:
        raise ValueError("empty scriptSig has no BIP34 height")
    opcode = script_sig[0]
    push_size = 1 + opcode if 1 <= opcode <= 4 else 1
    if opcode == OP_0:
        height = 0
    elif OP_1 <= opcode <= OP_16:
        height = opcode - OP_1 + 1
    elif 1 <= opcode <= 4:
        if len(script_sig) < push_size:
            raise ValueError(f"scriptSig ends inside its {opcode}-byte height push")
        height = decode_script_num(script_sig[1 : 1 + opcode])
    else:
        raise ValueError(f"scriptSig does not start with a height push (opcode {opcode:#04x})")
    if not 0 <= height <= MAX_BIP34_HEIGHT or not script_sig.startswith(bip34_height_push(height)):
        raise ValueError(f"scriptSig starts with a non-canonical height push {script_sig[:push_size].hex()}")
    return height


def p2pkh_script(pubkey_hash: bytes) -> bytes:
    """OP_DUP OP_HASH160 <20-byte hash> OP_EQUALVERIFY OP_CHECKSIG."""
    if len(pubkey_hash) != 20:
        raise ValueError(f"a P2PKH hash is 20 bytes, got {len(pubkey_hash)}")
    return bytes((OP_DUP, OP_HASH160)) + push_data(pubkey_hash) + bytes((OP_EQUALVERIFY, OP_CHECKSIG))


def p2sh_script(script_hash: bytes) -> bytes:
    """OP_HASH160 <20-byte hash> OP_EQUAL."""
    if len(script_hash) != 20:
        raise ValueError(f"a P2SH hash is 20 bytes, got {len(script_hash)}")
    return bytes((OP_HASH160,)) + push_data(script_hash) + bytes((OP_EQUAL,))


def witness_program_script(version: int, program: bytes) -> bytes:
    """OP_n <program>: a native segwit output (BIP141 v0, BIP341 v1, v2..v16 reserved)."""
    if not 0 <= version <= 16:
        raise ValueError(f"witness version must be 0..16, got {version}")
    if not 2 <= len(program) <= 40:
        raise ValueError(f"a witness program is 2..40 bytes, got {len(program)}")
    return bytes((OP_0 if version == 0 else OP_1 - 1 + version,)) + push_data(program)


def witness_merkle_root(wtxids_without_coinbase: Sequence[bytes]) -> bytes:
    """BIP141's witness root: the merkle root over wtxids, 32 zero bytes standing for the coinbase."""
    return merkle_root([bytes(32), *wtxids_without_coinbase])


def witness_commitment(
    wtxids_without_coinbase: Sequence[bytes], witness_reserved_value: bytes = WITNESS_RESERVED_VALUE
) -> bytes:
    """BIP141's commitment: SHA256d(witness root ‖ witness reserved value), raw order.

    The reserved value is the coinbase input's single witness item; Core and sv2-tp use 32
    zero bytes (PROTOCOL.md §7).
    """
    if len(witness_reserved_value) != 32:
        raise ValueError(f"the witness reserved value is 32 bytes, got {len(witness_reserved_value)}")
    return sha256d(witness_merkle_root(wtxids_without_coinbase) + witness_reserved_value)


def witness_commitment_script(commitment: bytes) -> bytes:
    """The commitment output's scriptPubKey: OP_RETURN PUSH36 aa21a9ed ‖ commitment (38 bytes)."""
    if len(commitment) != 32:
        raise ValueError(f"a witness commitment is 32 bytes, got {len(commitment)}")
    return WITNESS_COMMITMENT_SCRIPT_PREFIX + commitment


def witness_commitment_index(script_pubkeys: Sequence[bytes]) -> int | None:
    """Which coinbase output carries the witness commitment (Core's GetWitnessCommitmentIndex).

    The *last* output whose script is at least 38 bytes and starts with the commitment
    prefix; None when there is none.
    """
    found = None
    for index, script in enumerate(script_pubkeys):
        if len(script) >= MINIMUM_WITNESS_COMMITMENT_SIZE and script.startswith(WITNESS_COMMITMENT_SCRIPT_PREFIX):
            found = index
    return found
