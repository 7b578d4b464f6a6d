"""Bitcoin consensus serialization: CompactSize, transactions, headers, blocks (PROTOCOL.md §6).

Byte layouts follow Bitcoin Core's ``serialize.h`` / ``primitives/transaction.h`` and BIP141/
BIP144 for the witness form.  Every integer is little-endian; hashes (txids, prev_hash,
merkle_root) are raw 32-byte SHA256d output in internal order, the order headers and Stratum
V2 messages carry (explorers print them reversed, see :func:`~sv2proxy.bitcoin.hashing.display_hex`).

Parsing is strict: truncation, non-canonical CompactSize, an unknown or empty witness flag,
a superfluous witness record and trailing bytes are ValueErrors whose message says what was
being read and where, never an IndexError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sv2proxy.bitcoin.hashing import sha256d

MAX_COMPACT_SIZE = 0xFFFF_FFFF_FFFF_FFFF
HEADER_SIZE = 80
NULL_HASH = bytes(32)
COINBASE_PREV_INDEX = 0xFFFF_FFFF  # a coinbase input spends (NULL_HASH, 0xffffffff)
WITNESS_MARKER = 0x00
WITNESS_FLAG = 0x01
WITNESS_SCALE_FACTOR = 4  # BIP141: weight = base size * 3 + total size
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def encode_compact_size(value: int) -> bytes:
    """``value`` as a CompactSize: 1 byte below 0xfd, else a 0xfd/0xfe/0xff tag and LE2/LE4/LE8."""
    if not 0 <= value <= MAX_COMPACT_SIZE:
        raise ValueError(f"a CompactSize holds 0..2**64-1, got {value}")
    if value < 0xFD:
        return bytes((value,))
    if value <= 0xFFFF:
        return b"\xfd" + value.to_bytes(2, "little")
    if value <= 0xFFFF_FFFF:
        return b"\xfe" + value.to_bytes(4, "little")
    return b"\xff" + value.to_bytes(8, "little")


def decode_compact_size(data: bytes, offset: int = 0) -> tuple[int, int]:
    """The CompactSize at ``offset`` in ``data`` and the offset just past it.

    Non-canonical encodings (a wider form than the value needs) are refused, as Core's
    ReadCompactSize does: two encodings of one transaction would give two txids.
    """
    reader = _Reader(data, offset)
    value = reader.compact_size("CompactSize")
    return value, reader.offset


def _check_u32(value: int, what: str) -> None:
    if not 0 <= value <= 0xFFFF_FFFF:
        raise ValueError(f"{what} is a 32-bit unsigned integer, got {value}")


def _check_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != 32:
        raise ValueError(f"{what} must be 32 bytes")


def _check_bytes(value: bytes, what: str) -> None:
    if not isinstance(value, bytes):
        raise ValueError(f"{what} must be bytes, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class TxIn:
    """One transaction input: the outpoint it spends, its scriptSig, sequence and witness stack.

    ``prev_txid`` is raw (internal order), ``prev_index`` and ``sequence`` are u32 serialized
    little-endian.  ``witness`` is the BIP141 stack (empty for a non-witness spend); it is
    not part of the txid.
    """

    prev_txid: bytes
    prev_index: int
    script_sig: bytes = b""
    sequence: int = 0xFFFF_FFFF
    witness: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        _check_hash(self.prev_txid, "prev_txid")
        _check_u32(self.prev_index, "prev_index")
        _check_bytes(self.script_sig, "script_sig")
        _check_u32(self.sequence, "sequence")
        if not isinstance(self.witness, tuple):
            raise ValueError("witness must be a tuple of bytes")
        for item in self.witness:
            _check_bytes(item, "a witness item")

    @property
    def is_null_prevout(self) -> bool:
        """Whether this input spends the null outpoint, as only a coinbase input does."""
        return self.prev_txid == NULL_HASH and self.prev_index == COINBASE_PREV_INDEX

    def serialize(self) -> bytes:
        """prev_txid raw32 ‖ prev_index LE4 ‖ CompactSize len ‖ script_sig ‖ sequence LE4."""
        return b"".join(
            (
                self.prev_txid,
                self.prev_index.to_bytes(4, "little"),
                encode_compact_size(len(self.script_sig)),
                self.script_sig,
                self.sequence.to_bytes(4, "little"),
            )
        )


@dataclass(frozen=True, slots=True)
class TxOut:
    """One transaction output: an amount in satoshis and its scriptPubKey.

    The amount is Core's CAmount, a signed 64-bit integer serialized little-endian;
    consensus (not serialization) limits it to 0..MAX_MONEY.
    """

    value: int
    script_pubkey: bytes

    def __post_init__(self) -> None:
        if not _INT64_MIN <= self.value <= _INT64_MAX:
            raise ValueError(f"an output value is a signed 64-bit integer, got {self.value}")
        _check_bytes(self.script_pubkey, "script_pubkey")

    def serialize(self) -> bytes:
        """value LE8 (signed) ‖ CompactSize len ‖ script_pubkey."""
        return b"".join(
            (
                self.value.to_bytes(8, "little", signed=True),
                encode_compact_size(len(self.script_pubkey)),
                self.script_pubkey,
            )
        )


@dataclass(frozen=True, slots=True)
class Transaction:
    """A Bitcoin transaction, in both its legacy and its BIP141 witness serializations.

    ``version`` and ``lock_time`` are u32 serialized little-endian (Core's version field is
    unsigned since v28; the 4 bytes are the same either way).
    """

    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    lock_time: int = 0

    def __post_init__(self) -> None:
        _check_u32(self.version, "version")
        _check_u32(self.lock_time, "lock_time")
        if not isinstance(self.inputs, tuple) or not all(isinstance(i, TxIn) for i in self.inputs):
            raise ValueError("inputs must be a tuple of TxIn")
        if not isinstance(self.outputs, tuple) or not all(isinstance(o, TxOut) for o in self.outputs):
            raise ValueError("outputs must be a tuple of TxOut")

    @property
    def has_witness(self) -> bool:
        """Whether any input carries a witness stack (Core's HasWitness)."""
        return any(txin.witness for txin in self.inputs)

    @property
    def is_coinbase(self) -> bool:
        """Whether this is a coinbase: exactly one input, spending the null outpoint."""
        return len(self.inputs) == 1 and self.inputs[0].is_null_prevout

    def serialize(self, with_witness: bool = True) -> bytes:
        """The consensus bytes; with ``with_witness`` the BIP144 form when there is a witness.

        Legacy: version LE4 ‖ inputs ‖ outputs ‖ lock_time LE4, each list CompactSize-counted.
        Witness: version ‖ marker 0x00 ‖ flag 0x01 ‖ inputs ‖ outputs ‖ one stack per input
        (CompactSize count, then CompactSize-prefixed items) ‖ lock_time.  As in Core, a
        transaction with no witness data is written in the legacy form either way, so a
        zero-input transaction with outputs reads like the marker and only round-trips
        through ``parse(..., allow_witness=False)``.
        """
        parts = [self.version.to_bytes(4, "little")]
        extended = with_witness and self.has_witness
        if extended:
            parts.append(bytes((WITNESS_MARKER, WITNESS_FLAG)))
        parts.append(encode_compact_size(len(self.inputs)))
        parts.extend(txin.serialize() for txin in self.inputs)
        parts.append(encode_compact_size(len(self.outputs)))
        parts.extend(txout.serialize() for txout in self.outputs)
        if extended:
            for txin in self.inputs:
                parts.append(encode_compact_size(len(txin.witness)))
                for item in txin.witness:
                    parts.append(encode_compact_size(len(item)))
                    parts.append(item)
        parts.append(self.lock_time.to_bytes(4, "little"))
        return b"".join(parts)

    @property
    def txid(self) -> bytes:
        """SHA256d of the legacy serialization, raw (internal) order."""
        return sha256d(self.serialize(with_witness=False))

    @property
    def wtxid(self) -> bytes:
        """SHA256d of the witness serialization, raw order (equals txid without witness).

        BIP141's witness merkle tree uses 32 zero bytes in place of the coinbase's wtxid;
        that substitution belongs to the tree (see ``script.witness_commitment``), not here.
        """
        return sha256d(self.serialize(with_witness=True))

    @property
    def weight(self) -> int:
        """BIP141 weight: legacy size * 3 + full size."""
        return len(self.serialize(with_witness=False)) * (WITNESS_SCALE_FACTOR - 1) + len(self.serialize())

    @property
    def vsize(self) -> int:
        """Virtual size: weight / 4, rounded up."""
        return -(-self.weight // WITNESS_SCALE_FACTOR)

    @classmethod
    def parse(cls, data: bytes, *, allow_witness: bool = True) -> Transaction:
        """One transaction that is exactly ``data``, in either serialization."""
        reader = _Reader(data, 0)
        tx = _read_transaction(reader, allow_witness)
        reader.expect_end("transaction")
        return tx

    @classmethod
    def parse_prefix(cls, data: bytes, offset: int = 0, *, allow_witness: bool = True) -> tuple[Transaction, int]:
        """The transaction starting at ``offset`` and the offset just past it (more may follow,
        as in an AuxPoW proof, where the parent coinbase comes first)."""
        reader = _Reader(data, offset)
        tx = _read_transaction(reader, allow_witness)
        return tx, reader.offset


def _read_transaction(reader: _Reader, allow_witness: bool) -> Transaction:
    """Core's UnserializeTransaction, step for step, so both read the same bytes the same way."""
    version = reader.u32("transaction version")
    inputs = _read_inputs(reader)
    flags = 0
    outputs: list[TxOut] = []
    if not inputs and allow_witness:
        # Either the BIP144 marker or a genuinely empty input list: the next byte decides.
        flags = reader.u8("witness flag")
        if flags:
            inputs = _read_inputs(reader)
            outputs = _read_outputs(reader)
    else:
        outputs = _read_outputs(reader)
    if flags & WITNESS_FLAG and allow_witness:
        flags ^= WITNESS_FLAG
        stacks = [_read_witness(reader, i) for i in range(len(inputs))]
        if not any(stacks):
            raise ValueError("superfluous witness record: the witness flag is set but every stack is empty")
        inputs = [
            TxIn(txin.prev_txid, txin.prev_index, txin.script_sig, txin.sequence, stack)
            for txin, stack in zip(inputs, stacks, strict=True)
        ]
    if flags:
        raise ValueError(f"unknown transaction optional data (flag byte {flags:#04x})")
    lock_time = reader.u32("lock_time")
    return Transaction(version, tuple(inputs), tuple(outputs), lock_time)


def _read_inputs(reader: _Reader) -> list[TxIn]:
    count = reader.compact_size("input count")
    inputs = []
    for i in range(count):
        prev_txid = reader.take(32, f"input {i} prev_txid")
        prev_index = reader.u32(f"input {i} prev_index")
        script_sig = reader.var_bytes(f"input {i} script_sig")
        sequence = reader.u32(f"input {i} sequence")
        inputs.append(TxIn(prev_txid, prev_index, script_sig, sequence))
    return inputs


def _read_outputs(reader: _Reader) -> list[TxOut]:
    count = reader.compact_size("output count")
    outputs = []
    for i in range(count):
        value = int.from_bytes(reader.take(8, f"output {i} value"), "little", signed=True)
        outputs.append(TxOut(value, reader.var_bytes(f"output {i} script_pubkey")))
    return outputs


def _read_witness(reader: _Reader, index: int) -> tuple[bytes, ...]:
    count = reader.compact_size(f"input {index} witness item count")
    return tuple(reader.var_bytes(f"input {index} witness item {j}") for j in range(count))


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """The 80-byte block header.

    version LE4 ‖ prev_hash raw32 ‖ merkle_root raw32 ‖ time LE4 ‖ bits LE4 ‖ nonce LE4.
    ``version`` is read unsigned so that any rolled version (BIP320/BIP323 bits) round-trips.
    """

    version: int
    prev_hash: bytes
    merkle_root: bytes
    time: int
    bits: int
    nonce: int

    def __post_init__(self) -> None:
        _check_u32(self.version, "version")
        _check_hash(self.prev_hash, "prev_hash")
        _check_hash(self.merkle_root, "merkle_root")
        _check_u32(self.time, "time")
        _check_u32(self.bits, "bits")
        _check_u32(self.nonce, "nonce")

    def serialize(self) -> bytes:
        """The 80 header bytes, in the order the class docstring gives."""
        return b"".join(
            (
                self.version.to_bytes(4, "little"),
                self.prev_hash,
                self.merkle_root,
                self.time.to_bytes(4, "little"),
                self.bits.to_bytes(4, "little"),
                self.nonce.to_bytes(4, "little"),
            )
        )

    @property
    def hash(self) -> bytes:
        """The block hash: SHA256d of the 80 bytes, raw order (the next block's prev_hash)."""
        return sha256d(self.serialize())

    @classmethod
    def parse(cls, data: bytes) -> BlockHeader:
        """The header that is exactly the 80 bytes ``data``."""
        if len(data) != HEADER_SIZE:
            raise ValueError(f"a block header is {HEADER_SIZE} bytes, got {len(data)}")
        reader = _Reader(data, 0)
        return _read_header(reader)


def _read_header(reader: _Reader) -> BlockHeader:
    return BlockHeader(
        version=reader.u32("header version"),
        prev_hash=reader.take(32, "header prev_hash"),
        merkle_root=reader.take(32, "header merkle_root"),
        time=reader.u32("header time"),
        bits=reader.u32("header bits"),
        nonce=reader.u32("header nonce"),
    )


def serialize_block(header: BlockHeader, transactions: Sequence[Transaction]) -> bytes:
    """A block as ``submitblock`` takes it: header ‖ CompactSize tx count ‖ txs with witness."""
    return b"".join(
        (
            header.serialize(),
            encode_compact_size(len(transactions)),
            *(tx.serialize(with_witness=True) for tx in transactions),
        )
    )


def parse_block(data: bytes) -> tuple[BlockHeader, tuple[Transaction, ...]]:
    """The header and transactions of the block that is exactly ``data``."""
    reader = _Reader(data, 0)
    header = _read_header(reader)
    count = reader.compact_size("transaction count")
    transactions = tuple(_read_transaction(reader, allow_witness=True) for _ in range(count))
    reader.expect_end("block")
    return header, transactions


class _Reader:
    """A cursor over immutable bytes whose every read is bounds-checked with a named field.

    Each parse makes its own, so there is no shared state; the offset is its only mutable part.
    """

    __slots__ = ("_data", "offset")

    def __init__(self, data: bytes, offset: int) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValueError(f"expected bytes, got {type(data).__name__}")
        if not 0 <= offset <= len(data):
            raise ValueError(f"offset {offset} is outside the {len(data)}-byte buffer")
        self._data = bytes(data)
        self.offset = offset

    def take(self, size: int, what: str) -> bytes:
        end = self.offset + size
        if end > len(self._data):
            raise ValueError(
                f"truncated: {what} needs {size} bytes at offset {self.offset}, "
                f"only {len(self._data) - self.offset} remain"
            )
        chunk = self._data[self.offset : end]
        self.offset = end
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "little")

    def compact_size(self, what: str) -> int:
        start = self.offset
        tag = self.u8(what)
        if tag < 0xFD:
            return tag
        width, minimum = {0xFD: (2, 0xFD), 0xFE: (4, 0x1_0000), 0xFF: (8, 0x1_0000_0000)}[tag]
        value = int.from_bytes(self.take(width, what), "little")
        if value < minimum:
            raise ValueError(f"non-canonical CompactSize for {what} at offset {start}: {value} in {width + 1} bytes")
        return value

    def var_bytes(self, what: str) -> bytes:
        size = self.compact_size(f"{what} length")
        return self.take(size, what)

    def expect_end(self, what: str) -> None:
        extra = len(self._data) - self.offset
        if extra:
            raise ValueError(f"{extra} trailing bytes after the {what}")
