"""A job source fed by a Template Provider over the Template Distribution protocol.

The client side of PROTOCOL.md §3.4, §7 and §11 (sv2-tp on the wire): a Noise initiator,
optionally pinning the TP's authority key, sends SetupConnection(protocol 2, version 2) and,
once accepted, CoinbaseOutputConstraints (the 6-byte form) sized for our payout outputs.  A
future NewTemplate becomes work when the SetNewPrevHash that activates it arrives (a new tip:
``mining.new_tip``); a non-future NewTemplate replaces the work on the current tip
(``mining.new_work``).  A found block goes back as SubmitSolution; sv2-tp never answers one, so
the only confirmation is the next SetNewPrevHash naming the block as the new tip.

Every template installed as work (a future one when its SetNewPrevHash activates it, a
non-future one on arrival) is asked for with RequestTransactionData, unless its merkle path is
empty (then it holds the coinbase alone).  Asking at activation rather than on a future
template's arrival asks only for templates that can yield a block: a TP may announce future
templates for tips that never come, and each answer can be megabytes.  The Success's
transactions (checked against the merkle path and the witness commitment, its excess_data
taken as the coinbase's witness reserved value) are kept with that template's assemblers,
bounded by MAX_ASSEMBLERS like them; an Error (``template-id-not-found``,
``stale-template-id``) is logged and changes nothing else.

A found block is written to the journal before SubmitSolution goes: the whole block, checked
against its header (merkle root, witness commitment), when the transactions are known, else
its header and coinbase alone (``<hash>.incomplete.json``), rewritten whole as soon as the
transactions come.  SubmitSolution never waits for them.  So when the TP session is gone, the
file the log names is a block a node takes with ``submitblock``.

The link is a :class:`ClientService`: a lost or refused connection is logged and retried with
backoff while miners keep the last work.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, clientFromString
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from sv2proxy.bitcoin.hashing import display_hex
from sv2proxy.bitcoin.script import WITNESS_RESERVED_VALUE
from sv2proxy.bitcoin.serialize import TxOut
from sv2proxy.codec.common import SetupConnection, SetupConnectionError, SetupConnectionSuccess
from sv2proxy.codec.constants import PROTOCOL_TEMPLATE_DISTRIBUTION, PROTOCOL_VERSION
from sv2proxy.codec.message import Message
from sv2proxy.codec.template_distribution import (
    CoinbaseOutputConstraints,
    NewTemplate,
    RequestTransactionData,
    RequestTransactionDataError,
    RequestTransactionDataSuccess,
    SetNewPrevHash,
)
from sv2proxy.errors import MiningJobError, ProtocolError
from sv2proxy.events import BlockSubmitted, BlockTemplateUpdated, EventBus
from sv2proxy.link.framed import FramedProtocol, peer_text
from sv2proxy.link.noise import NoiseClientFactory
from sv2proxy.pool.jobs import Work
from sv2proxy.server.mining import FoundBlock, MiningService
from sv2proxy.template.block_template import BlockTemplate, TemplateTransaction
from sv2proxy.template.found_blocks import FoundBlockJournal
from sv2proxy.template.job_factory import BlockAssembler, JobFactory

log = Logger()

#: Templates kept for found blocks: shares may arrive for jobs a little older than the newest.
MAX_ASSEMBLERS = 32
#: Future templates kept waiting for their SetNewPrevHash (a TP sends one or a few per tip).
MAX_FUTURE_TEMPLATES = 8
#: sv2-tp's default when a client gives none (PROTOCOL.md §11).
DEFAULT_MAX_ADDITIONAL_SIGOPS = 400
MAX_RETRY_DELAY = 30.0
VENDOR = "sv2proxy"
_ENDPOINT_TYPES = frozenset({"tcp", "tcp6", "unix", "tls", "ssl"})


def client_endpoint(reactor: Any, address: str) -> IStreamClientEndpoint:
    """``HOST:PORT``, ``[V6]:PORT`` or a Twisted client endpoint string (``tcp:host=...:port=...``)."""
    text = address.strip()
    if text.partition(":")[0] in _ENDPOINT_TYPES:
        return clientFromString(reactor, text)
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT or a client endpoint string, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return HostnameEndpoint(reactor, host, int(port))


#: The largest output a solo miner's address can make: a 34-byte witness program (P2WSH, P2TR).
LARGEST_SOLO_OUTPUT = len(TxOut(0, bytes(34)).serialize())


def coinbase_output_constraints(factory: JobFactory, sigops: int, solo: bool = False) -> CoinbaseOutputConstraints:
    """What our payout outputs add to the TP's coinbase: their serialized size, and ``sigops``.

    A solo pool's coinbase pays one miner's address instead: room for the largest one.
    """
    size = sum(len(TxOut(0, script).serialize()) for script, _ in factory.shares)
    return CoinbaseOutputConstraints(max(size, LARGEST_SOLO_OUTPUT) if solo else size, sigops)


@dataclass(slots=True, eq=False)
class _Waiting:
    """A found block on disk as its header and coinbase alone, until its transactions come."""

    block: FoundBlock
    block_hash: str
    assembler: BlockAssembler
    path: Path
    #: The TP's SetNewPrevHash named it as the new tip (its journal entry is settled).
    accepted: bool = False


@dataclass(slots=True, eq=False)
class _Template:
    """A template of one TP session installed as work, and what is known of its transactions."""

    session: int
    template_id: int
    source_id: int
    #: Its ``transactions`` are filled in by RequestTransactionData.Success.
    template: BlockTemplate
    #: Success.excess_data when it is a 32-byte witness reserved value.
    witness_reserved_value: bytes | None = None
    requested: bool = False
    #: Why the transactions will never be known (an Error, a mismatch, a lost session).
    missing: str | None = None
    waiting: list[_Waiting] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Kept:
    """An assembler, the TP session its template_id belongs to (ids restart per session), and
    the template's record, where its transactions arrive."""

    session: int
    assembler: BlockAssembler
    record: _Template


class TemplateDistributionClient(FramedProtocol):
    """One Template Distribution session: setup, constraints, then templates to the source."""

    def __init__(self, source: TemplateProviderSource, session: int) -> None:
        self.source = source
        self.session = session
        self.ready = False

    def connectionMade(self) -> None:  # noqa: N802 -- Twisted's name
        # Called once the Noise handshake completed (NoiseProtocol holds it back until then).
        assert self.transport is not None
        peer = self.transport.getPeer()
        host, port = getattr(peer, "host", ""), getattr(peer, "port", 0)
        self.sendMessage(
            SetupConnection(
                protocol=PROTOCOL_TEMPLATE_DISTRIBUTION,
                min_version=PROTOCOL_VERSION,
                max_version=PROTOCOL_VERSION,
                flags=0,
                endpoint_host=str(host)[:252],  # sv2-tp reads STR0_255 as CompactSize (§11)
                endpoint_port=int(port) if isinstance(port, int) else 0,
                vendor=VENDOR,
                hardware_version="",
                firmware="",
                device_id="",
            )
        )

    def messageReceived(self, message: Message) -> None:  # noqa: N802
        if isinstance(message, SetupConnectionSuccess):
            if self.ready:
                raise ProtocolError("a second SetupConnection.Success")
            self.ready = True
            self.sendMessage(self.source.constraints)
            self.source.session_ready(self)
        elif isinstance(message, SetupConnectionError):
            log.error(
                "the Template Provider {peer} refused SetupConnection: {error} (flags {flags:#x}); "
                "retrying with backoff",
                peer=peer_text(self.transport),
                error=message.error_code,
                flags=message.flags,
            )
            assert self.transport is not None
            self.transport.loseConnection()
        elif not self.ready:
            raise ProtocolError(f"{type(message).__name__} before SetupConnection.Success")
        elif isinstance(message, NewTemplate):
            self.source.new_template(self, message)
        elif isinstance(message, SetNewPrevHash):
            self.source.set_new_prev_hash(self, message)
        elif isinstance(message, RequestTransactionDataSuccess):
            self.source.transaction_data(self, message)
        elif isinstance(message, RequestTransactionDataError):
            self.source.transaction_data_error(self, message)
        else:
            super().messageReceived(message)

    def connectionLost(self, reason: Failure | None = None) -> None:  # noqa: N802
        self.source.session_lost(self, reason)


class _ClientFactory(Factory):
    noisy = False

    def __init__(self, source: TemplateProviderSource) -> None:
        self.source = source
        self._sessions = itertools.count(1)

    def buildProtocol(self, addr: object) -> TemplateDistributionClient:  # noqa: N802
        protocol = TemplateDistributionClient(self.source, next(self._sessions))
        protocol.factory = self
        return protocol


@implementer(IStreamClientEndpoint)
class _ReportingEndpoint:
    """Passes every failed attempt to ``failed``: ClientService retries silently."""

    def __init__(self, wrapped: IStreamClientEndpoint, failed: Callable[[Failure], Failure]) -> None:
        self._wrapped = wrapped
        self._failed = failed

    def connect(self, protocol_factory: IProtocolFactory) -> Deferred[IProtocol]:
        attempt: Deferred[IProtocol] = self._wrapped.connect(protocol_factory)
        return attempt.addErrback(self._failed)


class TemplateProviderSource(Service):
    """Work from a Template Provider's templates; found blocks back to it as SubmitSolution.

    ``reactor`` connects (IReactorTCP) and times the handshake and the retries (IReactorTime);
    ``authority_key`` is the TP's x-only authority key to pin (None: accept any, unauthenticated).
    """

    name = "template-provider"  # type: ignore[assignment]  # Service types name as None

    def __init__(
        self,
        endpoint: str | IStreamClientEndpoint,
        factory: JobFactory,
        mining: MiningService,
        reactor: Any,
        *,
        authority_key: bytes | None = None,
        max_additional_sigops: int = DEFAULT_MAX_ADDITIONAL_SIGOPS,
        handshake_timeout: float = 10.0,
        events: EventBus | None = None,
        solo: bool = False,
        journal: FoundBlockJournal | None = None,
    ) -> None:
        self.factory = factory
        #: Where found blocks are made durable before they go to the TP (None: nowhere).
        self.journal = journal
        self.mining = mining
        self.events = events
        self.constraints = coinbase_output_constraints(factory, max_additional_sigops, solo)
        self.template: BlockTemplate | None = None
        self.protocol: TemplateDistributionClient | None = None
        self._endpoint = client_endpoint(reactor, endpoint) if isinstance(endpoint, str) else endpoint
        self._where = endpoint if isinstance(endpoint, str) else repr(endpoint)
        noise = NoiseClientFactory(_ClientFactory(self), authority_key, reactor, handshake_timeout)
        self._client = ClientService(
            _ReportingEndpoint(self._endpoint, self._connect_failed),
            noise,
            retryPolicy=backoffPolicy(maxDelay=MAX_RETRY_DELAY),
            clock=reactor,
            prepareConnection=self._connected,
        )
        self._source_ids = itertools.count(1)
        # (source id, solo payout or None) -> the assembler of that coinbase, newest last.
        self._assemblers: OrderedDict[tuple[int, bytes | None], _Kept] = OrderedDict()
        # (session, template_id) -> the template installed as work, newest last.
        self._templates: OrderedDict[tuple[int, int], _Template] = OrderedDict()
        # The newest template's transactions by their bytes: the next template reuses them.
        self._known: Mapping[bytes, TemplateTransaction] = {}
        self._future: OrderedDict[int, NewTemplate] = OrderedDict()
        self._prev: SetNewPrevHash | None = None
        self._submitted: dict[bytes, int] = {}  # block hash -> template_id, until confirmed
        self._attempts = 0

    # -- lifecycle -------------------------------------------------------------------------

    def startService(self) -> None:  # noqa: N802
        super().startService()
        self.mining.block_sink = self
        try:
            pending = self.journal.pending() if self.journal is not None else []
        except OSError as e:
            log.error("cannot read the found-block journal: {error}", error=e)
            pending = []
        if self.journal is not None:
            for block_hash, _ in pending:
                # A TP takes a solution only for a template of its own session: what an earlier
                # run found and never saw confirmed can only go to a node by hand.
                log.warn(
                    "found block {hash} was never confirmed by the Template Provider; if it is not in"
                    " the chain, submit it: bitcoin-cli submitblock $(cat {path})",
                    hash=block_hash,
                    path=self.journal.pending_dir / f"{block_hash}.hex",
                )
            try:
                incomplete = self.journal.incomplete()
            except OSError as e:
                log.error("cannot read the found-block journal: {error}", error=e)
                incomplete = []
            for path in incomplete:
                log.critical(
                    "found block {hash} is kept only as its header and coinbase in {path} (its template's"
                    " transactions never came): it cannot be submitted as it is",
                    hash=path.name.split(".", 1)[0],
                    path=path,
                )
        self._client.startService()

    def stopService(self) -> Deferred[None]:  # noqa: N802
        super().stopService()
        stopped: Deferred[None] = self._client.stopService()
        return stopped

    def _connected(self, noise_protocol: object) -> None:
        self._attempts = 0
        log.info("connected to the Template Provider at {where}", where=self._where)

    def _connect_failed(self, failure: Failure) -> Failure:
        self._attempts += 1
        log.warn(
            "cannot connect to the Template Provider at {where} ({error}); attempt {n}, retrying "
            "with backoff (miners keep the last work)",
            where=self._where,
            error=failure.getErrorMessage(),
            n=self._attempts,
        )
        return failure

    # -- from the protocol -----------------------------------------------------------------

    def session_ready(self, protocol: TemplateDistributionClient) -> None:
        self.protocol = protocol
        # Template ids restart with every session: what was pending belongs to the old one.
        self._future.clear()
        self._prev = None
        log.info(
            "Template Provider session {session} set up; coinbase outputs {size} bytes, {sigops} sigops",
            session=protocol.session,
            size=self.constraints.coinbase_output_max_additional_size,
            sigops=self.constraints.coinbase_output_max_additional_sigops,
        )

    def session_lost(self, protocol: TemplateDistributionClient, reason: Failure | None) -> None:
        for record in self._templates.values():
            if record.session == protocol.session and record.template.transactions is None:
                self._give_up(record, "the Template Provider session ended before they came")
        if self.protocol is protocol:
            self.protocol = None
            if self.running:
                log.warn(
                    "lost the Template Provider at {where} ({why}); reconnecting (miners keep the last work)",
                    where=self._where,
                    why=reason.getErrorMessage() if reason is not None else "closed",
                )

    def new_template(self, protocol: TemplateDistributionClient, message: NewTemplate) -> None:
        if message.future_template:
            self._future[message.template_id] = message
            while len(self._future) > MAX_FUTURE_TEMPLATES:
                self._future.popitem(last=False)
            return
        if self._prev is None:
            log.warn("non-future template {id} before any SetNewPrevHash: ignored", id=message.template_id)
            return
        self._install(protocol, message, self._prev, new_tip=False)

    def set_new_prev_hash(self, protocol: TemplateDistributionClient, message: SetNewPrevHash) -> None:
        future = self._future.pop(message.template_id, None)
        if future is None:
            raise ProtocolError(f"SetNewPrevHash activates template {message.template_id}, never announced as future")
        # Older future templates were for tips that never came.
        for stale in [template_id for template_id in self._future if template_id < message.template_id]:
            del self._future[stale]
        self._prev = message
        template_id = self._submitted.pop(message.prev_hash, None)
        if template_id is not None:
            log.info(
                "block {hash} (template {id}) is the Template Provider's new tip: accepted",
                hash=display_hex(message.prev_hash),
                id=template_id,
            )
        self._install(protocol, future, message, new_tip=True)
        if template_id is not None and self.events is not None:
            self.events.publish(BlockSubmitted(display_hex(message.prev_hash), True))
        if template_id is not None and self.journal is not None:
            try:
                self.journal.settle(display_hex(message.prev_hash), True)
            except OSError as e:
                log.error(
                    "cannot record block {hash} as accepted: {error}", hash=display_hex(message.prev_hash), error=e
                )
            for record in self._templates.values():
                for waiting in record.waiting:
                    if waiting.block.block_hash == message.prev_hash:
                        waiting.accepted = True

    def _install(
        self, protocol: TemplateDistributionClient, message: NewTemplate, prev: SetNewPrevHash, *, new_tip: bool
    ) -> None:
        try:
            template = BlockTemplate.from_template_distribution(message, prev)
            source_id = next(self._source_ids)
            work, assembler = self.factory.work_for(template, future=new_tip, source_id=source_id)
        except (ValueError, MiningJobError) as e:
            log.error("unusable template {id} from the Template Provider: {error}", id=message.template_id, error=e)
            return
        session = protocol.session
        record = _Template(session, message.template_id, source_id, template)
        self._templates[(session, message.template_id)] = record
        self._assemblers[(source_id, None)] = _Kept(session, assembler, record)
        while self._assemblers and next(iter(self._assemblers))[0] <= source_id - MAX_ASSEMBLERS:
            self._assemblers.popitem(last=False)
        while self._templates and next(iter(self._templates.values())).source_id <= source_id - MAX_ASSEMBLERS:
            _, dropped = self._templates.popitem(last=False)
            self._give_up(dropped, f"the template was dropped: {MAX_ASSEMBLERS} newer ones are kept")
        self.template = template

        def variant(payout: bytes) -> Work:
            # A solo channel's coinbase pays its own script: same template, its own assembler.
            solo, solo_assembler = self.factory.work_for(
                template, future=new_tip, source_id=source_id, payout_script=payout
            )
            self._assemblers[(source_id, payout)] = _Kept(session, solo_assembler, record)
            return dataclasses.replace(solo, payout=payout)

        if new_tip:
            self.mining.new_tip(work, self.factory.prev_hash_for(template), variant)
            log.info(
                "new template {id} height={height} prev={prev} value={value}",
                id=message.template_id,
                height=template.height,
                prev=display_hex(template.prev_hash),
                value=template.coinbase_value,
            )
        else:
            self.mining.new_work(work, variant)
        if self.events is not None:
            self.events.publish(BlockTemplateUpdated(template, template_id=source_id, clean=new_tip))
        if template.transactions is None:
            self._request(protocol, record)

    # -- transaction data ------------------------------------------------------------------

    def _request(self, protocol: TemplateDistributionClient, record: _Template) -> None:
        protocol.sendMessage(RequestTransactionData(record.template_id))
        record.requested = True

    def transaction_data(self, protocol: TemplateDistributionClient, message: RequestTransactionDataSuccess) -> None:
        """RequestTransactionData.Success: the template's transactions, kept for its found blocks."""
        record = self._templates.get((protocol.session, message.template_id))
        if record is None:
            log.warn(
                "transactions for template {id}, which is not kept (dropped or never installed): ignored",
                id=message.template_id,
            )
            return
        if record.template.transactions is not None:
            return  # known already (an answer to a repeated request)
        reserved = WITNESS_RESERVED_VALUE
        if len(message.excess_data) == len(WITNESS_RESERVED_VALUE):
            reserved = message.excess_data
        elif message.excess_data:
            log.warn(
                "template {id}: excess_data of {size} bytes is no witness reserved value; the coinbase keeps"
                " 32 zero bytes",
                id=message.template_id,
                size=len(message.excess_data),
            )
        try:
            record.template = record.template.with_transactions(
                message.transaction_list, known=self._known, witness_reserved_value=reserved
            )
        except ValueError as e:
            log.error(
                "the Template Provider's transactions for template {id} do not match it: {error}",
                id=message.template_id,
                error=e,
            )
            self._give_up(record, f"the Template Provider's transactions do not match the template ({e})")
            return
        transactions = record.template.transactions
        assert transactions is not None
        if reserved != WITNESS_RESERVED_VALUE:
            record.witness_reserved_value = reserved
        self._known = {tx.data: tx for tx in transactions}
        log.debug("template {id}: {count} transactions received", id=message.template_id, count=len(transactions))
        waiting, record.waiting = record.waiting, []
        for entry in waiting:
            self._complete(record, entry)

    def transaction_data_error(
        self, protocol: TemplateDistributionClient, message: RequestTransactionDataError
    ) -> None:
        """RequestTransactionData.Error: logged; found blocks still go as SubmitSolution."""
        record = self._templates.get((protocol.session, message.template_id))
        log.warn(
            "the Template Provider has no transactions for template {id}: {error}; a block found on it still goes"
            " to the Template Provider, but only its header and coinbase can be written to disk",
            id=message.template_id,
            error=message.error_code,
        )
        if record is not None and record.template.transactions is None:
            self._give_up(record, f"the Template Provider answered RequestTransactionData with {message.error_code}")

    def _give_up(self, record: _Template, reason: str) -> None:
        """The transactions of ``record`` will not come: say so of the blocks waiting for them."""
        if record.template.transactions is not None:
            return
        record.missing = reason
        waiting, record.waiting = record.waiting, []
        for entry in waiting:
            log.critical(
                "block {hash}: only its header and coinbase are on disk, in {path}; the transactions of"
                " template {id} will not come ({reason}), so the whole block cannot be written",
                hash=entry.block_hash,
                path=entry.path,
                id=record.template_id,
                reason=reason,
            )

    def _complete(self, record: _Template, waiting: _Waiting) -> None:
        """The transactions came: the journal's header and coinbase become the whole block."""
        assert self.journal is not None
        block = waiting.block
        path = self._save_whole(self._assembler(waiting.assembler, record), block, waiting.block_hash)
        if path is None:
            log.critical(
                "block {hash}: only its header and coinbase remain on disk, in {path}",
                hash=waiting.block_hash,
                path=waiting.path,
            )
            return
        if waiting.accepted:
            try:
                self.journal.settle(waiting.block_hash, True)
                path = self.journal.accepted_dir / path.name
            except OSError as e:
                log.error("cannot record block {hash} as accepted: {error}", hash=waiting.block_hash, error=e)
        log.info(
            "block {hash}: the transactions of template {id} came; the complete block (coinbase and {count}"
            " transactions) is now on disk in {path}, replacing its header and coinbase",
            hash=waiting.block_hash,
            id=record.template_id,
            count=len(record.template.transactions or ()),
            path=path,
        )

    @staticmethod
    def _assembler(assembler: BlockAssembler, record: _Template) -> BlockAssembler:
        """``assembler`` with its template's transactions, once RequestTransactionData brought them."""
        transactions = record.template.transactions
        if assembler.transactions is not None or transactions is None:
            return assembler
        return dataclasses.replace(
            assembler,
            transactions=tuple(tx.data for tx in transactions),
            witness_reserved_value=record.witness_reserved_value,
        )

    # -- found blocks ----------------------------------------------------------------------

    def _save_whole(self, assembler: BlockAssembler, block: FoundBlock, block_hash: str) -> Path | None:
        """Write the whole block, checked against its header; None if it is not a valid one or
        the disk refused (both logged)."""
        assert self.journal is not None
        try:
            assembled = assembler.assemble(block.extranonce, block.version, block.ntime, block.nonce)
        except ValueError as e:
            log.critical("block {hash} cannot be assembled: {error}", hash=block_hash, error=e)
            return None
        problem = assembled.problem()
        if problem is not None:
            log.critical(
                "block {hash} rebuilt from template {id} and its transactions is not a valid block ({problem})",
                hash=block_hash,
                id=assembler.template_id,
                problem=problem,
            )
            return None
        try:
            return self.journal.save(block_hash, assembled.data.hex())
        except OSError as e:
            log.critical("cannot write found block {hash} to disk: {error}", hash=block_hash, error=e)
            return None

    def _save_incomplete(
        self, assembler: BlockAssembler, block: FoundBlock, block_hash: str, reason: str
    ) -> Path | None:
        """Write what is known of a block whose transactions are not: its header and coinbase."""
        assert self.journal is not None
        header = assembler.header(block.extranonce, block.version, block.ntime, block.nonce)
        text = json.dumps(
            {
                "block_hash": block_hash,
                "complete": False,
                "missing": f"the transactions of template {assembler.template_id}: {reason}",
                "template_id": assembler.template_id,
                "header": header.serialize().hex(),
                "coinbase": assembler.witness_coinbase(block.extranonce).hex(),
                "merkle_path": [node.hex() for node in assembler.merkle_path],
            },
            indent=1,
        )
        try:
            return self.journal.save_incomplete(block_hash, text + "\n")
        except OSError as e:
            log.critical("cannot write found block {hash} to disk: {error}", hash=block_hash, error=e)
            return None

    def _save(self, block: FoundBlock, kept: _Kept, block_hash: str, live: bool) -> tuple[Path, bool] | None:
        """Make the block durable before it leaves (never lost, whatever the TP does).

        Returns the file and whether it holds the whole block; logs precisely which.
        """
        if self.journal is None:
            return None
        record = kept.record
        assembler = self._assembler(kept.assembler, record)
        if assembler.transactions is not None:
            whole = self._save_whole(assembler, block, block_hash)
            if whole is not None:
                log.info(
                    "block {hash}: the complete block (coinbase and {count} transactions) is on disk in {path}",
                    hash=block_hash,
                    count=len(assembler.transactions),
                    path=whole,
                )
                return whole, True
            reason = "the block rebuilt with them is not valid or could not be written (logged above)"
        elif record.missing is not None:
            reason = record.missing
        elif live:
            reason = "asked of the Template Provider, not answered yet"
        else:
            reason = "the Template Provider session of the template is gone"
        path = self._save_incomplete(assembler, block, block_hash, reason)
        if path is None:
            return None
        waits = live and assembler.transactions is None and record.missing is None
        if waits:
            record.waiting.append(_Waiting(block, block_hash, kept.assembler, path))
        log.warn(
            "block {hash}: only its header and coinbase are on disk, in {path}: the transactions of template"
            " {id} are not known ({reason}){then}",
            hash=block_hash,
            path=path,
            id=record.template_id,
            reason=reason,
            then="; the complete block is written as soon as they come" if waits else "",
        )
        return path, False

    def block_found(self, block: FoundBlock) -> None:
        """A miner found a block: hand it to the TP as SubmitSolution (it sends no answer)."""
        block_hash = display_hex(block.block_hash)
        kept = self._assemblers.get((block.source_id, block.payout))
        if kept is None:
            log.critical("cannot submit block {hash}: its template is no longer kept", hash=block_hash)
            return
        record = kept.record
        assembler = self._assembler(kept.assembler, record)
        header = assembler.header(block.extranonce, block.version, block.ntime, block.nonce)
        if header.hash != block.block_hash:
            log.critical(
                "block {hash} rebuilt with a different hash {rebuilt}: not submitted",
                hash=block_hash,
                rebuilt=display_hex(header.hash),
            )
            return
        protocol = self.protocol
        live = protocol is not None and protocol.session == kept.session
        if protocol is not None and live and record.template.transactions is None:
            if not record.requested and record.missing is None:
                # Asked before the solution: once the TP has connected the block, the template
                # is stale and the TP may refuse it (stale-template-id).
                self._request(protocol, record)
        saved = self._save(block, kept, block_hash, live)
        if protocol is None or not live:
            # The template_id would name another template in a new session.
            if saved is None:
                kept_as = "; no journal keeps it" if self.journal is None else "; it could not be written to disk"
                kept_as += ": it is lost"
            elif saved[1]:
                kept_as = (
                    f"; the complete block is kept in {saved[0]}: submit it to a node by hand:"
                    f" bitcoin-cli submitblock $(cat {saved[0]})"
                )
            else:
                kept_as = (
                    f"; only its header and coinbase are kept, in {saved[0]}, since the transactions of"
                    f" template {record.template_id} never came: it cannot be submitted as it is"
                )
            log.critical(
                "cannot submit block {hash}: the Template Provider session of its template is gone{kept_as}",
                hash=block_hash,
                kept_as=kept_as,
            )
            return
        solution = assembler.submit_solution(block.extranonce, block.version, block.ntime, block.nonce)
        protocol.sendMessage(solution)
        self._submitted[block.block_hash] = solution.template_id
        while len(self._submitted) > MAX_ASSEMBLERS:
            del self._submitted[next(iter(self._submitted))]
        log.info(
            "block {hash} found by {worker}: SubmitSolution sent for template {id} "
            "(no reply comes; the next SetNewPrevHash confirms it)",
            hash=block_hash,
            worker=block.worker,
            id=solution.template_id,
        )
