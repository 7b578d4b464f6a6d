"""RegtestNode: a regtest Bitcoin node whose consensus is libbitcoinkernel, with Core's RPC.

The pieces, each in its own module: :mod:`.kernel` (the ChainstateManager: it alone decides
whether a block is valid and connects it), :mod:`.chainstate` (our mirror of the active chain
and its UTXO set, for the mempool and fees), :mod:`.mempool`, :mod:`.consensus` (Core's rules
in Python, to name a reject reason the kernel only classifies), :mod:`.rpc` (the HTTP
JSON-RPC server) and :mod:`.methods` (the RPC methods).

The data directory is laid out as Core's ``-regtest -datadir=DIR``: ``DIR/regtest/blocks``,
``DIR/regtest/chainstate`` and, while the node runs with cookie auth, ``DIR/regtest/.cookie``.
Stopping and starting again on the same directory resumes the chain; the mempool is not
persisted (Core would reload ``mempool.dat``), so a restart empties it.

All work runs on the reactor thread (see :mod:`.kernel` for why that is safe and enough).
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IReactorTime
from twisted.logger import Logger
from twisted.web import server

from sv2proxy.bitcoin.hashing import display_hex, merkle_root
from sv2proxy.bitcoin.script import (
    OP_0,
    WITNESS_RESERVED_VALUE,
    bip34_height_push,
    witness_commitment,
    witness_commitment_index,
    witness_commitment_script,
)
from sv2proxy.bitcoin.serialize import BlockHeader, Transaction, TxIn, TxOut, parse_block, serialize_block
from sv2proxy.bitcoin.target import target_from_nbits
from sv2proxy.errors import ServerError
from sv2proxy.testing.connections import ClosableConnections
from sv2proxy.testing.regtest.chainstate import ChainState
from sv2proxy.testing.regtest.consensus import (
    MAX_BLOCK_SIGOPS_COST,
    MAX_BLOCK_WEIGHT,
    Coin,
    block_subsidy,
    diagnose_block,
    is_unspendable,
    reason_class,
)
from sv2proxy.testing.regtest.kernel import CheckedMode, Kernel
from sv2proxy.testing.regtest.mempool import Mempool, MempoolEntry, TxRejected
from sv2proxy.testing.regtest.methods import build_methods
from sv2proxy.testing.regtest.rpc import (
    RPC_DESERIALIZATION_ERROR,
    RPC_VERIFY_ALREADY_IN_UTXO_SET,
    RPC_VERIFY_ERROR,
    RPC_VERIFY_REJECTED,
    JSONRPCResource,
    RPCError,
)

log = Logger()

RPC_INTERNAL_ERROR = -32603
BLOCK_VERSION = 0x2000_0000  # BIP9 top bits, no deployment signalled
COINBASE_RESERVED_WEIGHT = 8_000  # Core's DEFAULT_BLOCK_RESERVED_WEIGHT
COINBASE_RESERVED_SIGOPS = 400
MAX_SEQUENCE_NONFINAL = 0xFFFF_FFFE
DEFAULT_MAX_TRIES = 1_000_000
# What the kernel's result class says when our own checks found no named rule.
_FALLBACK_REASONS = {
    "MISSING_PREV": "prev-blk-not-found",
    "INVALID_PREV": "bad-prevblk",
    "TIME_FUTURE": "time-too-new",
    "CACHED_INVALID": "duplicate-invalid",
    "HEADER_LOW_WORK": "too-little-chainwork",
}


@dataclass(frozen=True, slots=True)
class TemplateTransaction:
    """One mempool transaction as a block template carries it."""

    entry: MempoolEntry
    depends: tuple[int, ...]  # 1-based positions in the template, as getblocktemplate says


@dataclass(frozen=True, slots=True)
class BlockTemplate:
    """What CreateNewBlock decides for the next block; :mod:`.methods` turns it into JSON."""

    height: int
    previous_hash: bytes
    version: int
    bits: int
    mintime: int
    curtime: int
    coinbase_value: int
    transactions: tuple[TemplateTransaction, ...]
    witness_commitment_script: bytes
    longpollid: str


class RegtestNode:
    """A regtest node: libbitcoinkernel for consensus, Bitcoin Core's JSON-RPC around it.

    ``datadir`` holds the chain (``datadir/regtest``); ``rpc_endpoint`` is a Twisted server
    endpoint string.  With ``rpcuser``/``rpcpassword`` those are the only credentials (as in
    Core, no cookie is written); without them a fresh ``__cookie__:<hex>`` is written to
    :attr:`cookie_path` on every start and removed on stop.  A ``getblocktemplate`` long
    poll is answered when the tip or the mempool changes, or after ``longpoll_timeout``
    seconds with the unchanged template.
    """

    def __init__(
        self,
        datadir: Path,
        reactor: IReactorTime,
        *,
        rpc_endpoint: str = "tcp:0:interface=127.0.0.1",
        rpcuser: str | None = None,
        rpcpassword: str | None = None,
        longpoll_timeout: float = 60.0,
    ) -> None:
        if rpcpassword is not None and not rpcpassword:
            raise ValueError("rpcpassword must not be empty (leave it out for cookie authentication)")
        if rpcuser is not None and rpcpassword is None:
            raise ValueError("rpcuser needs rpcpassword")
        self._datadir = Path(datadir)
        self._netdir = self._datadir / "regtest"
        self._reactor = reactor
        self._rpc_endpoint = rpc_endpoint
        self._userpass = None if rpcpassword is None else f"{rpcuser or ''}:{rpcpassword}"
        self._longpoll_timeout = longpoll_timeout
        self._cookie: str | None = None
        self._kernel: Kernel | None = None
        self._chain: ChainState | None = None
        self._mempool: Mempool | None = None
        self._port: IListeningPort | None = None
        self._connections: ClosableConnections | None = None
        self._resource: JSONRPCResource | None = None
        self._waiters: list[tuple[Deferred[None], IDelayedCall]] = []
        self._started_at = 0.0

    # -- lifetime --

    async def start(self) -> None:
        """Open the chainstate, replay it into the UTXO mirror, write the cookie, listen."""
        if self._kernel is not None:
            raise ServerError("the regtest node is already running")
        kernel = Kernel(self._netdir)
        self._kernel = kernel
        self._chain = ChainState(kernel.lookup)
        self._mempool = Mempool(self._chain, self._check_scripts)
        self._started_at = self._reactor.seconds()
        try:
            self._sync_chain()
            if self._userpass is None:
                self._write_cookie()
            self._resource = JSONRPCResource(build_methods(self), self._credentials, self._reactor)
            site = server.Site(self._resource)
            # One access-log line per RPC call would drown the daemon's own log (the tip poll
            # alone asks every second).
            site.log = lambda request: None  # type: ignore[method-assign]
            site.noisy = False
            site.displayTracebacks = False
            site.noisy = False
            self._connections = ClosableConnections(site)
            self._connections.noisy = False
            self._port = await serverFromString(self._reactor, self._rpc_endpoint).listen(self._connections)
        except BaseException:
            self._remove_cookie()
            kernel.close()
            self._kernel = None
            raise
        log.info(
            "regtest node at height {height} serving RPC on {url}",
            height=self._chain.height,
            url=self.rpc_url,
        )

    async def stop(self) -> None:
        """Stop serving RPC (dropping open connections and long polls), flush the chainstate."""
        if self._kernel is None:
            return
        waiting: list[Deferred[Any]] = []
        if self._port is not None:
            waiting.append(Deferred.fromCoroutine(self._stop_listening(self._port)))
            self._port = None
        for waiter, timer in self._waiters:
            if timer.active():
                timer.cancel()
            waiter.cancel()
        self._waiters = []
        if self._resource is not None:
            self._resource.close()
            self._resource = None
        if self._connections is not None:
            waiting.append(self._connections.close_all())
            self._connections = None
        await DeferredList(waiting, consumeErrors=True)
        self._remove_cookie()
        self._kernel.close()
        self._kernel = None
        log.info("regtest node stopped")

    @staticmethod
    async def _stop_listening(port: IListeningPort) -> None:
        stopped = port.stopListening()
        if stopped is not None:
            await stopped

    # -- where to reach it --

    @property
    def rpc_url(self) -> str:
        """``http://HOST:PORT/`` of the JSON-RPC server (after :meth:`start`)."""
        if self._port is None:
            raise ServerError("the regtest node is not listening")
        address = self._port.getHost()
        host = getattr(address, "host", None)
        if host is None:
            raise ServerError("the RPC endpoint is not a TCP endpoint; it has no URL")
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{address.port}/"  # type: ignore[attr-defined]

    @property
    def cookie_path(self) -> Path:
        """Where the auth cookie is written while the node runs (``DATADIR/regtest/.cookie``)."""
        return self._netdir / ".cookie"

    @property
    def datadir(self) -> Path:
        """The data directory given at construction."""
        return self._datadir

    # -- state, for the RPC methods and for tests --

    @property
    def kernel(self) -> Kernel:
        """The running kernel (only while started)."""
        if self._kernel is None:
            raise ServerError("the regtest node is not running")
        return self._kernel

    @property
    def chain(self) -> ChainState:
        """Our mirror of the active chain and its UTXO set."""
        if self._chain is None:
            raise ServerError("the regtest node has not been started")
        return self._chain

    @property
    def mempool(self) -> Mempool:
        """The mempool."""
        if self._mempool is None:
            raise ServerError("the regtest node has not been started")
        return self._mempool

    @property
    def tip_hash(self) -> str:
        """The best block hash as Core prints it (byte-reversed hex)."""
        return display_hex(self.chain.tip_hash)

    @property
    def height(self) -> int:
        """Height of the best block."""
        return self.chain.height

    @property
    def uptime(self) -> int:
        """Seconds since start."""
        return int(self._reactor.seconds() - self._started_at)

    def now(self) -> int:
        """The reactor's clock, in whole seconds (template times, mempool entry times)."""
        return int(self._reactor.seconds())

    def _credentials(self) -> str | None:
        return self._userpass if self._userpass is not None else self._cookie

    # -- cookie --

    def _write_cookie(self) -> None:
        """GenerateAuthCookie: 32 random bytes as hex, written to a temporary file then renamed, 0600."""
        cookie = f"__cookie__:{secrets.token_hex(32)}"
        self._netdir.mkdir(parents=True, exist_ok=True)
        temporary = self.cookie_path.with_name(".cookie.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(cookie)
        temporary.replace(self.cookie_path)
        self._cookie = cookie

    def _remove_cookie(self) -> None:
        if self._cookie is not None:
            self.cookie_path.unlink(missing_ok=True)
            self._cookie = None

    # -- chain --

    def _sync_chain(self) -> None:
        """Bring the Python mirror to the kernel's active tip; replay from genesis on a reorg."""
        kernel, chain = self.kernel, self.chain
        kernel_height = kernel.tip_height
        extends = chain.height >= 0 and kernel_height >= chain.height and kernel.hash_at(chain.height) == chain.tip_hash
        if extends and kernel_height == chain.height:
            return
        start = chain.height + 1 if extends else 0
        if not extends:
            chain.reset()
        for height in range(start, kernel_height + 1):
            block_hash = kernel.hash_at(height)
            raw = kernel.read_block(block_hash)
            if raw is None:
                raise ServerError(f"libbitcoinkernel has no data for the active block at height {height}")
            header, transactions = parse_block(raw)
            chain.connect(block_hash, header, transactions, len(raw))
        self.mempool.revalidate(self.now())
        self._notify_change()

    def _check_scripts(self, tx: Transaction, spent: Sequence[Coin]) -> int | None:
        return self.kernel.verify_scripts(tx, spent)

    def submit_block(self, raw_block: bytes) -> str | None:
        """Core's submitblock: None when the kernel connected the block, else a BIP22 string.

        "duplicate" / "duplicate-invalid" for blocks seen before, "inconclusive" for a valid
        block that did not become (part of) the best chain, otherwise the reject reason.
        """
        try:
            header, transactions = parse_block(raw_block)
        except ValueError:
            raise RPCError(RPC_DESERIALIZATION_ERROR, "Block decode failed") from None
        if not transactions or not transactions[0].is_coinbase:
            raise RPCError(RPC_DESERIALIZATION_ERROR, "Block does not start with a coinbase")
        chain = self.chain
        block_hash = header.hash
        if chain.active_height(block_hash) is not None:
            return "duplicate"
        if chain.is_known_invalid(block_hash):
            return "duplicate-invalid"
        transactions = _add_witness_reserved_value(transactions)
        raw_block = serialize_block(header, transactions)
        try:
            verdict = self.kernel.process_block(raw_block)
        except ValueError:
            raise RPCError(RPC_DESERIALIZATION_ERROR, "Block decode failed") from None
        self._sync_chain()
        if verdict.processed and not verdict.new_block:
            return "duplicate"
        if verdict.mode is None:
            return "inconclusive"
        if verdict.mode is CheckedMode.ERROR:
            raise RPCError(RPC_VERIFY_ERROR, f"libbitcoinkernel could not validate the block ({verdict.result})")
        if verdict.mode is CheckedMode.VALID:
            if not verdict.connected:
                return "inconclusive"
            log.info("block {hash} connected at height {height}", hash=display_hex(block_hash), height=chain.height)
            return None
        if verdict.result == "CONSENSUS":
            chain.invalid.add(block_hash)
        reason = diagnose_block(header, transactions, chain, self.now(), self._check_scripts)
        if reason is not None and reason_class(reason) == verdict.result:
            return reason
        log.warn(
            "libbitcoinkernel refused block {hash} ({result}); our checks say {reason}",
            hash=display_hex(block_hash),
            result=verdict.result,
            reason=reason,
        )
        return _FALLBACK_REASONS.get(verdict.result or "", "rejected")

    def propose_block(self, raw_block: bytes) -> str | None:
        """getblocktemplate's proposal mode: would this block be valid on the tip?

        libbitcoinkernel offers no TestBlockValidity, so the answer comes from
        :func:`~.consensus.diagnose_block` (scripts still verified by the kernel); nothing is
        stored.
        """
        try:
            header, transactions = parse_block(raw_block)
        except ValueError:
            raise RPCError(RPC_DESERIALIZATION_ERROR, "Block decode failed") from None
        if not transactions or not transactions[0].is_coinbase:
            raise RPCError(RPC_DESERIALIZATION_ERROR, "Block does not start with a coinbase")
        chain = self.chain
        block_hash = header.hash
        if chain.active_height(block_hash) is not None:
            return "duplicate"
        if chain.is_known_invalid(block_hash):
            return "duplicate-invalid"
        if self.kernel.lookup(block_hash) is not None:
            return "duplicate-inconclusive"
        if header.prev_hash != chain.tip_hash:
            return "inconclusive-not-best-prevblk"
        transactions = _add_witness_reserved_value(transactions)
        return diagnose_block(header, transactions, chain, self.now(), self._check_scripts)

    # -- mempool --

    def send_raw_transaction(self, raw_tx: bytes, max_fee_rate: int = 10_000_000, max_burn: int = 0) -> str:
        """Core's sendrawtransaction: the txid once accepted (or already in the mempool).

        ``max_fee_rate`` is in satoshis per 1000 virtual bytes (0: no limit); ``max_burn``
        the most satoshis unspendable outputs may carry.
        """
        try:
            tx = Transaction.parse(raw_tx)
        except ValueError:
            raise RPCError(
                RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input."
            ) from None
        burned = sum(txout.value for txout in tx.outputs if is_unspendable(txout.script_pubkey))
        if burned > max_burn:
            raise RPCError(RPC_VERIFY_ERROR, "Unspendable output exceeds maximum configured by user (maxburnamount)")
        txid = tx.txid
        if any(self.chain.coin((txid, index)) is not None for index in range(len(tx.outputs))):
            raise RPCError(RPC_VERIFY_ALREADY_IN_UTXO_SET, "Transaction outputs already in utxo set")
        mempool = self.mempool
        if txid in mempool:
            return display_hex(txid)
        try:
            entry = mempool.check(tx, self.now())
        except TxRejected as rejected:
            code = RPC_VERIFY_ERROR if rejected.missing_inputs else RPC_VERIFY_REJECTED
            raise RPCError(code, rejected.message) from None
        if max_fee_rate and entry.fee > math.ceil(max_fee_rate * entry.vsize / 1000):
            raise RPCError(RPC_VERIFY_ERROR, "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)")
        mempool.add(entry)
        log.info("transaction {txid} accepted fee={fee}", txid=display_hex(txid), fee=entry.fee)
        self._notify_change()
        return display_hex(txid)

    # -- templates and mining --

    @property
    def longpollid(self) -> str:
        """Core's long-poll id: the tip hash followed by the mempool's update counter."""
        return f"{self.tip_hash}{self.mempool.updates}"

    def block_template(self) -> BlockTemplate:
        """CreateNewBlock on the tip: mempool transactions that fit, fees, times, commitment."""
        chain = self.chain
        height = chain.height + 1
        entries = self.mempool.select(
            MAX_BLOCK_WEIGHT - COINBASE_RESERVED_WEIGHT, MAX_BLOCK_SIGOPS_COST - COINBASE_RESERVED_SIGOPS
        )
        positions = {entry.txid: index + 1 for index, entry in enumerate(entries)}
        chosen = tuple(
            TemplateTransaction(entry, tuple(sorted(positions[parent] for parent in entry.parents)))
            for entry in entries
        )
        mintime = chain.median_time_past_at(chain.height) + 1
        commitment = witness_commitment([entry.wtxid for entry in entries])
        return BlockTemplate(
            height=height,
            previous_hash=chain.tip_hash,
            version=BLOCK_VERSION,
            bits=chain.headers[-1].bits,  # regtest never retargets
            mintime=mintime,
            curtime=max(self.now(), mintime),
            coinbase_value=block_subsidy(height) + sum(entry.fee for entry in entries),
            transactions=chosen,
            witness_commitment_script=witness_commitment_script(commitment),
            longpollid=self.longpollid,
        )

    def wait_for_change(self, tip_hash: str, updates: int | None) -> Deferred[None]:
        """Fires when the tip is no longer ``tip_hash`` or the mempool counter moved past
        ``updates`` (at once if either is already so), or after the long-poll timeout."""
        if tip_hash != self.tip_hash or (updates is not None and updates != self.mempool.updates):
            return succeed(None)

        def cancel(waiter: Deferred[None]) -> None:
            for index, (pending, timer) in enumerate(self._waiters):
                if pending is waiter:
                    del self._waiters[index]
                    if timer.active():
                        timer.cancel()
                    break

        waiter: Deferred[None] = Deferred(cancel)
        timer = self._reactor.callLater(self._longpoll_timeout, self._time_out, waiter)
        self._waiters.append((waiter, timer))
        return waiter

    @property
    def pending_long_polls(self) -> int:
        """How many getblocktemplate long polls are parked, waiting for a change."""
        return len(self._waiters)

    def _time_out(self, waiter: Deferred[None]) -> None:
        self._waiters = [(pending, timer) for pending, timer in self._waiters if pending is not waiter]
        waiter.callback(None)

    def _notify_change(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter, timer in waiters:
            if timer.active():
                timer.cancel()
            waiter.callback(None)

    def build_block(self, script_pubkey: bytes, max_tries: int = DEFAULT_MAX_TRIES) -> tuple[bytes | None, int]:
        """A solved block on the tip paying ``script_pubkey`` (None if ``max_tries`` nonces
        fail) and the number of nonces tried.

        The coinbase is Core's: version 2, ``<height> OP_0`` scriptSig, a non-final sequence
        with lock time height-1, the subsidy plus fees, the witness commitment, and the
        32-byte witness reserved value.
        """
        template = self.block_template()
        coinbase = Transaction(
            version=2,
            inputs=(
                TxIn(
                    bytes(32),
                    0xFFFF_FFFF,
                    bip34_height_push(template.height) + bytes((OP_0,)),
                    MAX_SEQUENCE_NONFINAL,
                    (WITNESS_RESERVED_VALUE,),
                ),
            ),
            outputs=(
                TxOut(template.coinbase_value, script_pubkey),
                TxOut(0, template.witness_commitment_script),
            ),
            lock_time=template.height - 1,
        )
        transactions = [coinbase, *(item.entry.tx for item in template.transactions)]
        root = merkle_root([tx.txid for tx in transactions])
        target = target_from_nbits(template.bits)
        tries = min(max_tries, 1 << 32)
        for nonce in range(tries):
            header = BlockHeader(template.version, template.previous_hash, root, template.curtime, template.bits, nonce)
            if int.from_bytes(header.hash, "little") <= target:
                return serialize_block(header, transactions), nonce + 1
        return None, tries

    def mine_to(self, script_pubkey: bytes, count: int, max_tries: int = DEFAULT_MAX_TRIES) -> list[str]:
        """Mine ``count`` blocks paying ``script_pubkey`` (mempool transactions included), as
        generatetodescriptor does; returns their hashes.  As in Core, ``max_tries`` nonces are
        shared by all the blocks, and mining stops early when they run out."""
        hashes: list[str] = []
        for _ in range(count):
            block, tried = self.build_block(script_pubkey, max_tries)
            max_tries -= tried
            if block is None:
                break
            result = self.submit_block(block)
            if result is not None:
                raise RPCError(RPC_INTERNAL_ERROR, f"ProcessNewBlock, block not accepted: {result}")
            hashes.append(display_hex(BlockHeader.parse(block[:80]).hash))
        return hashes


def _add_witness_reserved_value(transactions: Sequence[Transaction]) -> tuple[Transaction, ...]:
    """UpdateUncommittedBlockStructures: a committed block whose coinbase lacks the witness
    reserved value gets the 32 zero bytes Core adds before validation."""
    coinbase = transactions[0]
    index = witness_commitment_index([txout.script_pubkey for txout in coinbase.outputs])
    if index is None or coinbase.inputs[0].witness:
        return tuple(transactions)
    first = coinbase.inputs[0]
    filled = TxIn(first.prev_txid, first.prev_index, first.script_sig, first.sequence, (WITNESS_RESERVED_VALUE,))
    patched = Transaction(coinbase.version, (filled, *coinbase.inputs[1:]), coinbase.outputs, coinbase.lock_time)
    return (patched, *transactions[1:])

