"""MergeMiningCoordinator on a Clock, with AuxNodes answering in memory (their real resource).

Aux work is fetched at start, on the timer and when a tip moves; a chain that is down, slow or
answers garbage drops out of the commitment and comes back; a share meeting an aux target
becomes a proof the AuxNode accepts, and a MergeMiningReward.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from merge_mining.fakes import Peer
from sv2proxy.bitcoin.coinbase import build_coinbase
from sv2proxy.bitcoin.hashing import merkle_root_from_path, sha256d
from sv2proxy.bitcoin.serialize import BlockHeader
from sv2proxy.bitcoin.target import MAX_TARGET, target_to_u256
from sv2proxy.codec.mining import SubmitSharesExtended
from sv2proxy.events import EventBus, MergeMiningReward
from sv2proxy.merge_mining.coordinator import MergeMiningCoordinator
from sv2proxy.merge_mining.work import AuxWork
from sv2proxy.pool.jobs import ChannelJob, PrevHash, Work

SCRIPT = bytes.fromhex("0014") + bytes(20)


class Rig:
    def __init__(self, *chain_ids: int) -> None:
        self.clock = Clock()
        self.events = EventBus()
        self.rewards: list[MergeMiningReward] = []
        self.events.subscribe(MergeMiningReward, self.rewards.append)
        self.coordinator = MergeMiningCoordinator(
            clock=self.clock, events=self.events, refresh_interval=30, poll_interval=1
        )
        self.peers = [Peer(self.clock, cid, name=f"chain{cid}") for cid in chain_ids]
        for peer in self.peers:
            self.coordinator.add_secondary_chain(peer.client.chain, target_to_u256(MAX_TARGET), client=peer.client)
        self.changes: list[AuxWork | None] = []
        self.coordinator.on_work_changed(self.changes.append)

    def settle(self, seconds: float = 0) -> None:
        """Let time pass and every in-memory HTTP exchange finish."""
        if seconds:
            self.clock.advance(seconds)
        for _ in range(5):
            for peer in self.peers:
                peer.stub.flush()

    def live(self) -> list[str]:
        work = self.coordinator.work
        return [block.chain for block in work.blocks] if work is not None else []


@pytest.fixture
def rig() -> Rig:
    rig = Rig(1, 2)
    rig.coordinator.startService()
    rig.settle()
    yield rig
    rig.coordinator.stopService()
    assert not rig.clock.getDelayedCalls()


def test_work_for_every_chain_at_start(rig: Rig) -> None:
    assert rig.live() == ["chain1", "chain2"]
    assert rig.changes[-1] is rig.coordinator.work
    chains = rig.coordinator.get_secondary_chains()
    assert [(c.name, c.chain_id, c.height, c.live) for c in chains] == [
        ("chain1", 1, 1, True),
        ("chain2", 2, 1, True),
    ]


def test_a_new_tip_is_new_work_within_a_poll(rig: Rig) -> None:
    before = rig.coordinator.work
    rig.peers[0].node.mine_block()
    rig.settle(1)
    after = rig.coordinator.work
    assert after is not before and after is not None
    assert [b.height for b in after.blocks] == [2, 1]


def test_nothing_changes_nothing_is_rebuilt(rig: Rig) -> None:
    count = len(rig.changes)
    rig.settle(1)
    rig.settle(30)
    assert len(rig.changes) == count


@pytest.mark.parametrize("trouble", ["garbage", "hang", "down"])
def test_a_chain_in_trouble_drops_out_and_comes_back(rig: Rig, trouble: str) -> None:
    peer = rig.peers[1]
    if trouble == "down":
        peer.rpc.url = "http://127.0.0.1:1/"  # nobody there
        peer.rpc._http = _Refusing()  # noqa: SLF001 -- a refused connection, without a reactor
    else:
        peer.node.misbehave = trouble
    rig.settle(1)
    rig.settle(5)  # a hanging call times out
    assert rig.live() == ["chain1"]
    status = {c.name: c for c in rig.coordinator.get_secondary_chains()}
    assert not status["chain2"].live and status["chain2"].reason
    assert rig.changes[-1] is rig.coordinator.work
    # Back to health: it rejoins at the next poll.
    if trouble == "down":
        peer.rpc._http = peer.stub  # noqa: SLF001
    peer.node.misbehave = None
    rig.settle(1)
    rig.settle(1)
    assert rig.live() == ["chain1", "chain2"]


class _Refusing:
    def post(self, *args: object, **kwargs: object) -> object:
        from twisted.internet.defer import fail
        from twisted.internet.error import ConnectionRefusedError

        return fail(ConnectionRefusedError())


def _job_and_share(work: AuxWork, target_hit: bool) -> tuple[ChannelJob, SubmitSharesExtended, bytes]:
    """A job whose coinbase commits to ``work``, and a share of it (meeting or missing the aux target)."""
    coinbase = build_coinbase(extranonce_size=8, payouts=((SCRIPT, 50),), height=300, aux_push=work.script_push)
    path = (sha256d(b"tx1"),)
    pool_work = Work(7, 0x20000000, True, coinbase.prefix, coinbase.suffix, path, future=True)
    job = ChannelJob(1, pool_work, MAX_TARGET, b"\x00\x00\x00\x01", standard=False)
    job.bind(PrevHash(sha256d(b"parent tip"), 1_700_000_000, 0x207FFFFF))
    for nonce in range(1000):
        rolled = b"\x00" * 4
        cb = coinbase.prefix + b"\x00\x00\x00\x01" + rolled + coinbase.suffix
        root = merkle_root_from_path(sha256d(cb), path)
        header = BlockHeader(0x20000000, job.prev.prev_hash, root, 1_700_000_000, 0x207FFFFF, nonce)
        value = int.from_bytes(header.hash, "little")
        if (value <= work.loosest_target) == target_hit:
            share = SubmitSharesExtended(1, 0, 1, nonce, 1_700_000_000, 0x20000000, rolled)
            return job, share, header.hash
    raise AssertionError("no nonce found")


def test_a_share_meeting_the_aux_targets_mines_both_chains(rig: Rig) -> None:
    work = rig.coordinator.work
    assert work is not None
    job, share, share_hash = _job_and_share(work, target_hit=True)
    rig.coordinator.work_built(job.work.source_id, work)
    rig.coordinator.aux_share(job, share, share_hash)
    rig.settle()
    assert [peer.node.height for peer in rig.peers] == [1, 1]
    assert [(r.chain, r.height, r.amount) for r in rig.rewards] == [
        ("chain1", 1, 50 * 10**8),
        ("chain2", 1, 50 * 10**8),
    ]
    # Both chains moved on: the next work is for height 2, straight away.
    rig.settle()
    assert [b.height for b in rig.coordinator.work.blocks] == [2, 2]
    assert [c.blocks_found for c in rig.coordinator.get_secondary_chains()] == [1, 1]


def test_a_share_missing_the_aux_targets_costs_nothing(rig: Rig) -> None:
    work = rig.coordinator.work
    job, share, share_hash = _job_and_share(work, target_hit=False)
    rig.coordinator.work_built(job.work.source_id, work)
    rig.coordinator.aux_share(job, share, share_hash)
    rig.settle()
    assert rig.coordinator.proofs_submitted == 0 and rig.rewards == []


def test_a_share_of_work_without_aux_commitment_is_ignored(rig: Rig) -> None:
    job, share, share_hash = _job_and_share(rig.coordinator.work, target_hit=True)
    rig.coordinator.aux_share(job, share, share_hash)  # work_built was never told about it
    rig.settle()
    assert rig.coordinator.proofs_submitted == 0


def test_a_stale_aux_block_is_logged_not_fatal(rig: Rig) -> None:
    work = rig.coordinator.work
    job, share, share_hash = _job_and_share(work, target_hit=True)
    rig.coordinator.work_built(job.work.source_id, work)
    rig.peers[0].node.mine_block()  # chain1 moved on before our share came in
    rig.coordinator.aux_share(job, share, share_hash)
    rig.settle()
    assert [r.chain for r in rig.rewards] == ["chain2"]
    assert rig.peers[0].node.height == 1  # only the other miner's block


def test_seed_api_registration() -> None:
    coordinator = MergeMiningCoordinator(clock=Clock())
    coordinator.add_secondary_chain("static", target_to_u256(1 << 240))
    (chain,) = coordinator.get_secondary_chains()
    assert chain.name == "static" and chain.target_hash == target_to_u256(1 << 240) and not chain.live
    assert "no RPC client" in chain.reason
    with pytest.raises(ValueError, match="unique"):
        coordinator.add_secondary_chain("static", target_to_u256(1))
    peer = Peer(Clock(), 5)
    coordinator.add_secondary_chain("a", target_to_u256(1), client=peer.client)
    with pytest.raises(ValueError, match="chain id 5"):
        coordinator.add_secondary_chain("b", target_to_u256(1), client=Peer(Clock(), 5).client)


def test_chain_ids_that_no_tree_can_part_are_refused_at_registration() -> None:
    # Ids agreeing modulo 2**30 collide in every tree Namecoin allows (branch <= 30): the
    # second chain can never share a commitment with the first.  Accepted, it would make every
    # later rebuild fail and freeze the commitment on the first chain's stale block.
    coordinator = MergeMiningCoordinator(clock=Clock())
    coordinator.add_secondary_chain("a", target_to_u256(1), client=Peer(Clock(), 1).client)
    with pytest.raises(ValueError, match="chain id"):
        coordinator.add_secondary_chain("b", target_to_u256(1), client=Peer(Clock(), 1 + (1 << 31)).client)
    assert [c.name for c in coordinator.get_secondary_chains()] == ["a"]
