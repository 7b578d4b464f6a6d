"""A Template Provider for tests and the demo: Template Distribution in front of a RegtestNode.

The server side of PROTOCOL.md §3.4 and §7, shaped the way sv2-tp behaves on the wire (§11): a
Noise responder with its own authority key; SetupConnection(protocol 2, a version range holding
2) is answered with Success; CoinbaseOutputConstraints with the best template as
NewTemplate(future=true) followed by the SetNewPrevHash activating it; every new tip (the node's
tip is polled) brings another such pair.  The coinbase is sv2-tp's: the BIP34 height push as
the whole prefix, tx version 2, sequence 0xfffffffe, lock_time height - 1, and the witness
commitment output (value 0) as the only TP output.  SubmitSolution rebuilds the block from the
template and the client's coinbase and gives it to the node; like sv2-tp it never answers.
RequestTransactionData is answered with the template's transactions (witness form) and the
32-byte witness reserved value as excess_data; a template this provider no longer keeps gets
RequestTransactionData.Error ``template-id-not-found``, one whose prev hash is no longer the
tip ``stale-template-id`` (PROTOCOL.md §4).

A mempool change brings each client a non-future NewTemplate on the current tip (no
SetNewPrevHash), as sv2-tp does (§11), kept simple: the node is polled every
``tip_poll_interval``; when its mempool changed since a client's last template, at least
``template_interval`` seconds have passed since then (sv2-tp's ``-templateinterval``, 5 s there)
and the new template's coinbase value beats the last one's by ``fee_delta`` satoshis or more
(sv2-tp's ``-sv2feedelta``), the client gets it.
"""

from __future__ import annotations

import enum
import itertools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from sv2proxy.bitcoin.coinbase import COINBASE_TX_VERSION, SEQUENCE_NONFINAL
from sv2proxy.bitcoin.hashing import display_hex, merkle_path, merkle_root
from sv2proxy.bitcoin.script import WITNESS_RESERVED_VALUE, bip34_height_push
from sv2proxy.bitcoin.serialize import BlockHeader, Transaction, TxOut, encode_compact_size
from sv2proxy.bitcoin.target import target_from_nbits, target_to_u256
from sv2proxy.codec.common import SetupConnection, SetupConnectionError, SetupConnectionSuccess
from sv2proxy.codec.constants import (
    ERROR_PROTOCOL_VERSION_MISMATCH,
    ERROR_STALE_TEMPLATE_ID,
    ERROR_TEMPLATE_ID_NOT_FOUND,
    ERROR_UNSUPPORTED_PROTOCOL,
    PROTOCOL_TEMPLATE_DISTRIBUTION,
    PROTOCOL_VERSION,
)
from sv2proxy.codec.message import Message
from sv2proxy.codec.template_distribution import (
    CoinbaseOutputConstraints,
    NewTemplate,
    RequestTransactionData,
    RequestTransactionDataError,
    RequestTransactionDataSuccess,
    SetNewPrevHash,
    SubmitSolution,
)
from sv2proxy.errors import ProtocolError
from sv2proxy.link.framed import FramedProtocol
from sv2proxy.link.noise import NoiseServerFactory, ServerCredentials
from sv2proxy.noise.keys import AuthorityKey
from sv2proxy.testing.regtest import BlockTemplate, RegtestNode

log = Logger()

#: Templates kept for SubmitSolution and RequestTransactionData.
MAX_TEMPLATES = 64


class _Phase(enum.Enum):
    SETUP = "setup"
    CONSTRAINTS = "constraints"
    SERVING = "serving"


@dataclass(frozen=True, slots=True)
class Solution:
    """A SubmitSolution received and what the node said of the block (None: connected)."""

    message: SubmitSolution
    block_hash: bytes
    result: str | None


class TemplateProviderProtocol(FramedProtocol):
    """One client: setup, constraints, then templates out and solutions in."""

    def __init__(self, provider: TemplateProvider) -> None:
        self.provider = provider
        self.phase = _Phase.SETUP
        self.constraints: CoinbaseOutputConstraints | None = None
        # The last template sent: when, for how much, and the node's mempool counter then.
        self.sent_at = 0.0
        self.coinbase_value = 0
        self.mempool_updates = -1

    def messageReceived(self, message: Message) -> None:  # noqa: N802
        if self.phase is _Phase.SETUP:
            if not isinstance(message, SetupConnection):
                raise ProtocolError(f"{type(message).__name__} before SetupConnection")
            self._setup(message)
        elif self.phase is _Phase.CONSTRAINTS:
            if not isinstance(message, CoinbaseOutputConstraints):
                raise ProtocolError(f"{type(message).__name__} before CoinbaseOutputConstraints")
            self.constraints = message
            self.phase = _Phase.SERVING
            self.provider.serve(self)
        elif isinstance(message, SubmitSolution):
            self.provider.submit_solution(message)
        elif isinstance(message, RequestTransactionData):
            self.sendMessage(self.provider.transaction_data(message.template_id))
        else:
            super().messageReceived(message)

    def _setup(self, message: SetupConnection) -> None:
        error = None
        if message.protocol != PROTOCOL_TEMPLATE_DISTRIBUTION:
            error = ERROR_UNSUPPORTED_PROTOCOL
        elif not message.min_version <= PROTOCOL_VERSION <= message.max_version:
            error = ERROR_PROTOCOL_VERSION_MISMATCH
        if error is not None:
            # sv2-tp echoes the client's flags in the error (PROTOCOL.md §11).
            self.sendMessage(SetupConnectionError(flags=message.flags, error_code=error))
            assert self.transport is not None
            self.transport.loseConnection()
            return
        self.phase = _Phase.CONSTRAINTS
        self.sendMessage(SetupConnectionSuccess(used_version=PROTOCOL_VERSION, flags=0))

    def connectionLost(self, reason: Failure | None = None) -> None:  # noqa: N802
        self.provider.client_lost(self)


class _ProtocolFactory(Factory):
    noisy = False
    protocol = TemplateProviderProtocol

    def __init__(self, provider: TemplateProvider) -> None:
        self.provider = provider

    def buildProtocol(self, addr: object) -> TemplateProviderProtocol:  # noqa: N802
        protocol = TemplateProviderProtocol(self.provider)
        protocol.factory = self
        return protocol


class TemplateProvider:
    """Template Distribution for a :class:`RegtestNode`, listening at ``endpoint``."""

    def __init__(
        self,
        node: RegtestNode,
        reactor: Any,
        *,
        endpoint: str = "tcp:0:interface=127.0.0.1",
        authority: AuthorityKey | None = None,
        tip_poll_interval: float = 0.2,
        template_interval: float = 1.0,
        fee_delta: int = 1000,
    ) -> None:
        self.node = node
        self.authority = authority if authority is not None else AuthorityKey.generate()
        self.solutions: list[Solution] = []
        self._reactor = reactor
        self._endpoint = endpoint
        self._tip_poll_interval = tip_poll_interval
        self._template_interval = template_interval
        self._fee_delta = fee_delta
        self._factory = _ProtocolFactory(self)
        self._port: IListeningPort | None = None
        self._clients: list[TemplateProviderProtocol] = []
        self._ids = itertools.count(1)
        self._templates: OrderedDict[int, BlockTemplate] = OrderedDict()
        self._tip: bytes | None = None
        self._poll = LoopingCall(self._check_tip)
        self._poll.clock = reactor

    @property
    def port(self) -> int:
        """The TCP port it listens on (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("the Template Provider is not listening")
        return int(self._port.getHost().port)  # type: ignore[attr-defined]  # an IPv4Address

    async def start(self) -> None:
        """Listen; from now on new tips go out to every client."""
        noise = NoiseServerFactory(self._factory, ServerCredentials(self.authority, self._reactor), self._reactor)
        self._port = await serverFromString(self._reactor, self._endpoint).listen(noise)
        self._poll.start(self._tip_poll_interval, now=False).addErrback(
            lambda failure: log.failure("the Template Provider's tip poll stopped", failure)
        )
        log.info(
            "Template Provider listening on port {port}, authority key {key}",
            port=self.port,
            key=self.authority.public_text,
        )

    async def stop(self) -> None:
        """Stop listening and drop every client."""
        if self._poll.running:
            self._poll.stop()
        for client in list(self._clients):
            if client.transport is not None:
                client.transport.loseConnection()
        self._clients.clear()
        if self._port is not None:
            port, self._port = self._port, None
            stopped = port.stopListening()
            if stopped is not None:
                await stopped

    # -- templates -------------------------------------------------------------------------

    def serve(self, client: TemplateProviderProtocol) -> None:
        """A client sent its CoinbaseOutputConstraints: it gets the best template at once."""
        self._clients.append(client)
        self._send_best(client)

    def client_lost(self, client: TemplateProviderProtocol) -> None:
        if client in self._clients:
            self._clients.remove(client)

    def _check_tip(self) -> None:
        tip = self.node.chain.tip_hash
        if tip == self._tip:
            self._check_mempool()
            return
        self._tip = tip
        for client in list(self._clients):
            self._send_best(client)

    def _check_mempool(self) -> None:
        """Non-future templates for the clients whose last template the mempool has outdated."""
        updates = self.node.mempool.updates
        now = self._reactor.seconds()
        for client in list(self._clients):
            if client.mempool_updates == updates or now - client.sent_at < self._template_interval:
                continue
            client.mempool_updates = updates
            template = self.node.block_template()
            if template.coinbase_value - client.coinbase_value < self._fee_delta:
                continue
            self._send(client, template, future=False)

    def _keep(self, template: BlockTemplate) -> int:
        template_id = next(self._ids)
        self._templates[template_id] = template
        while len(self._templates) > MAX_TEMPLATES:
            self._templates.popitem(last=False)
        return template_id

    def _send(self, client: TemplateProviderProtocol, template: BlockTemplate, *, future: bool) -> int:
        template_id = self._keep(template)
        client.sent_at = self._reactor.seconds()
        client.coinbase_value = template.coinbase_value
        client.mempool_updates = self.node.mempool.updates  # the template was built just now
        client.sendMessage(new_template(template_id, template, future=future))
        return template_id

    def _send_best(self, client: TemplateProviderProtocol) -> None:
        template = self.node.block_template()
        self._tip = template.previous_hash
        template_id = self._send(client, template, future=True)
        client.sendMessage(
            SetNewPrevHash(
                template_id=template_id,
                prev_hash=template.previous_hash,
                header_timestamp=template.curtime,
                n_bits=template.bits,
                target=target_to_u256(target_from_nbits(template.bits)),
            )
        )

    def transaction_data(self, template_id: int) -> RequestTransactionDataSuccess | RequestTransactionDataError:
        """RequestTransactionData's answer for ``template_id``."""
        template = self._templates.get(template_id)
        if template is None:
            return RequestTransactionDataError(template_id, ERROR_TEMPLATE_ID_NOT_FOUND)
        if template.previous_hash != self.node.chain.tip_hash:
            return RequestTransactionDataError(template_id, ERROR_STALE_TEMPLATE_ID)
        return RequestTransactionDataSuccess(
            template_id=template_id,
            excess_data=WITNESS_RESERVED_VALUE,
            transaction_list=tuple(tx.entry.tx.serialize(with_witness=True) for tx in template.transactions),
        )

    # -- solutions -------------------------------------------------------------------------

    def submit_solution(self, solution: SubmitSolution) -> None:
        """Rebuild the block from the template and the client's coinbase; give it to the node."""
        template = self._templates.get(solution.template_id)
        if template is None:
            log.warn("SubmitSolution for unknown template {id}: dropped", id=solution.template_id)
            return
        try:
            coinbase = Transaction.parse(solution.coinbase_tx)
        except ValueError as e:
            log.warn("SubmitSolution with an undecodable coinbase: {error}", error=e)
            return
        txids = [coinbase.txid, *(tx.entry.txid for tx in template.transactions)]
        header = BlockHeader(
            version=solution.version,
            prev_hash=template.previous_hash,
            merkle_root=merkle_root(txids),
            time=solution.header_timestamp,
            bits=template.bits,
            nonce=solution.header_nonce,
        )
        block = b"".join(
            (
                header.serialize(),
                encode_compact_size(len(txids)),
                solution.coinbase_tx,
                *(tx.entry.tx.serialize(with_witness=True) for tx in template.transactions),
            )
        )
        # The coinbase parsed and the rest comes from the node itself, so the node can decode
        # the block: its verdict is an answer, never an RPC error.
        result = self.node.submit_block(block)
        self.solutions.append(Solution(solution, header.hash, result))
        log.info(
            "SubmitSolution template={id} block={hash}: {result}",
            id=solution.template_id,
            hash=display_hex(header.hash),
            result=result or "connected",
        )


def new_template(template_id: int, template: BlockTemplate, *, future: bool = True) -> NewTemplate:
    """The NewTemplate sv2-tp would send for ``template`` (PROTOCOL.md §11): future on a new tip,
    non-future on a mempool change."""
    commitment = TxOut(0, template.witness_commitment_script)
    return NewTemplate(
        template_id=template_id,
        future_template=future,
        version=template.version,
        coinbase_tx_version=COINBASE_TX_VERSION,
        coinbase_prefix=bip34_height_push(template.height),
        coinbase_tx_input_sequence=SEQUENCE_NONFINAL,
        coinbase_tx_value_remaining=template.coinbase_value,
        coinbase_tx_outputs_count=1,
        coinbase_tx_outputs=commitment.serialize(),
        coinbase_tx_locktime=template.height - 1,
        merkle_path=tuple(merkle_path([tx.entry.txid for tx in template.transactions])),
    )
