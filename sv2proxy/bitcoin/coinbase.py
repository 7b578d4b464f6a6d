"""The coinbase builder: scriptSig with extranonce space, payouts, and the prefix/suffix split.

Layout (PROTOCOL.md §6 "SRI coinbase layout", "coinbase"; §7 "NewTemplate fields"; §11)::

    scriptSig = height push (BIP34) or the TP's coinbase_prefix
              ‖ push(pool_tag)                    (omitted when the tag is empty)
              ‖ push(merged-mining commitment)    (merge mining only: fabe6d6d ‖ root ‖ size ‖ nonce)
              ‖ OP_PUSHBYTES_N ‖ N-byte extranonce
    outputs   = payouts (ours, in order) ‖ extra outputs (the witness commitment / the TP's outputs)
    witness   = one 32-byte zero item (the BIP141 witness reserved value), when the block commits

The extranonce is one data push whose opcode sits in the prefix, so every extranonce of the
agreed size gives a scriptSig of the same length: the CompactSize in front of the scriptSig
and the opcode never change, and ``prefix ‖ extranonce ‖ suffix`` is the whole legacy
(BIP141-stripped) serialization, whose SHA256d is the txid the merkle root hangs off.  The
witness form, with marker, flag and the reserved value, is what a block and SubmitSolution
carry.

Pure functions and frozen values: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from sv2proxy.bitcoin.hashing import sha256d
from sv2proxy.bitcoin.script import WITNESS_RESERVED_VALUE, bip34_height_push, push_data
from sv2proxy.bitcoin.serialize import (
    COINBASE_PREV_INDEX,
    NULL_HASH,
    Transaction,
    TxIn,
    TxOut,
    decode_compact_size,
    encode_compact_size,
)

#: Core's CheckTransaction: a coinbase scriptSig is 2..100 bytes ("bad-cb-length").
MIN_COINBASE_SCRIPT_SIG_SIZE = 2
MAX_COINBASE_SCRIPT_SIG_SIZE = 100
#: OP_PUSHBYTES_1..75: the largest push whose opcode is its own length byte.  Anything larger
#: would need OP_PUSHDATA1, and the 100-byte scriptSig leaves no room for that to matter.
MAX_DIRECT_PUSH_SIZE = 75
#: Consensus bound on any amount (Core's MAX_MONEY), in satoshis.
MAX_MONEY = 21_000_000 * 100_000_000
#: Input sequences: final (the default), and the non-final value sv2-tp and Core's own miner
#: write together with lock_time = height - 1 (PROTOCOL.md §11).
SEQUENCE_FINAL = 0xFFFF_FFFF
SEQUENCE_NONFINAL = 0xFFFF_FFFE
#: The coinbase's witness when the block has a witness commitment (BIP141).
COINBASE_WITNESS = (WITNESS_RESERVED_VALUE,)
#: Coinbase transaction version written by Core and sv2-tp.
COINBASE_TX_VERSION = 2

# version LE4 ‖ input count (always 1) ‖ null outpoint (32 + 4): what precedes the scriptSig length.
_BEFORE_SCRIPT_SIG = 4 + 1 + 32 + 4

Percent = int | Decimal | Fraction | float


@dataclass(frozen=True, slots=True)
class CoinbaseTemplate:
    """A coinbase with its extranonce left open, in both serializations.

    ``script_sig_prefix`` is the scriptSig up to the extranonce bytes, so it ends with the
    OP_PUSHBYTES_N opcode of the extranonce push.  ``prefix``/``suffix`` are the legacy
    serialization around the extranonce (what NewExtendedMiningJob and :class:`Work` carry);
    ``witness_prefix``/``witness_suffix`` the same for the BIP144 form (equal to the legacy
    ones when ``witness`` is false).  They are computed once here, since every job and
    every found block uses them.
    """

    version: int
    script_sig_prefix: bytes
    extranonce_size: int
    sequence: int
    outputs: tuple[TxOut, ...]
    lock_time: int
    witness: bool
    prefix: bytes = field(init=False, repr=False)
    suffix: bytes = field(init=False, repr=False)
    witness_prefix: bytes = field(init=False, repr=False)
    witness_suffix: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.extranonce_size <= MAX_DIRECT_PUSH_SIZE:
            raise ValueError(
                f"the extranonce is 1..{MAX_DIRECT_PUSH_SIZE} bytes (one direct push), got {self.extranonce_size}"
            )
        if not self.script_sig_prefix or self.script_sig_prefix[-1] != self.extranonce_size:
            raise ValueError(f"script_sig_prefix must end with the extranonce push opcode {self.extranonce_size:#04x}")
        size = self.script_sig_size
        if not MIN_COINBASE_SCRIPT_SIG_SIZE <= size <= MAX_COINBASE_SCRIPT_SIG_SIZE:
            raise ValueError(
                f"a coinbase scriptSig is {MIN_COINBASE_SCRIPT_SIG_SIZE}..{MAX_COINBASE_SCRIPT_SIG_SIZE} bytes, "
                f"this one would be {size} ({len(self.script_sig_prefix)} before the extranonce "
                f"+ {self.extranonce_size} extranonce)"
            )
        if not self.outputs:
            raise ValueError("a coinbase needs at least one output")
        _check_amounts(self.outputs)
        # Serialize once with a placeholder extranonce through the one transaction serializer
        # there is, then cut the extranonce out: the split cannot disagree with Transaction.
        placeholder = bytes(self.extranonce_size)
        tx = self.build(placeholder)
        start = _BEFORE_SCRIPT_SIG + len(encode_compact_size(size)) + len(self.script_sig_prefix)
        legacy = tx.serialize(with_witness=False)
        full = tx.serialize(with_witness=True)
        shift = 2 if self.witness else 0  # BIP144 marker and flag come before the input count
        object.__setattr__(self, "prefix", legacy[:start])
        object.__setattr__(self, "suffix", legacy[start + self.extranonce_size :])
        object.__setattr__(self, "witness_prefix", full[: start + shift])
        object.__setattr__(self, "witness_suffix", full[start + shift + self.extranonce_size :])

    @property
    def script_sig_size(self) -> int:
        """The scriptSig's length with the extranonce in place (the same for every extranonce)."""
        return len(self.script_sig_prefix) + self.extranonce_size

    @property
    def value(self) -> int:
        """The sum of all outputs: what the coinbase claims of subsidy and fees."""
        return sum(out.value for out in self.outputs)

    def build(self, extranonce: bytes) -> Transaction:
        """The coinbase as a :class:`Transaction`, with ``extranonce`` filled in."""
        self._check_extranonce(extranonce)
        txin = TxIn(
            NULL_HASH,
            COINBASE_PREV_INDEX,
            self.script_sig_prefix + extranonce,
            self.sequence,
            COINBASE_WITNESS if self.witness else (),
        )
        return Transaction(self.version, (txin,), self.outputs, self.lock_time)

    def serialize(self, extranonce: bytes, with_witness: bool = True) -> bytes:
        """The coinbase bytes for ``extranonce``: the block/SubmitSolution form, or the legacy one.

        Concatenation of the precomputed halves, byte-identical to ``build(...).serialize(...)``.
        """
        self._check_extranonce(extranonce)
        if with_witness:
            return self.witness_prefix + extranonce + self.witness_suffix
        return self.prefix + extranonce + self.suffix

    def txid(self, extranonce: bytes) -> bytes:
        """The coinbase txid (raw order) for ``extranonce``: the merkle tree's first leaf."""
        return sha256d(self.serialize(extranonce, with_witness=False))

    def _check_extranonce(self, extranonce: bytes) -> None:
        if len(extranonce) != self.extranonce_size:
            raise ValueError(f"the extranonce is {self.extranonce_size} bytes, got {len(extranonce)}")


def build_coinbase(
    *,
    extranonce_size: int,
    payouts: Sequence[tuple[bytes, int]],
    height: int | None = None,
    coinbase_prefix: bytes | None = None,
    pool_tag: bytes = b"",
    extra_outputs: Sequence[TxOut] = (),
    version: int = COINBASE_TX_VERSION,
    sequence: int = SEQUENCE_FINAL,
    lock_time: int = 0,
    witness: bool = False,
    aux_push: bytes = b"",
) -> CoinbaseTemplate:
    """A :class:`CoinbaseTemplate` in the layout the module docstring gives.

    Exactly one of ``height`` (we write the BIP34 push) and ``coinbase_prefix`` (a Template
    Provider's NewTemplate.coinbase_prefix, used verbatim) starts the scriptSig.  ``payouts``
    are ``(script_pubkey, value)`` pairs and come first, then ``extra_outputs`` (parse a TP's
    ``coinbase_tx_outputs`` with :func:`parse_outputs`).  ``witness`` adds the 32-byte zero
    witness reserved value, required whenever an output carries a witness commitment.
    ``aux_push`` is a whole data push (opcode included) placed after the pool tag: the
    merged-mining commitment, which aux chains look for in the scriptSig.
    """
    if (height is None) == (coinbase_prefix is None):
        raise ValueError("give exactly one of height and coinbase_prefix")
    if coinbase_prefix is None:
        assert height is not None
        head = bip34_height_push(height)
    else:
        if not coinbase_prefix:
            raise ValueError("coinbase_prefix is empty: BIP34 needs the block height first in the scriptSig")
        head = coinbase_prefix
    if not 1 <= extranonce_size <= MAX_DIRECT_PUSH_SIZE:
        raise ValueError(f"the extranonce is 1..{MAX_DIRECT_PUSH_SIZE} bytes (one direct push), got {extranonce_size}")
    tag_push = push_data(pool_tag) if pool_tag else b""
    script_sig_size = len(head) + len(tag_push) + len(aux_push) + 1 + extranonce_size
    if script_sig_size > MAX_COINBASE_SCRIPT_SIG_SIZE:
        aux = f" + {len(aux_push)}-byte merged-mining commitment push" if aux_push else ""
        raise ValueError(
            f"coinbase scriptSig would be {script_sig_size} bytes, over the {MAX_COINBASE_SCRIPT_SIG_SIZE}-byte limit: "
            f"{len(head)}-byte height prefix + {len(tag_push)}-byte pool tag push ({len(pool_tag)}-byte tag){aux} "
            f"+ {1 + extranonce_size}-byte extranonce push ({extranonce_size}-byte extranonce)"
        )
    outputs = tuple(TxOut(value, script) for script, value in payouts) + tuple(extra_outputs)
    return CoinbaseTemplate(
        version=version,
        script_sig_prefix=head + tag_push + aux_push + bytes((extranonce_size,)),
        extranonce_size=extranonce_size,
        sequence=sequence,
        outputs=outputs,
        lock_time=lock_time,
        witness=witness,
    )


def parse_outputs(data: bytes, count: int) -> tuple[TxOut, ...]:
    """The ``count`` consensus-serialized outputs that are exactly ``data``.

    NewTemplate.coinbase_tx_outputs is a list of outputs *without* its CompactSize count, which
    travels in coinbase_tx_outputs_count (PROTOCOL.md §7), so Transaction.parse cannot read it.
    """
    if count < 0:
        raise ValueError(f"an output count cannot be negative, got {count}")
    outputs: list[TxOut] = []
    offset = 0
    for index in range(count):
        if offset + 8 > len(data):
            raise ValueError(
                f"truncated: output {index} value needs 8 bytes at offset {offset}, only {len(data) - offset} remain"
            )
        value = int.from_bytes(data[offset : offset + 8], "little", signed=True)
        size, offset = decode_compact_size(data, offset + 8)
        end = offset + size
        if end > len(data):
            raise ValueError(
                f"truncated: output {index} script_pubkey needs {size} bytes at offset {offset}, "
                f"only {len(data) - offset} remain"
            )
        outputs.append(TxOut(value, data[offset:end]))
        offset = end
    if offset != len(data):
        raise ValueError(f"{len(data) - offset} trailing bytes after {count} outputs")
    return tuple(outputs)


def serialize_outputs(outputs: Sequence[TxOut]) -> bytes:
    """``outputs`` without a count: the inverse of :func:`parse_outputs`."""
    return b"".join(out.serialize() for out in outputs)


def split_reward(total: int, shares: Sequence[tuple[bytes, Percent]]) -> tuple[tuple[bytes, int], ...]:
    """``total`` satoshis split by percentage into ``(script_pubkey, value)`` payouts.

    Each value is rounded down; the satoshis rounding leaves over go to the first payout, so
    the values always sum to exactly ``total`` (a coinbase that claims less than it may burns
    the difference for good).  Percentages are taken exactly (floats by their decimal text,
    so 33.3 means 333/1000 of 100) and must sum to exactly 100.
    """
    if isinstance(total, bool) or not isinstance(total, int) or not 0 <= total <= MAX_MONEY:
        raise ValueError(f"the reward is 0..{MAX_MONEY} satoshis, got {total!r}")
    fractions = check_shares(shares)
    values = [total * fraction // 100 for fraction in fractions]
    values[0] += total - sum(values)
    return tuple((script, int(value)) for (script, _), value in zip(shares, values, strict=True))


def check_shares(shares: Sequence[tuple[bytes, Percent]]) -> tuple[Fraction, ...]:
    """The exact percentages of ``shares``, refusing a list that does not split a whole.

    Separate from :func:`split_reward` so that a configuration can be judged before any
    reward exists.
    """
    if not shares:
        raise ValueError("a payout list needs at least one (script_pubkey, percent) entry")
    fractions: list[Fraction] = []
    for index, (script, percent) in enumerate(shares):
        if not isinstance(script, bytes) or not script:
            raise ValueError(f"payout {index}: the script_pubkey must be non-empty bytes")
        fraction = _exact_percent(percent, index)
        if fraction <= 0:
            raise ValueError(f"payout {index}: a percentage must be positive, got {percent}")
        fractions.append(fraction)
    total = sum(fractions, Fraction(0))
    if total != 100:
        raise ValueError(f"payout percentages must sum to 100, they sum to {float(total):g}")
    return tuple(fractions)


def _exact_percent(percent: Percent, index: int) -> Fraction:
    if isinstance(percent, bool) or not isinstance(percent, int | Decimal | Fraction | float):
        raise ValueError(f"payout {index}: a percentage must be a number, got {percent!r}")
    try:
        # A float's decimal text is what the operator wrote; its binary value would make
        # 33.3 + 33.3 + 33.4 miss 100 by a rounding error.
        return Fraction(repr(percent)) if isinstance(percent, float) else Fraction(percent)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"payout {index}: {percent!r} is not a finite percentage") from exc


def _check_amounts(outputs: Sequence[TxOut]) -> None:
    """Core's CheckTransaction amount rules, so a bad payout fails here and not at submitblock."""
    total = 0
    for index, out in enumerate(outputs):
        if not 0 <= out.value <= MAX_MONEY:
            raise ValueError(f"coinbase output {index} value {out.value} is outside 0..{MAX_MONEY}")
        total += out.value
    if total > MAX_MONEY:
        raise ValueError(f"coinbase outputs sum to {total}, over {MAX_MONEY}")
