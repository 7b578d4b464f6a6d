"""MergeMiningCoordinator (SEED-API.md): live aux work for every secondary chain, and proofs.

Per configured chain it keeps the block ``createauxblock`` hands out: asked again every
``refresh_interval`` seconds and whenever the chain's tip moves (``getblockchaininfo`` every
``poll_interval`` seconds, and at once after we mined one of its blocks).  The blocks of the
chains that answer make one :class:`~sv2proxy.merge_mining.work.AuxWork`; whenever it changes,
the job source is told (:meth:`on_work_changed`) and rebuilds its jobs with the new commitment.

A chain that is down, slow (no answer within ``timeout``) or answers garbage drops out of the
tree with its reason logged once, and comes back when it answers again: Bitcoin work never
waits for an aux chain.  Each job remembers the AuxWork its coinbase commits to
(:meth:`work_built`), so a share (:meth:`aux_share`, called by the mining service for every
accepted share) is checked against the aux targets of exactly what it committed to; one that
meets a chain's target becomes an AuxPoW proof, verified here and submitted with
``submitauxblock``; an accepted one publishes :class:`~sv2proxy.events.MergeMiningReward`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from sv2proxy.bitcoin.hashing import merkle_root_from_path, sha256d
from sv2proxy.bitcoin.serialize import BlockHeader
from sv2proxy.bitcoin.target import MAX_TARGET, target_to_u256, u256_to_target
from sv2proxy.events import EventBus, MergeMiningReward
from sv2proxy.merge_mining.rpc import AuxChainRPC
from sv2proxy.merge_mining.slot import MAX_TREE_HEIGHT, plan_tree
from sv2proxy.merge_mining.verify import AuxPowInvalid, check_auxpow
from sv2proxy.merge_mining.work import AuxBlock, AuxWork
from sv2proxy.template.rpc import NodeError

if TYPE_CHECKING:
    from twisted.web.client import HTTPConnectionPool

    from sv2proxy.codec.mining import SubmitSharesExtended, SubmitSharesStandard
    from sv2proxy.config import MergeMiningConfig
    from sv2proxy.pool.jobs import ChannelJob

log = Logger()

#: How many jobs' AuxWork is kept for shares that arrive a little late (as many as templates).
KEPT_WORK = 64


@dataclass(frozen=True, slots=True)
class SecondaryChain:
    """A secondary chain as :meth:`MergeMiningCoordinator.get_secondary_chains` lists it."""

    name: str
    #: The target its blocks need, as 32 bytes little-endian (a Stratum V2 U256).
    target_hash: bytes
    chain_id: int | None = None
    #: The height of the block being mined for it; None while it has no work.
    height: int | None = None
    #: Whether its block is in the current commitment.
    live: bool = False
    #: Why it is not, when it is not.
    reason: str = ""
    blocks_found: int = 0


@dataclass(slots=True)
class _Chain:
    name: str
    target: int
    client: AuxChainRPC | None = None
    block: AuxBlock | None = None
    reason: str = "no work yet"
    busy: bool = False
    found: int = 0
    tips_seen: set[bytes] = field(default_factory=set)


class MergeMiningCoordinator(Service):
    """Aux chains, their work, the commitment jobs carry, and the proofs shares become."""

    name = "merge-mining"

    def __init__(
        self,
        node_api: Any = None,
        *,
        clock: IReactorTime | None = None,
        events: EventBus | None = None,
        refresh_interval: float = 30.0,
        poll_interval: float = 1.0,
    ) -> None:
        self.node_api = node_api
        if clock is None:
            from twisted.internet import reactor

            clock = reactor  # type: ignore[assignment]
        assert clock is not None
        self.clock = clock
        if events is None:
            events = getattr(node_api, "events", None) or EventBus()
        self.events = events
        self.refresh_interval = refresh_interval
        self.poll_interval = poll_interval
        #: The aux work jobs built from now on commit to; None while no chain has work.
        self.work: AuxWork | None = None
        self._chains: dict[str, _Chain] = {}
        self._by_source: OrderedDict[int, AuxWork] = OrderedDict()
        self._listeners: list[Callable[[AuxWork | None], None]] = []
        self._tasks: set[Deferred[Any]] = set()
        self._poll = LoopingCall(self._poll_tips)
        self._poll.clock = clock
        self._refresh = LoopingCall(self.refresh_all)
        self._refresh.clock = clock
        self.proofs_submitted = 0
        #: The HTTP connection pool of the chains' clients, closed on stop (set by the factory).
        self.http_pool: HTTPConnectionPool | None = None

    # -- the seed API ----------------------------------------------------------------------

    def add_secondary_chain(self, name: str, target_hash: bytes, *, client: AuxChainRPC | None = None) -> None:
        """Register an aux chain; ``target_hash`` (32 bytes LE) is the target its blocks need
        until its node says otherwise.  With ``client`` its work is fetched and mined; without,
        it is listed but has no block to commit to."""
        if not name or name in self._chains:
            raise ValueError(f"aux chain names must be unique and non-empty, got {name!r}")
        if client is not None and any(
            c.client is not None and c.client.chain_id == client.chain_id for c in self._chains.values()
        ):
            raise ValueError(f"aux chain {name}: chain id {client.chain_id} is already taken")
        if client is not None:
            ids = [c.client.chain_id for c in self._chains.values() if c.client is not None]
            try:
                plan_tree([*ids, client.chain_id])
            except ValueError:
                # Ids agreeing modulo 2**30 want one slot in every tree an aux chain accepts.
                raise ValueError(
                    f"aux chain {name}: chain id {client.chain_id} takes the same merged-mining slot as"
                    f" chain ids {ids} in every tree of up to 2**{MAX_TREE_HEIGHT} leaves"
                ) from None
        self._chains[name] = _Chain(name, u256_to_target(target_hash), client)
        if client is None:
            self._chains[name].reason = "no RPC client: nothing to mine"
        if self.running and client is not None:
            self._refresh_chain(self._chains[name])

    def get_secondary_chains(self) -> list[SecondaryChain]:
        """Every registered chain, in registration order."""
        live = {block.chain for block in self.work.blocks} if self.work is not None else set()
        out = []
        for chain in self._chains.values():
            block = chain.block
            out.append(
                SecondaryChain(
                    name=chain.name,
                    target_hash=target_to_u256(block.target if block is not None else chain.target),
                    chain_id=chain.client.chain_id if chain.client is not None else None,
                    height=block.height if block is not None else None,
                    live=chain.name in live,
                    reason="" if chain.name in live else chain.reason,
                    blocks_found=chain.found,
                )
            )
        return out

    # -- lifecycle -------------------------------------------------------------------------

    def startService(self) -> None:  # noqa: N802
        super().startService()
        self._poll.start(self.poll_interval, now=False).addErrback(self._timer_died, "tip poll")
        self._refresh.start(self.refresh_interval, now=True).addErrback(self._timer_died, "refresh")

    @staticmethod
    def _timer_died(failure: Failure, what: str) -> None:
        log.failure("the merge-mining {what} stopped", failure, what=what)

    def stopService(self) -> Deferred[None] | None:  # noqa: N802
        super().stopService()
        for loop in (self._poll, self._refresh):
            if loop.running:
                loop.stop()
        for task in list(self._tasks):
            task.cancel()
        if self.http_pool is not None:
            return self.http_pool.closeCachedConnections()
        return None

    # -- for the job source ----------------------------------------------------------------

    def on_work_changed(self, listener: Callable[[AuxWork | None], None]) -> Callable[[], None]:
        """Call ``listener(work)`` whenever :attr:`work` changes; returns an unsubscriber."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def work_built(self, source_id: int, work: AuxWork | None) -> None:
        """The job source built work ``source_id`` whose coinbase commits to ``work``."""
        if work is None:
            self._by_source.pop(source_id, None)
            return
        self._by_source[source_id] = work
        while len(self._by_source) > KEPT_WORK:
            self._by_source.popitem(last=False)

    # -- from the mining service: every accepted share -------------------------------------

    def aux_share(self, job: ChannelJob, share: SubmitSharesStandard | SubmitSharesExtended, share_hash: bytes) -> None:
        """An accepted share of ``job``: submit a proof to every aux chain whose target it meets."""
        work = self._by_source.get(job.work.source_id)
        if work is None:
            return
        met = work.blocks_met(share_hash)
        if not met:
            return
        prev = job.prev
        if prev is None:
            return
        rolled: bytes = getattr(share, "extranonce", b"")
        coinbase = job.work.coinbase_prefix + job.extranonce_prefix + rolled + job.work.coinbase_suffix
        root = merkle_root_from_path(sha256d(coinbase), job.work.merkle_path)
        header = BlockHeader(share.version, prev.prev_hash, root, share.ntime, prev.nbits, share.nonce).serialize()
        if sha256d(header) != share_hash:
            log.error("merge mining: the share's header does not rebuild to its hash; no aux proof")
            return
        for index in met:
            block = work.blocks[index]
            chain = self._chains.get(block.chain)
            if chain is None or chain.client is None:
                continue
            proof = work.proof(index, coinbase, job.work.merkle_path, header)
            try:
                check_auxpow(proof, block.hash, block.chain_id, block.target)
            except AuxPowInvalid as e:
                log.error(
                    "aux proof for {chain} fails our own check ({reason}); not submitted", chain=block.chain, reason=e
                )
                continue
            self._track(self._submit(chain, block, proof.serialize().hex()))

    # -- internals -------------------------------------------------------------------------

    def _track(self, coroutine: Any) -> None:
        task: Deferred[Any] = ensureDeferred(coroutine)
        self._tasks.add(task)

        def done(result: object) -> None:
            self._tasks.discard(task)
            if isinstance(result, Failure) and not result.check(CancelledError):
                log.failure("merge mining task failed", result)

        task.addBoth(done)

    async def _submit(self, chain: _Chain, block: AuxBlock, auxpow_hex: str) -> None:
        assert chain.client is not None
        self.proofs_submitted += 1
        try:
            accepted = await chain.client.submitauxblock(block.display_hash, auxpow_hex)
        except NodeError as e:
            log.warn(
                "aux block {hash} for {chain} at height {height} not taken: {error}",
                hash=block.display_hash,
                chain=chain.name,
                height=block.height,
                error=e,
            )
            return
        if not accepted:
            log.error("aux block {hash} REJECTED by {chain}", hash=block.display_hash, chain=chain.name)
            return
        chain.found += 1
        log.info(
            "aux block {hash} accepted by {chain} at height {height} (reward {amount})",
            hash=block.display_hash,
            chain=chain.name,
            height=block.height,
            amount=block.coinbase_value,
        )
        self.events.publish(MergeMiningReward(chain.name, block.height, block.coinbase_value, block.display_hash))
        # Our block is its new tip: mine on it at once.
        self._refresh_chain(chain)

    def refresh_all(self) -> None:
        """Ask every chain for its current block (the timer; also callable at will)."""
        for chain in self._chains.values():
            self._refresh_chain(chain)

    def _refresh_chain(self, chain: _Chain) -> None:
        if chain.client is None or chain.busy:
            return
        chain.busy = True
        self._track(self._fetch(chain))

    async def _fetch(self, chain: _Chain) -> None:
        assert chain.client is not None
        try:
            block = await chain.client.createauxblock()
        except NodeError as e:
            self._drop(chain, str(e))
            return
        except Exception as e:  # noqa: BLE001 -- nothing an aux node says may stop Bitcoin work
            self._drop(chain, f"{e.__class__.__name__}: {e}")
            return
        finally:
            chain.busy = False
        if chain.block is None:
            log.info(
                "aux chain {chain} live: mining height {height} (chain id {chain_id})",
                chain=chain.name,
                height=block.height,
                chain_id=block.chain_id,
            )
        chain.block = block
        chain.reason = ""
        self._rebuild()

    def _drop(self, chain: _Chain, reason: str) -> None:
        was_live = chain.block is not None
        chain.block = None
        if was_live or chain.reason != reason:
            log.warn(
                "aux chain {chain} dropped from merge mining: {reason} (Bitcoin work goes on)",
                chain=chain.name,
                reason=reason,
            )
        chain.reason = reason
        if was_live:
            self._rebuild()

    def _poll_tips(self) -> None:
        for chain in self._chains.values():
            if chain.client is not None and not chain.busy:
                chain.busy = True
                self._track(self._check_tip(chain))

    async def _check_tip(self, chain: _Chain) -> None:
        assert chain.client is not None
        try:
            tip = await chain.client.best_block_hash()
        except NodeError as e:
            chain.busy = False
            self._drop(chain, str(e))
            return
        except Exception as e:  # noqa: BLE001
            chain.busy = False
            self._drop(chain, f"{e.__class__.__name__}: {e}")
            return
        chain.busy = False
        if chain.block is None or chain.block.prev_hash != tip:
            self._refresh_chain(chain)

    def _rebuild(self) -> None:
        blocks = [c.block for c in self._chains.values() if c.block is not None]
        if self.work is not None and self.work.same_blocks(blocks):
            return
        if not blocks and self.work is None:
            return
        self.work = AuxWork(tuple(blocks)) if blocks else None
        log.info(
            "aux work now commits to {count} chain(s): {chains}",
            count=len(blocks),
            chains=", ".join(f"{b.chain}@{b.height}" for b in blocks) or "none",
        )
        for listener in tuple(self._listeners):
            try:
                listener(self.work)
            except Exception:
                log.failure("a merge-mining work listener failed")


def merge_mining_service(config: MergeMiningConfig, reactor: Any, events: EventBus) -> MergeMiningCoordinator:
    """The coordinator for the ``merge_mining`` section: one RPC client per configured chain."""
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool

    from sv2proxy.template.rpc import BitcoinCoreRPC, RPCAuth

    coordinator = MergeMiningCoordinator(
        clock=reactor,
        events=events,
        refresh_interval=config.refresh_interval,
        poll_interval=config.poll_interval,
    )
    pool = HTTPConnectionPool(reactor, persistent=True)
    http = HTTPClient(Agent(reactor, pool=pool))
    for chain in config.chains:
        rpc = BitcoinCoreRPC(chain.rpc_url, RPCAuth(chain.rpc_user, chain.rpc_password), http, reactor, config.timeout)
        client = AuxChainRPC(rpc, chain.name, chain.chain_id, chain.payout_address)
        coordinator.add_secondary_chain(chain.name, target_to_u256(MAX_TARGET), client=client)
    coordinator.http_pool = pool
    return coordinator
