"""Bitcoin Core's consensus engine, libbitcoinkernel, through py-bitcoinkernel (``pbk``).

This is the only module that touches ``pbk``.  A :class:`Kernel` owns one regtest
``ChainstateManager`` over a data directory (``blocks/`` and ``chainstate/`` as Core lays
them out, so the chain survives a restart) and answers in our own types: raw 32-byte hashes
in internal order, :class:`~sv2proxy.bitcoin.serialize.BlockHeader`, consensus bytes.

Threading: every call is made on the reactor thread, one at a time.  The chainstate manager
is documented as safe to share between threads, but the wrapper's object lifetimes
(``__del__`` destroys kernel objects, callback trampolines live in Python objects) and our
block-checked catcher assume one caller, and regtest blocks validate in well under a
millisecond, so nothing is gained from ``deferToThread`` here.  The kernel runs its
validation-interface callbacks synchronously on the calling thread, which is what lets
:meth:`Kernel.process_block` read the verdict of the block it just handed over.

Lifetimes: views the wrapper hands out (``Chain``, ``BlockTreeEntry``) point into the
chainstate manager, so none is kept beyond a call; :meth:`Kernel.close` destroys the
manager explicitly (flushing the chainstate to disk) instead of waiting for the collector.
"""

from __future__ import annotations

import ctypes
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pbk  # type: ignore[import-untyped]
from pbk.notifications import NotificationInterfaceCallbacks  # type: ignore[import-untyped]
from pbk.script import PrecomputedTransactionData  # type: ignore[import-untyped]
from twisted.logger import Logger

from sv2proxy.bitcoin.serialize import BlockHeader, Transaction
from sv2proxy.errors import ServerError
from sv2proxy.testing.regtest.consensus import Coin

log = Logger()

# Every consensus rule regtest enforces from height 1: P2SH, DERSIG, NULLDUMMY, CLTV, CSV,
# segwit and taproot (GetBlockScriptFlags has no regtest exceptions).
SCRIPT_FLAGS = pbk.ScriptVerificationFlags.ALL


class CheckedMode(enum.Enum):
    """The kernel's ValidationMode for a block it checked."""

    VALID = "valid"
    INVALID = "invalid"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class BlockVerdict:
    """What the kernel said about one submitted block.

    ``processed`` is ProcessNewBlock's own answer (False when CheckBlock or AcceptBlock
    refused it), ``new_block`` whether it had not been stored before, ``mode``/``result`` the
    BlockChecked state the kernel reported for this block (None when it reported none, as
    for a valid block left on a side chain), and ``connected`` whether the block is now in
    the active chain.
    """

    processed: bool
    new_block: bool
    mode: CheckedMode | None
    result: str | None
    connected: bool


class Kernel:
    """One regtest ChainstateManager over ``datadir`` (created if missing)."""

    def __init__(self, datadir: Path) -> None:
        datadir.mkdir(parents=True, exist_ok=True)
        self._checked: dict[bytes, tuple[CheckedMode, str]] = {}
        # The trampolines must outlive the context: the kernel stores raw function pointers.
        self._callbacks = pbk.ValidationInterfaceCallbacks(block_checked=self._block_checked)
        self._notifications = NotificationInterfaceCallbacks(
            fatal_error=self._fatal_error, flush_error=self._flush_error
        )
        options = pbk.ContextOptions()
        options.set_chainparams(pbk.ChainParameters(pbk.ChainType.REGTEST))
        options.set_validation_interface(self._callbacks)
        options.set_notifications(self._notifications)
        context = pbk.Context(options)
        manager_options = pbk.ChainstateManagerOptions(
            context, str(datadir.absolute()), str((datadir / "blocks").absolute())
        )
        try:
            self._manager: pbk.ChainstateManager | None = pbk.ChainstateManager(manager_options)
        except RuntimeError:
            raise ServerError(
                f"libbitcoinkernel could not open the chainstate in {datadir} "
                "(is another node using that data directory?)"
            ) from None

    # -- callbacks (run synchronously inside kernel calls, on the caller's thread) --

    def _block_checked(self, _user_data: object, block: pbk.Block, state: pbk.BlockValidationState) -> None:
        mode = {
            pbk.ValidationMode.VALID: CheckedMode.VALID,
            pbk.ValidationMode.INVALID: CheckedMode.INVALID,
        }.get(state.validation_mode, CheckedMode.ERROR)
        self._checked[bytes(block.block_hash)] = (mode, state.block_validation_result.name)

    @staticmethod
    def _fatal_error(_user_data: object, message: ctypes.c_char_p, length: int) -> None:
        log.critical("libbitcoinkernel fatal error: {message}", message=ctypes.string_at(message, length).decode())

    @staticmethod
    def _flush_error(_user_data: object, message: ctypes.c_char_p, length: int) -> None:
        log.error("libbitcoinkernel flush error: {message}", message=ctypes.string_at(message, length).decode())

    # -- lifetime --

    @property
    def _chainman(self) -> pbk.ChainstateManager:
        if self._manager is None:
            raise ServerError("the kernel is closed")
        return self._manager

    def close(self) -> None:
        """Flush and release the chainstate (and the data directory's lock) now."""
        manager, self._manager = self._manager, None
        if manager is not None:
            manager.__exit__(None, None, None)

    # -- chain queries --

    @property
    def tip_height(self) -> int:
        """Height of the active tip."""
        return int(self._chainman.get_active_chain().height)

    def hash_at(self, height: int) -> bytes:
        """Raw hash of the active-chain block at ``height``."""
        entry = self._chainman.get_active_chain().block_tree_entries[height]
        return bytes(entry.block_hash)

    def header_at(self, height: int) -> BlockHeader:
        """Header of the active-chain block at ``height``."""
        entry = self._chainman.get_active_chain().block_tree_entries[height]
        return BlockHeader.parse(bytes(entry.block_header))

    def _entry(self, block_hash: bytes) -> pbk.BlockTreeEntry | None:
        try:
            return self._chainman.block_tree_entries[pbk.BlockHash(block_hash)]
        except KeyError:
            return None

    def lookup(self, block_hash: bytes) -> tuple[int, BlockHeader, bool] | None:
        """(height, header, in the active chain) of a block in the block index, or None."""
        entry = self._entry(block_hash)
        if entry is None:
            return None
        chain = self._chainman.get_active_chain()
        in_chain = (
            entry.height <= chain.height and bytes(chain.block_tree_entries[entry.height].block_hash) == block_hash
        )
        return int(entry.height), BlockHeader.parse(bytes(entry.block_header)), in_chain

    @property
    def best_header_height(self) -> int:
        """Height of the header with the most work the kernel knows (getblockchaininfo's headers)."""
        return int(self._chainman.best_entry.height)

    def read_block(self, block_hash: bytes) -> bytes | None:
        """The stored block's consensus bytes, None when unknown or its data is missing."""
        entry = self._entry(block_hash)
        if entry is None:
            return None
        try:
            return bytes(self._chainman.blocks[entry])
        except RuntimeError:
            return None

    def spent_coins(self, block_hash: bytes) -> list[list[Coin]] | None:
        """The block's undo data: the coins each non-coinbase transaction spent, in order."""
        entry = self._entry(block_hash)
        if entry is None or entry.height == 0:
            return None
        try:
            undo = self._chainman.block_spent_outputs[entry]
        except RuntimeError:
            return None
        result: list[list[Coin]] = []
        for spent in undo.transactions:
            coins = []
            for coin in spent.coins:
                output = coin.output
                value, script = int(output.amount), bytes(output.script_pubkey)
                coins.append(Coin(value, script, int(coin.confirmation_height), bool(coin.is_coinbase)))
            result.append(coins)
        return result

    # -- validation --

    def process_block(self, raw_block: bytes) -> BlockVerdict:
        """Hand a block to ProcessNewBlock and collect what the kernel said about it."""
        try:
            block = pbk.Block(raw_block)
        except RuntimeError:
            raise ValueError("libbitcoinkernel could not parse the block") from None
        block_hash = bytes(block.block_hash)
        self._checked.clear()
        try:
            new_block = bool(self._chainman.process_block(block))
            processed = True
        except pbk.ProcessBlockException:
            new_block = False
            processed = False
        checked = self._checked.get(block_hash)
        self._checked.clear()
        found = self.lookup(block_hash)
        return BlockVerdict(
            processed=processed,
            new_block=new_block,
            mode=checked[0] if checked else None,
            result=checked[1] if checked else None,
            connected=found is not None and found[2],
        )

    def verify_scripts(self, tx: Transaction, spent: Sequence[Coin]) -> int | None:
        """Index of the first input whose script fails the kernel's verification, None if all pass."""
        kernel_tx = pbk.Transaction(tx.serialize())
        outputs = [pbk.TransactionOutput(pbk.ScriptPubkey(coin.script_pubkey), coin.value) for coin in spent]
        precomputed = PrecomputedTransactionData(kernel_tx, outputs)
        for index, coin in enumerate(spent):
            script = pbk.ScriptPubkey(coin.script_pubkey)
            try:
                ok = script.verify(coin.value, kernel_tx, precomputed, index, SCRIPT_FLAGS)
            except pbk.ScriptVerifyException:
                ok = False
            if not ok:
                return index
        return None
