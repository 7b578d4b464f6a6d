"""Regtest consensus rules written out in Python, to *name* what libbitcoinkernel refuses.

libbitcoinkernel is the authority on every block (see :mod:`.kernel`), but its C API reports
only a class of failure (``BlockValidationResult``: consensus, mutated, invalid header, ...),
while Bitcoin Core's ``submitblock`` answers with the exact reject string ("bad-cb-amount",
"high-hash", ...).  After the kernel refuses a block, :func:`diagnose_block` walks Core's
checks in Core's order (``CheckBlock`` → ``AcceptBlockHeader`` → ``ContextualCheckBlock`` →
``ConnectBlock``, validation.cpp) and returns the first reason that applies.  The same rules,
plus the mempool's, check transactions for ``sendrawtransaction`` (``MemPoolAccept``).

Everything here is pure: chain context comes in through :class:`ChainView`, script
verification through a callable (the kernel's ``btck_script_pubkey_verify``), time as a value.
Constants are regtest's (``CRegTestParams``): every soft fork is active from height 1,
segwit from 0, the subsidy halves every 150 blocks and the proof-of-work limit is nBits
0x207fffff with no retargeting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from sv2proxy.bitcoin.hashing import merkle_root, sha256d
from sv2proxy.bitcoin.script import (
    MINIMUM_WITNESS_COMMITMENT_SIZE,
    OP_1,
    OP_16,
    OP_CHECKSIG,
    OP_PUSHDATA1,
    OP_PUSHDATA2,
    OP_PUSHDATA4,
    OP_RETURN,
    bip34_height_push,
    witness_commitment_index,
)
from sv2proxy.bitcoin.serialize import HEADER_SIZE, BlockHeader, Transaction, encode_compact_size
from sv2proxy.bitcoin.target import target_from_nbits

COIN = 100_000_000
MAX_MONEY = 21_000_000 * COIN
COINBASE_MATURITY = 100
MAX_BLOCK_WEIGHT = 4_000_000
MAX_BLOCK_SIGOPS_COST = 80_000
WITNESS_SCALE_FACTOR = 4
REGTEST_SUBSIDY_HALVING_INTERVAL = 150
REGTEST_POW_LIMIT = 0x7FFFFF << 232  # uint256S("7fffff00..00"), nBits 0x207fffff
REGTEST_POW_LIMIT_BITS = 0x207FFFFF
MAX_FUTURE_BLOCK_TIME = 2 * 60 * 60
MEDIAN_TIME_SPAN = 11
LOCKTIME_THRESHOLD = 500_000_000
SEQUENCE_FINAL = 0xFFFF_FFFF
SEQUENCE_LOCKTIME_DISABLE_FLAG = 1 << 31
SEQUENCE_LOCKTIME_TYPE_FLAG = 1 << 22
SEQUENCE_LOCKTIME_MASK = 0x0000_FFFF
SEQUENCE_LOCKTIME_GRANULARITY = 9
MAX_PUBKEYS_PER_MULTISIG = 20
OP_CHECKSIGVERIFY = 0xAD
OP_CHECKMULTISIG = 0xAE
OP_CHECKMULTISIGVERIFY = 0xAF
MAX_SCRIPT_SIZE = 10_000

OutPoint = tuple[bytes, int]  # (txid raw, output index)


@dataclass(frozen=True, slots=True)
class Coin:
    """An unspent output as the UTXO set holds it (Core's ``Coin``)."""

    value: int
    script_pubkey: bytes
    height: int
    is_coinbase: bool


class ChainView(Protocol):
    """What the checks need to know about the chain a block or transaction builds on."""

    def height_of(self, block_hash: bytes) -> int | None:
        """Height of a block known to the node, None when unknown."""

    def median_time_past(self, block_hash: bytes) -> int:
        """Median of the last 11 block times ending at ``block_hash`` (a known block)."""

    def median_time_past_at(self, height: int) -> int:
        """The same for the active-chain block at ``height``."""

    def bits_of(self, block_hash: bytes) -> int:
        """nBits of a known block."""

    def is_known_invalid(self, block_hash: bytes) -> bool:
        """Whether the block was found invalid before (Core's BLOCK_FAILED_MASK)."""

    @property
    def tip_hash(self) -> bytes:
        """The active tip, whose UTXO set :meth:`coin` reads."""

    def coin(self, outpoint: OutPoint) -> Coin | None:
        """The unspent output at the active tip, None when missing or spent."""


# A script check: (transaction, spent coins in input order) -> index of the first failing input.
ScriptChecker = Callable[[Transaction, Sequence[Coin]], int | None]


class Rejected(Exception):
    """A block or transaction broke a rule; ``reason`` is Core's reject string."""

    def __init__(self, reason: str, debug: str = "") -> None:
        super().__init__(f"{reason}, {debug}" if debug else reason)
        self.reason = reason
        self.debug = debug


def block_subsidy(height: int) -> int:
    """GetBlockSubsidy on regtest: 50 BTC halved every 150 blocks, nothing after 64 halvings."""
    halvings = height // REGTEST_SUBSIDY_HALVING_INTERVAL
    return 0 if halvings >= 64 else (50 * COIN) >> halvings


def money_range(value: int) -> bool:
    """Core's MoneyRange: 0..21M BTC in satoshis."""
    return 0 <= value <= MAX_MONEY


def format_money(value: int) -> str:
    """Core's FormatMoney: at least two decimals, trailing zeros trimmed (``1.00``, ``0.0001``)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), COIN)
    text = f"{frac:08d}".rstrip("0")
    return f"{sign}{whole}.{text.ljust(2, '0')}"


def median_time(times: Sequence[int]) -> int:
    """The median Core's GetMedianTimePast takes: the element at size/2 of the sorted times."""
    ordered = sorted(times)
    return ordered[len(ordered) // 2]


def block_weight(header: BlockHeader, transactions: Sequence[Transaction]) -> int:
    """BIP141 block weight: stripped size * 3 + total size."""
    count = len(encode_compact_size(len(transactions)))
    stripped = HEADER_SIZE + count + sum(len(tx.serialize(with_witness=False)) for tx in transactions)
    total = HEADER_SIZE + count + sum(len(tx.serialize()) for tx in transactions)
    return stripped * (WITNESS_SCALE_FACTOR - 1) + total


# -- scripts ----------------------------------------------------------------------------------


def script_ops(script: bytes) -> Iterator[tuple[int, bytes]]:
    """(opcode, pushed data) for each operation, stopping at a malformed push (Core's GetOp)."""
    pc = 0
    end = len(script)
    while pc < end:
        opcode = script[pc]
        pc += 1
        if opcode > OP_PUSHDATA4:
            yield opcode, b""
            continue
        if opcode < OP_PUSHDATA1:
            size = opcode
        else:
            width = {OP_PUSHDATA1: 1, OP_PUSHDATA2: 2, OP_PUSHDATA4: 4}[opcode]
            if end - pc < width:
                raise ValueError("push length runs past the end of the script")
            size = int.from_bytes(script[pc : pc + width], "little")
            pc += width
        if end - pc < size:
            raise ValueError("push runs past the end of the script")
        yield opcode, script[pc : pc + size]
        pc += size


def is_push_only(script: bytes) -> bool:
    """Core's IsPushOnly: every operation a push or OP_1NEGATE..OP_16 (OP_RESERVED excluded)."""
    try:
        return all(op <= OP_16 and op != 0x50 for op, _ in script_ops(script))
    except ValueError:
        return False


def last_push(script: bytes) -> bytes | None:
    """The data the last operation of a push-only script pushes, None when not push-only."""
    data = b""
    try:
        for op, pushed in script_ops(script):
            if op > OP_16:
                return None
            data = pushed
    except ValueError:
        return None
    return data


def sigop_count(script: bytes, accurate: bool) -> int:
    """CScript::GetSigOpCount: CHECKSIG counts 1, CHECKMULTISIG its key count or 20."""
    count = 0
    last = 0xFF
    try:
        for op, _ in script_ops(script):
            if op in (OP_CHECKSIG, OP_CHECKSIGVERIFY):
                count += 1
            elif op in (OP_CHECKMULTISIG, OP_CHECKMULTISIGVERIFY):
                count += last - OP_1 + 1 if accurate and OP_1 <= last <= OP_16 else MAX_PUBKEYS_PER_MULTISIG
            last = op
    except ValueError:
        pass  # Core stops counting at the first malformed push
    return count


def is_p2sh(script: bytes) -> bool:
    """OP_HASH160 <20 bytes> OP_EQUAL, byte for byte (IsPayToScriptHash)."""
    return len(script) == 23 and script[0] == 0xA9 and script[1] == 0x14 and script[22] == 0x87


def witness_program(script: bytes) -> tuple[int, bytes] | None:
    """(version, program) when ``script`` is a witness program (IsWitnessProgram), else None."""
    if not 4 <= len(script) <= 42:
        return None
    if script[0] != 0 and not OP_1 <= script[0] <= OP_16:
        return None
    if script[1] + 2 != len(script):
        return None
    return (0 if script[0] == 0 else script[0] - OP_1 + 1), script[2:]


def is_unspendable(script: bytes) -> bool:
    """OP_RETURN outputs and oversized scripts never enter the UTXO set (IsUnspendable)."""
    return (bool(script) and script[0] == OP_RETURN) or len(script) > MAX_SCRIPT_SIZE


def _witness_sigops(version: int, program: bytes, witness: Sequence[bytes]) -> int:
    if version == 0 and len(program) == 20:
        return 1
    if version == 0 and len(program) == 32 and witness:
        return sigop_count(witness[-1], accurate=True)
    return 0


def transaction_sigop_cost(tx: Transaction, spent: Sequence[Coin] | None) -> int:
    """GetTransactionSigOpCost with P2SH and witness counting (both active on regtest).

    ``spent`` are the coins the inputs spend; a coinbase (or ``None``) counts legacy sigops only.
    """
    legacy = sum(sigop_count(txin.script_sig, False) for txin in tx.inputs)
    legacy += sum(sigop_count(txout.script_pubkey, False) for txout in tx.outputs)
    cost = legacy * WITNESS_SCALE_FACTOR
    if tx.is_coinbase or spent is None:
        return cost
    for txin, coin in zip(tx.inputs, spent, strict=True):
        spk = coin.script_pubkey
        if is_p2sh(spk):
            redeem = last_push(txin.script_sig)
            if redeem is not None:
                cost += sigop_count(redeem, accurate=True) * WITNESS_SCALE_FACTOR
        program = witness_program(spk)
        if program is None and is_p2sh(spk):
            redeem = last_push(txin.script_sig)
            program = witness_program(redeem) if redeem else None
        if program is not None:
            cost += _witness_sigops(program[0], program[1], txin.witness)
    return cost


# -- transactions -----------------------------------------------------------------------------


def check_transaction(tx: Transaction) -> None:
    """Core's context-free CheckTransaction; raises :class:`Rejected`."""
    if not tx.inputs:
        raise Rejected("bad-txns-vin-empty")
    if not tx.outputs:
        raise Rejected("bad-txns-vout-empty")
    if len(tx.serialize(with_witness=False)) * WITNESS_SCALE_FACTOR > MAX_BLOCK_WEIGHT:
        raise Rejected("bad-txns-oversize")
    total = 0
    for txout in tx.outputs:
        if txout.value < 0:
            raise Rejected("bad-txns-vout-negative")
        if txout.value > MAX_MONEY:
            raise Rejected("bad-txns-vout-toolarge")
        total += txout.value
        if not money_range(total):
            raise Rejected("bad-txns-txouttotal-toolarge")
    outpoints = {(txin.prev_txid, txin.prev_index) for txin in tx.inputs}
    if len(outpoints) != len(tx.inputs):
        raise Rejected("bad-txns-inputs-duplicate")
    if tx.is_coinbase:
        if not 2 <= len(tx.inputs[0].script_sig) <= 100:
            raise Rejected("bad-cb-length")
    elif any(txin.is_null_prevout for txin in tx.inputs):
        raise Rejected("bad-txns-prevout-null")


def is_final(tx: Transaction, height: int, time: int) -> bool:
    """IsFinalTx: lock time 0, or below the height/time it is compared with, or all inputs final."""
    if tx.lock_time == 0:
        return True
    cutoff = height if tx.lock_time < LOCKTIME_THRESHOLD else time
    if tx.lock_time < cutoff:
        return True
    return all(txin.sequence == SEQUENCE_FINAL for txin in tx.inputs)


def sequence_locks_pass(
    tx: Transaction, spent: Sequence[Coin], height: int, prev_mtp: int, mtp_at: Callable[[int], int]
) -> bool:
    """BIP68 relative lock-times (CalculateSequenceLocks + EvaluateSequenceLocks).

    ``height`` is the height of the block the transaction goes in, ``prev_mtp`` the median
    time past of its parent; ``mtp_at(h)`` the median time past of the active block at ``h``.
    """
    if tx.version < 2:
        return True
    min_height = -1
    min_time = -1
    for txin, coin in zip(tx.inputs, spent, strict=True):
        if txin.sequence & SEQUENCE_LOCKTIME_DISABLE_FLAG:
            continue
        value = txin.sequence & SEQUENCE_LOCKTIME_MASK
        if txin.sequence & SEQUENCE_LOCKTIME_TYPE_FLAG:
            coin_time = mtp_at(max(coin.height - 1, 0))
            min_time = max(min_time, coin_time + (value << SEQUENCE_LOCKTIME_GRANULARITY) - 1)
        else:
            min_height = max(min_height, coin.height + value - 1)
    return min_height < height and min_time < prev_mtp


@dataclass(frozen=True, slots=True)
class InputCheck:
    """What CheckTxInputs found: the fee and the coins spent, in input order."""

    fee: int
    spent: tuple[Coin, ...]


def check_inputs(tx: Transaction, coins: Sequence[Coin | None], spend_height: int) -> InputCheck:
    """Core's Consensus::CheckTxInputs: every input exists, is mature, and values add up."""
    if any(coin is None for coin in coins):
        raise Rejected("bad-txns-inputs-missingorspent", "inputs missing/spent")
    spent = tuple(coin for coin in coins if coin is not None)
    value_in = 0
    for coin in spent:
        if coin.is_coinbase and spend_height - coin.height < COINBASE_MATURITY:
            raise Rejected(
                "bad-txns-premature-spend-of-coinbase",
                f"tried to spend coinbase at depth {spend_height - coin.height}",
            )
        value_in += coin.value
        if not money_range(coin.value) or not money_range(value_in):
            raise Rejected("bad-txns-inputvalues-outofrange")
    value_out = sum(txout.value for txout in tx.outputs)
    if value_in < value_out:
        raise Rejected(
            "bad-txns-in-belowout", f"value in ({format_money(value_in)}) < value out ({format_money(value_out)})"
        )
    fee = value_in - value_out
    if not money_range(fee):
        raise Rejected("bad-txns-fee-outofrange")
    return InputCheck(fee, spent)


# -- blocks -----------------------------------------------------------------------------------


def merkle_root_and_mutation(leaves: Sequence[bytes]) -> tuple[bytes, bool]:
    """ComputeMerkleRoot with its ``mutated`` flag: two equal siblings anywhere (CVE-2012-2459)."""
    level = list(leaves)
    mutated = False
    while len(level) > 1:
        mutated = mutated or any(level[i] == level[i + 1] for i in range(0, len(level) - 1, 2))
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0], mutated


def check_proof_of_work(block_hash: bytes, bits: int) -> bool:
    """CheckProofOfWork against regtest's limit; a malformed nBits fails as Core's does."""
    try:
        target = target_from_nbits(bits)
    except ValueError:
        return False
    if target == 0 or target > REGTEST_POW_LIMIT:
        return False
    return int.from_bytes(block_hash, "little") <= target


def check_block(header: BlockHeader, transactions: Sequence[Transaction]) -> None:
    """Core's context-free CheckBlock (header, merkle root, sizes, coinbase, transactions, sigops)."""
    if not check_proof_of_work(header.hash, header.bits):
        raise Rejected("high-hash", "proof of work failed")
    if transactions:
        root, mutated = merkle_root_and_mutation([tx.txid for tx in transactions])
        if root != header.merkle_root:
            raise Rejected("bad-txnmrklroot", "hashMerkleRoot mismatch")
        if mutated:
            raise Rejected("bad-txns-duplicate", "duplicate transaction")
    stripped = HEADER_SIZE + len(encode_compact_size(len(transactions)))
    stripped += sum(len(tx.serialize(with_witness=False)) for tx in transactions)
    if (
        not transactions
        or len(transactions) * WITNESS_SCALE_FACTOR > MAX_BLOCK_WEIGHT
        or stripped * WITNESS_SCALE_FACTOR > MAX_BLOCK_WEIGHT
    ):
        raise Rejected("bad-blk-length", "size limits failed")
    if not transactions[0].is_coinbase:
        raise Rejected("bad-cb-missing", "first tx is not coinbase")
    if any(tx.is_coinbase for tx in transactions[1:]):
        raise Rejected("bad-cb-multiple", "more than one coinbase")
    for tx in transactions:
        check_transaction(tx)
    legacy = sum(transaction_sigop_cost(tx, None) for tx in transactions)
    if legacy > MAX_BLOCK_SIGOPS_COST:
        raise Rejected("bad-blk-sigops", "out-of-bounds SigOpCount")


def check_block_header_context(header: BlockHeader, view: ChainView, now: int) -> int:
    """AcceptBlockHeader's lookups and ContextualCheckBlockHeader; returns the block's height."""
    prev_height = view.height_of(header.prev_hash)
    if prev_height is None:
        raise Rejected("prev-blk-not-found")
    if view.is_known_invalid(header.prev_hash):
        raise Rejected("bad-prevblk")
    # Regtest never retargets and allows min-difficulty blocks, so both rules give the parent's bits.
    if header.bits != view.bits_of(header.prev_hash):
        raise Rejected("bad-diffbits", "incorrect proof of work")
    if header.time <= view.median_time_past(header.prev_hash):
        raise Rejected("time-too-old", "block's timestamp is too early")
    if header.time > now + MAX_FUTURE_BLOCK_TIME:
        raise Rejected("time-too-new", "block timestamp too far in the future")
    height = prev_height + 1
    signed_version = header.version - (1 << 32) if header.version & 0x8000_0000 else header.version
    if signed_version < 4 and height >= 1:  # BIP34/66/65 are active from height 1 on regtest
        raise Rejected(f"bad-version(0x{header.version:08x})", "rejected nVersion block")
    return height


def check_witness_commitment(transactions: Sequence[Transaction]) -> None:
    """CheckWitnessMalleation with segwit active: the commitment, or no witness data at all."""
    coinbase = transactions[0]
    index = witness_commitment_index([txout.script_pubkey for txout in coinbase.outputs])
    if index is not None:
        stack = coinbase.inputs[0].witness
        if len(stack) != 1 or len(stack[0]) != 32:
            raise Rejected("bad-witness-nonce-size", "invalid witness reserved value size")
        root = merkle_root([bytes(32), *(tx.wtxid for tx in transactions[1:])])
        commitment = coinbase.outputs[index].script_pubkey[6:MINIMUM_WITNESS_COMMITMENT_SIZE]
        if sha256d(root + stack[0]) != commitment:
            raise Rejected("bad-witness-merkle-match", "witness merkle commitment mismatch")
        return
    if any(tx.has_witness for tx in transactions):
        raise Rejected("unexpected-witness", "unexpected witness data found")


def check_block_context(
    header: BlockHeader, transactions: Sequence[Transaction], height: int, prev_mtp: int
) -> None:
    """ContextualCheckBlock: finality at the parent's MTP (BIP113), BIP34, witness, weight."""
    for tx in transactions:
        if not is_final(tx, height, prev_mtp):
            raise Rejected("bad-txns-nonfinal", "non-final transaction")
    expected = bip34_height_push(height)
    if not transactions[0].inputs[0].script_sig.startswith(expected):
        raise Rejected("bad-cb-height", "block height mismatch in coinbase")
    check_witness_commitment(transactions)
    if block_weight(header, transactions) > MAX_BLOCK_WEIGHT:
        raise Rejected("bad-blk-weight", "weight limit failed")


def connect_block(
    transactions: Sequence[Transaction],
    height: int,
    prev_mtp: int,
    view: ChainView,
    check_scripts: ScriptChecker,
) -> int:
    """ConnectBlock's checks against the UTXO set at the parent (which must be the tip).

    Returns the total fees.  Outputs created earlier in the block are spendable later in it.
    """
    created: dict[OutPoint, Coin] = {}
    spent_here: set[OutPoint] = set()
    fees = 0
    sigops = 0
    for tx in transactions:
        txid = tx.txid
        if not tx.is_coinbase:
            coins: list[Coin | None] = []
            for txin in tx.inputs:
                outpoint = (txin.prev_txid, txin.prev_index)
                coin = None if outpoint in spent_here else created.get(outpoint) or view.coin(outpoint)
                coins.append(coin)
            checked = check_inputs(tx, coins, height)
            fees += checked.fee
            if not money_range(fees):
                raise Rejected("bad-txns-accumulated-fee-outofrange")
            if not sequence_locks_pass(tx, checked.spent, height, prev_mtp, view.median_time_past_at):
                raise Rejected("bad-txns-nonfinal", "contains a non-BIP68-final transaction")
            sigops += transaction_sigop_cost(tx, checked.spent)
            if sigops > MAX_BLOCK_SIGOPS_COST:
                raise Rejected("bad-blk-sigops", "too many sigops")
            failing = check_scripts(tx, checked.spent)
            if failing is not None:
                raise Rejected(f"block-script-verify-flag-failed (input {failing} failed script verification)")
            for txin in tx.inputs:
                spent_here.add((txin.prev_txid, txin.prev_index))
        else:
            sigops += transaction_sigop_cost(tx, None)
            if sigops > MAX_BLOCK_SIGOPS_COST:
                raise Rejected("bad-blk-sigops", "too many sigops")
        for index, txout in enumerate(tx.outputs):
            created[(txid, index)] = Coin(txout.value, txout.script_pubkey, height, tx.is_coinbase)
    reward = fees + block_subsidy(height)
    paid = sum(txout.value for txout in transactions[0].outputs)
    if paid > reward:
        raise Rejected("bad-cb-amount", f"coinbase pays too much (actual={paid} vs limit={reward})")
    return fees


_HEADER_REASONS = frozenset({"high-hash", "bad-diffbits", "time-too-old"})
_MUTATED_REASONS = frozenset(
    {
        "bad-txnmrklroot",
        "bad-txns-duplicate",
        "bad-witness-nonce-size",
        "bad-witness-merkle-match",
        "unexpected-witness",
    }
)


def reason_class(reason: str) -> str:
    """The kernel's BlockValidationResult name Core files ``reason`` under.

    A named reason is only reported when the kernel's class agrees with it: a mismatch
    means our rendition of the rules picked a different failure than the kernel did.
    """
    if reason in _HEADER_REASONS or reason.startswith("bad-version("):
        return "INVALID_HEADER"
    if reason in _MUTATED_REASONS:
        return "MUTATED"
    if reason == "prev-blk-not-found":
        return "MISSING_PREV"
    if reason == "bad-prevblk":
        return "INVALID_PREV"
    if reason == "time-too-new":
        return "TIME_FUTURE"
    return "CONSENSUS"


def diagnose_block(
    header: BlockHeader,
    transactions: Sequence[Transaction],
    view: ChainView,
    now: int,
    check_scripts: ScriptChecker,
) -> str | None:
    """The reject reason Core would give for this block, or None when none of our checks fails.

    Contextual checks need a known parent; connection checks run only when the parent is the
    active tip (the UTXO set we hold is the tip's).
    """
    try:
        check_block(header, transactions)
        height = check_block_header_context(header, view, now)
        prev_mtp = view.median_time_past(header.prev_hash)
        check_block_context(header, transactions, height, prev_mtp)
        if header.prev_hash == view.tip_hash:
            connect_block(transactions, height, prev_mtp, view, check_scripts)
    except Rejected as rejected:
        return rejected.reason
    return None
