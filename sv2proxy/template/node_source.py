"""Pool mode's job source and block sink: a Bitcoin Core node over JSON-RPC.

Templates come from ``getblocktemplate`` with longpoll, so a new block or a mempool change
reaches miners at once; a fast ``getbestblockhash`` poll beside it catches a new tip even when
longpoll is slow or unsupported.  A new tip becomes future work plus its SetNewPrevHash; a new
template on the same tip becomes work that applies at once.  A node that fails (unreachable,
HTTP 500, timeouts, warming up, syncing) is logged and retried with backoff while miners keep
the last good work; it never stops the daemon.

Found blocks are rebuilt from the template they were mined on, made durable on disk, then
submitted and retried until the node answers; pending ones are submitted again after a
restart.  Every answer (``duplicate``, ``inconclusive``, ``high-hash``, ...) is logged.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import HTTPConnectionPool

from sv2proxy.bitcoin.hashing import display_hex
from sv2proxy.bitcoin.script import bip34_height_from_script_sig
from sv2proxy.errors import MiningJobError
from sv2proxy.events import BlockSubmitted, BlockTemplateUpdated, EventBus
from sv2proxy.merge_mining.coordinator import MergeMiningCoordinator
from sv2proxy.merge_mining.work import AuxWork
from sv2proxy.pool.jobs import Work
from sv2proxy.server.mining import FoundBlock, MiningService
from sv2proxy.template.block_template import BlockTemplate
from sv2proxy.template.found_blocks import FoundBlockJournal
from sv2proxy.template.job_factory import BlockAssembler, JobFactory
from sv2proxy.template.rpc import BitcoinCoreRPC, NodeError, NodeTimeout, RPCAuth

log = Logger()

LONGPOLL_TIMEOUT = 120.0
MAX_RETRY_DELAY = 30.0
#: How many of the newest templates keep their assemblers (one per solo payout each): shares
#: may arrive for jobs a little older than the newest.
KEPT_TEMPLATES = 32


class NodeJobSource(Service):
    """Work from a node's templates; found blocks back to the node."""

    name = "node"

    def __init__(
        self,
        rpc: BitcoinCoreRPC,
        factory: JobFactory,
        mining: MiningService,
        journal: FoundBlockJournal,
        clock: IReactorTime,
        events: EventBus,
        tip_poll_interval: float = 1.0,
        ready: Callable[[], Deferred[tuple[str, Path]]] | None = None,
        http_pool: HTTPConnectionPool | None = None,
        merge_mining: MergeMiningCoordinator | None = None,
    ) -> None:
        self.rpc = rpc
        self.factory = factory
        self.mining = mining
        self.journal = journal
        self.clock = clock
        self.events = events
        self.tip_poll_interval = tip_poll_interval
        # For a node started by the daemon itself (the demo): where its RPC is, once it runs.
        self._ready = ready
        self._http_pool = http_pool
        # Merge mining: the aux commitment every coinbase carries, and shares that meet aux targets.
        self.merge_mining = merge_mining
        self._aux_unsubscribe: Callable[[], None] = lambda: None
        self._tasks: set[Deferred[None]] = set()
        self.template: BlockTemplate | None = None
        self._source_ids = itertools.count(1)
        self._assemblers: OrderedDict[tuple[int, bytes | None], BlockAssembler] = OrderedDict()
        self._fetching: Deferred[Any] | None = None
        self._loop: Deferred[None] | None = None
        self._tip_poll = LoopingCall(self._poll_tip)
        self._tip_poll.clock = clock
        self._failures = 0
        self._longpolling = False

    # -- lifecycle -------------------------------------------------------------------------

    def startService(self) -> None:  # noqa: N802
        super().startService()
        self.mining.block_sink = self
        if self.merge_mining is not None:
            self.mining.aux_sink = self.merge_mining
            self._aux_unsubscribe = self.merge_mining.on_work_changed(self._aux_work_changed)
        self.journal.prepare()
        self._loop = ensureDeferred(self._template_loop())
        self._loop.addErrback(self._loop_ended)
        self._tip_poll.start(self.tip_poll_interval, now=False).addErrback(
            lambda failure: log.failure("the tip poll stopped", failure)
        )

    @staticmethod
    def _loop_ended(failure: Failure) -> None:
        if not failure.check(CancelledError):  # a stop cancels the loop: that is no failure
            log.failure("the template loop stopped", failure)

    def stopService(self) -> Deferred[None] | None:  # noqa: N802
        super().stopService()
        self._aux_unsubscribe()
        if self._tip_poll.running:
            self._tip_poll.stop()
        if self._fetching is not None:
            self._fetching.cancel()
        if self._loop is not None:
            self._loop.cancel()
        # Submissions still retrying stop here; their blocks stay in the journal for next start.
        for task in list(self._tasks):
            task.cancel()
        if self._http_pool is not None:
            return self._http_pool.closeCachedConnections()
        return None

    # -- templates -------------------------------------------------------------------------

    async def _template_loop(self) -> None:
        if self._ready is not None:
            try:
                url, cookie = await self._ready()
            except CancelledError:
                raise
            except Exception as e:
                log.critical("no template source: the embedded node did not start ({error})", error=e)
                return
            self.rpc.url = url
            self.rpc.auth = RPCAuth(cookie_file=cookie)
        # Only now is it known which node blocks go to: resubmit what a restart interrupted.
        for block_hash, block_hex in self.journal.pending():
            log.warn("resubmitting block {hash} found before the restart", hash=block_hash)
            self._submit_until_answered(block_hash, block_hex)
        longpollid: str | None = None
        while self.running:
            self._longpolling = longpollid is not None
            try:
                self._fetching = ensureDeferred(
                    self.rpc.getblocktemplate(longpollid, timeout=LONGPOLL_TIMEOUT if longpollid else None)
                )
                result = await self._fetching
            except CancelledError:
                if not self.running:
                    return
                longpollid = None  # the tip poll saw a new block: fetch at once
                continue
            except NodeTimeout as e:
                if longpollid is not None:
                    # Core holds a long poll until the tip or (after a while) the mempool
                    # changes; on a quiet chain running out of time is normal: ask again.
                    continue
                await self._back_off(f"getblocktemplate failed: {e}")
                continue
            except NodeError as e:
                longpollid = None
                await self._back_off(f"getblocktemplate failed: {e}")
                continue
            except Exception:
                # Nothing may end this loop: miners would mine a stale tip for good.
                log.failure("unexpected error fetching a template")
                longpollid = None
                await self._back_off("unexpected error fetching a template")
                continue
            finally:
                self._fetching = None
            try:
                template = BlockTemplate.from_getblocktemplate(result)
                self._install(template)
            except (ValueError, MiningJobError) as e:
                await self._back_off(f"unusable template from the node: {e}")
                continue
            if self._failures:
                log.info("the node answers again after {count} failures", count=self._failures)
                self._failures = 0
            # The next request (and the node's answer, for a node in this process) waits until
            # every miner has this work: it would only take reactor time from the fan-out, and
            # a tip that moves meanwhile is still seen, since the long poll id is the old one.
            await self.mining.when_delivered()
            longpollid = result.get("longpollid")
            if not isinstance(longpollid, str):
                longpollid = None
                await deferLater(self.clock, self.tip_poll_interval, lambda: None)

    async def _back_off(self, why: str) -> None:
        self._failures += 1
        delay = min(MAX_RETRY_DELAY, 0.5 * 2 ** min(self._failures, 6))
        log.warn("{why}; retrying in {delay:.1f} s (miners keep the last work)", why=why, delay=delay)
        await deferLater(self.clock, delay, lambda: None)

    def _install(self, template: BlockTemplate) -> None:
        source_id = next(self._source_ids)
        new_tip = self.template is None or template.prev_hash != self.template.prev_hash
        aux = self.merge_mining.work if self.merge_mining is not None else None
        try:
            work, assembler = self.factory.work_for(
                template, future=new_tip, source_id=source_id, aux_push=aux.script_push if aux else b""
            )
        except ValueError as e:
            if aux is None:
                raise
            # Bitcoin work never depends on the aux chains: without the commitment, then.
            log.error("no room for the merged-mining commitment ({error}); this job mines Bitcoin only", error=e)
            aux = None
            work, assembler = self.factory.work_for(template, future=new_tip, source_id=source_id)
        if self.merge_mining is not None:
            self.merge_mining.work_built(source_id, aux)
        self._assemblers[(source_id, None)] = assembler
        while self._assemblers and next(iter(self._assemblers))[0] <= source_id - KEPT_TEMPLATES:
            self._assemblers.popitem(last=False)
        self.template = template

        def variant(payout: bytes) -> Work:
            # A solo channel's coinbase pays its own script: same template, its own assembler.
            solo, solo_assembler = self.factory.work_for(
                template,
                future=new_tip,
                source_id=source_id,
                payout_script=payout,
                aux_push=aux.script_push if aux else b"",
            )
            self._assemblers[(source_id, payout)] = solo_assembler
            return dataclasses.replace(solo, payout=payout)

        if new_tip:
            self.mining.new_tip(work, self.factory.prev_hash_for(template), variant)
            log.info(
                "new block template height={height} prev={prev} txs={txs} value={value}",
                height=template.height,
                prev=display_hex(template.prev_hash),
                txs=len(template.transactions or ()),
                value=template.coinbase_value,
            )
        else:
            self.mining.new_work(work, variant)
        self.events.publish(BlockTemplateUpdated(template, template_id=source_id, clean=new_tip))

    def _aux_work_changed(self, work: AuxWork | None) -> None:
        """New aux work (a chain's tip moved, or a chain came or went): jobs with its commitment."""
        if self.running and self.template is not None:
            self._install(self.template)

    async def _check_tip(self) -> None:
        try:
            best = await self.rpc.getbestblockhash()
        except NodeError:
            return  # the template loop reports node trouble; no need to say it twice
        except Exception:
            log.failure("unexpected error polling the node's tip")
            return
        if self.template is not None and best != display_hex(self.template.prev_hash):
            fetching = self._fetching
            # Only a long poll waits for a change; a plain fetch already brings the new tip.
            if fetching is not None and self._longpolling:
                fetching.cancel()

    def _poll_tip(self) -> Deferred[None]:
        task = ensureDeferred(self._check_tip())
        self._tasks.add(task)
        task.addBoth(lambda result: (self._tasks.discard(task), None)[1])
        return task

    # -- found blocks ----------------------------------------------------------------------

    def block_found(self, block: FoundBlock) -> None:
        """A miner found a block: rebuild it, make it durable, submit it until answered."""
        assembler = self._assemblers.get((block.source_id, block.payout))
        if assembler is None:
            log.critical(
                "cannot rebuild block {hash}: its template {source} is no longer kept",
                hash=display_hex(block.block_hash),
                source=block.source_id,
            )
            return
        assembled = assembler.assemble(block.extranonce, block.version, block.ntime, block.nonce)
        block_hash = display_hex(assembled.hash)
        if assembled.hash != block.block_hash:
            log.critical(
                "block {hash} rebuilt with a different hash {rebuilt}: not submitted",
                hash=display_hex(block.block_hash),
                rebuilt=block_hash,
            )
            return
        block_hex = assembled.data.hex()
        try:
            self.journal.save(block_hash, block_hex)
        except OSError as e:
            log.critical("cannot write block {hash} to disk ({error}); submitting anyway", hash=block_hash, error=e)
        self._submit_until_answered(block_hash, block_hex, block.worker, *_height_and_reward(assembler))

    def _submit_until_answered(
        self,
        block_hash: str,
        block_hex: str,
        worker: str | None = None,
        height: int | None = None,
        reward: int | None = None,
    ) -> None:
        task = ensureDeferred(self._submit(block_hash, block_hex, worker, height, reward))
        self._tasks.add(task)

        def done(result: object) -> None:
            self._tasks.discard(task)
            if isinstance(result, Failure) and not result.check(CancelledError):
                log.failure("submitting block {hash} failed", result, hash=block_hash)

        task.addBoth(done)

    async def _submit(
        self, block_hash: str, block_hex: str, worker: str | None, height: int | None, reward: int | None
    ) -> None:
        delay = 0.5
        while True:
            try:
                result = await self.rpc.submitblock(block_hex)
                break
            except NodeError as e:
                if e.code is not None and not e.retryable:
                    # The node judged the block (e.g. it cannot decode it): retrying changes nothing.
                    log.error("block {hash} REJECTED by the node: {error}", hash=block_hash, error=e)
                    self._settled(BlockSubmitted(block_hash, False, str(e), height, reward, worker))
                    return
                problem = str(e)
            except Exception as e:
                problem = f"{e.__class__.__name__}: {e}"
            log.error(
                "submitblock {hash} failed: {problem}; retrying in {delay:.1f} s",
                hash=block_hash,
                problem=problem,
                delay=delay,
            )
            await deferLater(self.clock, delay, lambda: None)
            delay = min(MAX_RETRY_DELAY, delay * 2)
        accepted = result in (None, "duplicate")
        if accepted:
            log.info("block {hash} accepted by the node ({result})", hash=block_hash, result=result or "ok")
        elif result == "inconclusive":
            log.warn("block {hash}: the node says inconclusive (valid, not on its best chain yet)", hash=block_hash)
            accepted = True
        else:
            log.error("block {hash} REJECTED by the node: {reason}", hash=block_hash, reason=result)
        reason = "" if accepted else str(result)
        self._settled(BlockSubmitted(block_hash, accepted, reason, height, reward, worker))

    def _settled(self, answer: BlockSubmitted) -> None:
        """The node answered: out of the journal's pending blocks, and told to whoever listens."""
        self.journal.settle(answer.block_hash, answer.accepted, answer.reason)
        self.events.publish(answer)


def _height_and_reward(assembler: BlockAssembler) -> tuple[int | None, int]:
    """The height (BIP34) and the satoshis a block of ``assembler`` pays, for the records."""
    coinbase = assembler.coinbase
    try:
        height: int | None = bip34_height_from_script_sig(coinbase.script_sig_prefix)
    except ValueError:
        height = None
    return height, sum(output.value for output in coinbase.outputs)
