"""A job source fed by a Template Provider over the Template Distribution protocol.

The client side of PROTOCOL.md §3.4, §7 and §11 (sv2-tp on the wire): a Noise initiator,
optionally pinning the TP's authority key, sends SetupConnection(protocol 2, version 2) and,
once accepted, CoinbaseOutputConstraints (the 6-byte form) sized for our payout outputs.  A
future NewTemplate becomes work when the SetNewPrevHash that activates it arrives (a new tip:
``mining.new_tip``); a non-future NewTemplate replaces the work on the current tip
(``mining.new_work``).  A found block goes back as SubmitSolution; sv2-tp never answers one, so
the only confirmation is the next SetNewPrevHash naming the block as the new tip.

The link is a :class:`ClientService`: a lost or refused connection is logged and retried with
backoff while miners keep the last work.  Templates are not requested with
RequestTransactionData: SubmitSolution needs only the coinbase and the header fields.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
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
from sv2proxy.bitcoin.serialize import TxOut
from sv2proxy.codec.common import SetupConnection, SetupConnectionError, SetupConnectionSuccess
from sv2proxy.codec.constants import PROTOCOL_TEMPLATE_DISTRIBUTION, PROTOCOL_VERSION
from sv2proxy.codec.message import Message
from sv2proxy.codec.template_distribution import CoinbaseOutputConstraints, NewTemplate, SetNewPrevHash
from sv2proxy.errors import MiningJobError, ProtocolError
from sv2proxy.events import BlockSubmitted, BlockTemplateUpdated, EventBus
from sv2proxy.link.framed import FramedProtocol, peer_text
from sv2proxy.link.noise import NoiseClientFactory
from sv2proxy.pool.jobs import Work
from sv2proxy.server.mining import FoundBlock, MiningService
from sv2proxy.template.block_template import BlockTemplate
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


@dataclass(frozen=True, slots=True)
class _Kept:
    """An assembler and the TP session its template_id belongs to (ids restart per session)."""

    session: int
    assembler: BlockAssembler


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
        self._assemblers[(source_id, None)] = _Kept(session, assembler)
        while self._assemblers and next(iter(self._assemblers))[0] <= source_id - MAX_ASSEMBLERS:
            self._assemblers.popitem(last=False)
        self.template = template

        def variant(payout: bytes) -> Work:
            # A solo channel's coinbase pays its own script: same template, its own assembler.
            solo, solo_assembler = self.factory.work_for(
                template, future=new_tip, source_id=source_id, payout_script=payout
            )
            self._assemblers[(source_id, payout)] = _Kept(session, solo_assembler)
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

    # -- found blocks ----------------------------------------------------------------------

    def _save(self, block: FoundBlock, assembler: BlockAssembler, block_hash: str) -> Path | None:
        """Make the whole block durable before it leaves (never lost, whatever the TP does)."""
        if self.journal is None:
            return None
        try:
            assembled = assembler.assemble(block.extranonce, block.version, block.ntime, block.nonce)
            return self.journal.save(block_hash, assembled.data.hex())
        except OSError as e:
            log.critical("cannot write found block {hash} to disk: {error}", hash=block_hash, error=e)
            return None

    def block_found(self, block: FoundBlock) -> None:
        """A miner found a block: hand it to the TP as SubmitSolution (it sends no answer)."""
        block_hash = display_hex(block.block_hash)
        kept = self._assemblers.get((block.source_id, block.payout))
        if kept is None:
            log.critical("cannot submit block {hash}: its template is no longer kept", hash=block_hash)
            return
        assembler = kept.assembler
        header = assembler.header(block.extranonce, block.version, block.ntime, block.nonce)
        if header.hash != block.block_hash:
            log.critical(
                "block {hash} rebuilt with a different hash {rebuilt}: not submitted",
                hash=block_hash,
                rebuilt=display_hex(header.hash),
            )
            return
        saved = self._save(block, assembler, block_hash)
        protocol = self.protocol
        if protocol is None or protocol.session != kept.session:
            # The template_id would name another template in a new session.
            log.critical(
                "cannot submit block {hash}: the Template Provider session of its template is gone{saved}",
                hash=block_hash,
                saved=f"; it is kept in {saved}: submit it to a node by hand" if saved else "",
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
