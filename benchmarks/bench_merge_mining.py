"""Merge mining's per-share cost (issue 7): shares/s through the mining service with 0, 1 and 4
aux chains.

Each share goes the daemon's whole way (MiningService.submit: validation, batching, events) on
an extended channel with a 12-node merkle path; with aux chains the coinbase carries the
commitment and every accepted share is also checked against the aux targets (mainnet-like, so
no share meets them and no proof is built: the steady-state cost).  Goal: at most 10% fewer
shares/s with 4 chains than with none.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable

from benchmarks import Row, rates
from sv2proxy.bitcoin.coinbase import build_coinbase
from sv2proxy.bitcoin.hashing import sha256d
from sv2proxy.bitcoin.target import MAX_TARGET, target_from_nbits, target_to_u256
from sv2proxy.codec.mining import OpenExtendedMiningChannel, SubmitSharesExtended
from sv2proxy.events import EventBus
from sv2proxy.merge_mining.coordinator import MergeMiningCoordinator
from sv2proxy.merge_mining.work import AuxBlock, AuxWork
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.pool.manager import PoolSettings
from sv2proxy.pool.vardiff import VardiffConfig
from sv2proxy.server.mining import MiningService

NOW = 1_800_000_000
OVERHEAD_GOAL = 10.0  # percent, at 4 chains
AUX_TARGET = target_from_nbits(0x1A00FFFF)  # far harder than any share here
SCRIPT = bytes.fromhex("0014") + bytes(20)


class _Owner:
    def sendMessage(self, message: object) -> None:  # noqa: N802
        pass


def _submitter(chains: int) -> Callable[[], object]:
    from twisted.internet.task import Clock

    clock = Clock()
    clock.advance(NOW)
    events = EventBus()
    # A difficulty so low that every share is accepted: each one pays the aux check.
    mining = MiningService(clock, events, PoolSettings(vardiff=VardiffConfig(min_difficulty=1e-10)))
    owner = _Owner()
    mining.open_channel(owner, OpenExtendedMiningChannel(1, "bench", 1e-3, target_to_u256(MAX_TARGET), 8))
    aux = None
    if chains:
        blocks = tuple(
            AuxBlock(f"aux{i}", i + 1, sha256d(bytes([i])), AUX_TARGET, 100, 5_000_000_000, sha256d(b"p"))
            for i in range(chains)
        )
        aux = AuxWork(blocks)
        coordinator = MergeMiningCoordinator(clock=clock, events=events)
        coordinator.work_built(1, aux)
        mining.aux_sink = coordinator
    coinbase = build_coinbase(
        extranonce_size=16,
        payouts=((SCRIPT, 5_000_000_000),),
        height=900_000,
        pool_tag=b"/sv2proxy/",
        aux_push=aux.script_push if aux is not None else b"",
    )
    path = tuple(hashlib.sha256(bytes([i])).digest() for i in range(12))
    work = Work(1, 0x20000000, True, coinbase.prefix, coinbase.suffix, path, future=True)
    job_id = mining.new_tip(work, PrevHash(hashlib.sha256(b"tip").digest(), NOW - 10, 0x1D00FFFF))
    channel = next(iter(mining.manager.channels.values()))
    rolled = bytes(channel.rollable_size)
    nonces = itertools.count()

    def one() -> object:
        nonce = next(nonces)
        # A fresh nonce space per 2**32 shares keeps every share new (no duplicates).
        share = SubmitSharesExtended(
            channel.channel_id, nonce & 0xFFFF_FFFF, job_id, nonce & 0xFFFF_FFFF, NOW, 0x20000000, rolled
        )
        return mining.submit(owner, share)

    return one


def run(quick: bool) -> list[Row]:
    none, one, four = rates(_submitter(0), _submitter(1), _submitter(4), quick=quick)
    return [
        Row("shares/s through MiningService.submit, 0 aux chains", none, "shares/s"),
        Row("shares/s through MiningService.submit, 1 aux chain", one, "shares/s"),
        Row("shares/s through MiningService.submit, 4 aux chains", four, "shares/s"),
        Row("  merge-mining cost at 4 chains", 100 * (1 - four / none), "%", OVERHEAD_GOAL, lower_is_better=True),
    ]
