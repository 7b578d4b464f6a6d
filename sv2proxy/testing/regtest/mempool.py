"""The regtest node's mempool: Core's MemPoolAccept consensus checks, no relay policy.

A transaction is accepted when it passes CheckTransaction, is final at the next block,
spends outputs that exist (in the UTXO set at the tip or in the mempool), respects coinbase
maturity and BIP68, does not create value, and every input's script passes libbitcoinkernel's
script verification (through the injected checker) with all of regtest's consensus flags.

What is deliberately left out, as with ``-acceptnonstdtxn=1``: standardness (output types,
dust, ``tx-size-small``), the minimum relay fee, package limits and replacement (BIP125 /
full-RBF): a transaction spending an output another mempool transaction spends is refused
with ``txn-mempool-conflict``.  Selection for a template keeps arrival order, which is also a
topological order, rather than sorting by ancestor fee rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sv2proxy.bitcoin.serialize import Transaction
from sv2proxy.testing.regtest.chainstate import ChainState
from sv2proxy.testing.regtest.consensus import (
    Coin,
    OutPoint,
    Rejected,
    ScriptChecker,
    check_inputs,
    check_transaction,
    is_final,
    sequence_locks_pass,
    transaction_sigop_cost,
)

MAX_STANDARD_TX_SIGOPS_COST = 16_000
MEMPOOL_HEIGHT = 0x7FFF_FFFF  # Core's height for coins created by mempool transactions


@dataclass(frozen=True, slots=True)
class MempoolEntry:
    """One accepted transaction and what the template and getrawmempool report about it."""

    tx: Transaction
    txid: bytes
    wtxid: bytes
    fee: int
    weight: int
    vsize: int
    size: int
    sigop_cost: int
    time: int
    height: int
    parents: frozenset[bytes]


class TxRejected(Exception):
    """A transaction the mempool refuses; ``message`` is Core's state string.

    ``missing_inputs`` marks Core's TX_MISSING_INPUTS (RPC code -25 rather than -26);
    ``already_in_mempool`` a transaction with this very wtxid already accepted.
    """

    def __init__(self, message: str, *, missing_inputs: bool = False, already_in_mempool: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.missing_inputs = missing_inputs
        self.already_in_mempool = already_in_mempool


class Mempool:
    """Transactions waiting for a block, checked against ``chain``'s tip."""

    def __init__(self, chain: ChainState, check_scripts: ScriptChecker) -> None:
        self._chain = chain
        self._check_scripts = check_scripts
        self._entries: dict[bytes, MempoolEntry] = {}
        self._spenders: dict[OutPoint, bytes] = {}
        self.updates = 0  # Core's nTransactionsUpdated: bumps on every change, longpoll watches it

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, txid: object) -> bool:
        return txid in self._entries

    def __iter__(self) -> Iterator[MempoolEntry]:
        return iter(list(self._entries.values()))

    def get(self, txid: bytes) -> MempoolEntry | None:
        """The entry for ``txid``, None when absent."""
        return self._entries.get(txid)

    def check(self, tx: Transaction, now: int, entry_time: int | None = None) -> MempoolEntry:
        """The entry ``tx`` would become, or :class:`TxRejected` with Core's reason."""
        try:
            check_transaction(tx)
        except Rejected as rejected:
            raise TxRejected(str(rejected)) from None
        if tx.is_coinbase:
            raise TxRejected("coinbase")
        chain = self._chain
        next_height = chain.height + 1
        tip_mtp = chain.median_time_past_at(chain.height)
        if not is_final(tx, next_height, tip_mtp):
            raise TxRejected("non-final")
        txid = tx.txid
        existing = self._entries.get(txid)
        if existing is not None:
            if existing.wtxid == tx.wtxid:
                raise TxRejected("txn-already-in-mempool", already_in_mempool=True)
            raise TxRejected("txn-same-nonwitness-data-in-mempool")
        coins: list[Coin | None] = []
        parents: set[bytes] = set()
        for txin in tx.inputs:
            outpoint = (txin.prev_txid, txin.prev_index)
            if outpoint in self._spenders:
                raise TxRejected("txn-mempool-conflict")
            coin = chain.coin(outpoint)
            if coin is None:
                parent = self._entries.get(txin.prev_txid)
                if parent is not None and txin.prev_index < len(parent.tx.outputs):
                    txout = parent.tx.outputs[txin.prev_index]
                    coin = Coin(txout.value, txout.script_pubkey, MEMPOOL_HEIGHT, False)
                    parents.add(txin.prev_txid)
            if coin is None:
                raise TxRejected("bad-txns-inputs-missingorspent", missing_inputs=True)
            coins.append(coin)
        # BIP68 counts an unconfirmed parent's coin as created in the next block.
        lock_coins = [
            Coin(c.value, c.script_pubkey, next_height, c.is_coinbase) if c and c.height == MEMPOOL_HEIGHT else c
            for c in coins
        ]
        if not sequence_locks_pass(
            tx, [c for c in lock_coins if c is not None], next_height, tip_mtp, chain.median_time_past_at
        ):
            raise TxRejected("non-BIP68-final")
        try:
            checked = check_inputs(tx, coins, next_height)
        except Rejected as rejected:
            raise TxRejected(str(rejected)) from None
        sigop_cost = transaction_sigop_cost(tx, checked.spent)
        if sigop_cost > MAX_STANDARD_TX_SIGOPS_COST:
            raise TxRejected(f"bad-txns-too-many-sigops, {sigop_cost}")
        failing = self._check_scripts(tx, checked.spent)
        if failing is not None:
            raise TxRejected(f"mempool-script-verify-flag-failed (input {failing} failed script verification)")
        return MempoolEntry(
            tx=tx,
            txid=txid,
            wtxid=tx.wtxid,
            fee=checked.fee,
            weight=tx.weight,
            vsize=tx.vsize,
            size=len(tx.serialize()),
            sigop_cost=sigop_cost,
            time=now if entry_time is None else entry_time,
            height=chain.height,
            parents=frozenset(parents),
        )

    def add(self, entry: MempoolEntry) -> None:
        """Insert an entry :meth:`check` produced against the current tip."""
        self._entries[entry.txid] = entry
        for txin in entry.tx.inputs:
            self._spenders[(txin.prev_txid, txin.prev_index)] = entry.txid
        self.updates += 1

    def revalidate(self, now: int) -> None:
        """After the tip moved: keep, in arrival order, what is still valid on the new tip.

        This drops what a block confirmed (its inputs are spent now), what a block conflicts
        with, and the descendants of both, as Core's removeForBlock does; after a
        reorganisation it also drops what the shorter chain no longer supports.
        """
        old = list(self._entries.values())
        self._entries.clear()
        self._spenders.clear()
        for entry in old:
            try:
                self.add(self.check(entry.tx, now, entry_time=entry.time))
            except TxRejected:
                continue
        self.updates += 1

    def children(self, txid: bytes) -> list[bytes]:
        """Mempool transactions that spend an output of ``txid``."""
        return [entry.txid for entry in self._entries.values() if txid in entry.parents]

    def ancestors(self, txid: bytes) -> set[bytes]:
        """Every in-mempool ancestor of ``txid`` (not itself)."""
        found: set[bytes] = set()
        stack = list(self._entries[txid].parents)
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(self._entries[current].parents)
        return found

    def descendants(self, txid: bytes) -> set[bytes]:
        """Every in-mempool descendant of ``txid`` (not itself)."""
        found: set[bytes] = set()
        stack = self.children(txid)
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(self.children(current))
        return found

    def select(self, max_weight: int, max_sigop_cost: int) -> list[MempoolEntry]:
        """Entries for a block, in arrival order, each after its parents, within the limits."""
        chosen: list[MempoolEntry] = []
        included: set[bytes] = set()
        weight = 0
        sigops = 0
        for entry in self._entries.values():
            if not entry.parents <= included:
                continue
            if weight + entry.weight > max_weight or sigops + entry.sigop_cost > max_sigop_cost:
                continue
            chosen.append(entry)
            included.add(entry.txid)
            weight += entry.weight
            sigops += entry.sigop_cost
        return chosen
