"""The channel manager: ordered messages out for requests in (no I/O, ``now`` values only)."""

from __future__ import annotations

import hashlib

import pytest

from sv2proxy.bitcoin.target import MAX_TARGET, target_to_u256, u256_to_target
from sv2proxy.codec import (
    NewExtendedMiningJob,
    NewMiningJob,
    OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError,
    OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
    SetNewPrevHash,
    SetTarget,
    SubmitSharesError,
    SubmitSharesExtended,
    SubmitSharesStandard,
    SubmitSharesSuccess,
    UpdateChannel,
    UpdateChannelError,
)
from sv2proxy.errors import MiningJobError
from sv2proxy.pool.extranonce import ExtranonceLayout
from sv2proxy.pool.jobs import STALE, PrevHash, Work
from sv2proxy.pool.manager import ChannelManager, PoolSettings
from sv2proxy.pool.vardiff import VardiffConfig

NOW = 1_800_000_000.0
PATH = (hashlib.sha256(b"tx").digest(),)
ANY = target_to_u256(MAX_TARGET)


def work(source_id: int, future: bool = True) -> Work:
    return Work(source_id, 0x20000000, True, b"head", b"tail", PATH, future, None if future else int(NOW))


def prev(tag: bytes = b"tip") -> PrevHash:
    return PrevHash(hashlib.sha256(tag).digest(), int(NOW) - 5, 0x1D00FFFF)


def easy_settings(**kw) -> PoolSettings:
    # Difficulty floor far below 1 so test shares are found in a few hashes.
    return PoolSettings(
        layout=ExtranonceLayout(8, 2), vardiff=VardiffConfig(min_difficulty=1e-9), share_batch_size=3, **kw
    )


def with_tip(manager: ChannelManager) -> None:
    manager.new_work(work(1))
    manager.new_prev_hash(1, prev())


def test_opening_before_any_work_gets_success_only():
    manager = ChannelManager(easy_settings())
    out = manager.open_extended("A", OpenExtendedMiningChannel(5, "w", 0.0, ANY, 4), NOW)
    assert len(out) == 1
    owner, success = out[0]
    assert owner == "A" and isinstance(success, OpenExtendedMiningChannelSuccess)
    assert (success.request_id, success.extranonce_size, len(success.extranonce_prefix)) == (5, 6, 2)


@pytest.mark.parametrize("identity", ["a\u0000b", "rig\n1", "\u001b[2Jrig", "del\u007f"])
@pytest.mark.parametrize("standard", [True, False])
def test_a_user_identity_with_control_characters_is_refused(identity: str, standard: bool):
    """The identity names the worker in logs, the API and the store (PostgreSQL text takes no NUL)."""
    manager = ChannelManager(easy_settings())
    with_tip(manager)
    if standard:
        out = manager.open_standard("A", OpenStandardMiningChannel(3, identity, 1e6, ANY), NOW)
    else:
        out = manager.open_extended("A", OpenExtendedMiningChannel(3, identity, 1e6, ANY, 4), NOW)
    assert out == [("A", OpenMiningChannelError(3, "invalid-user-identity"))]
    assert manager.channels == {}
    # Other text is anyone's choice of name.
    ((_, success), *_) = manager.open_extended("A", OpenExtendedMiningChannel(4, "ünïcode rig ☃", 1e6, ANY, 4), NOW)
    assert isinstance(success, OpenExtendedMiningChannelSuccess)


def test_opening_on_a_tip_gets_a_future_job_then_its_prev_hash():
    manager = ChannelManager(easy_settings())
    with_tip(manager)
    out = [m for _, m in manager.open_standard("A", OpenStandardMiningChannel(1, "w", 1e6, ANY), NOW)]
    assert [type(m) for m in out] == [OpenStandardMiningChannelSuccess, NewMiningJob, SetNewPrevHash]
    assert len(out[0].extranonce_prefix) == 8  # a standard prefix fills the whole extranonce
    assert out[1].min_ntime is None and out[2].job_id == out[1].job_id


def test_open_errors():
    manager = ChannelManager(easy_settings())
    assert manager.open_extended("A", OpenExtendedMiningChannel(1, "w", 1.0, ANY, 7), NOW) == [
        ("A", OpenMiningChannelError(1, "min-extranonce-size-too-large"))
    ]
    assert manager.open_standard("A", OpenStandardMiningChannel(2, "w", float("nan"), ANY), NOW) == [
        ("A", OpenMiningChannelError(2, "invalid-nominal-hashrate"))
    ]
    assert manager.open_standard("A", OpenStandardMiningChannel(3, "w", 1.0, bytes(32)), NOW) == [
        ("A", OpenMiningChannelError(3, "max-target-out-of-range"))
    ]
    capped = ChannelManager(PoolSettings(vardiff=VardiffConfig(max_difficulty=10.0)))
    hard = target_to_u256(MAX_TARGET >> 80)
    assert capped.open_standard("A", OpenStandardMiningChannel(4, "w", 1.0, hard), NOW) == [
        ("A", OpenMiningChannelError(4, "max-target-out-of-range"))
    ]


def test_prefix_space_exhaustion_is_answered_not_raised():
    manager = ChannelManager(PoolSettings(layout=ExtranonceLayout(4, 1), max_channels_per_owner=1000))
    for i in range(256):
        assert isinstance(
            manager.open_standard(i, OpenStandardMiningChannel(i, "w", 1.0, ANY), NOW)[0][1],
            OpenStandardMiningChannelSuccess,
        )
    assert manager.open_standard("B", OpenStandardMiningChannel(9, "w", 1.0, ANY), NOW) == [
        ("B", OpenMiningChannelError(9, "channel-capacity-exhausted"))
    ]
    manager.close(next(iter(manager.channels)))
    assert isinstance(
        manager.open_standard("B", OpenStandardMiningChannel(9, "w", 1.0, ANY), NOW)[0][1],
        OpenStandardMiningChannelSuccess,
    )


def test_work_fans_out_and_a_prev_hash_activates_it_everywhere():
    manager = ChannelManager(easy_settings())
    manager.open_standard("A", OpenStandardMiningChannel(1, "w", 1.0, ANY), NOW)
    manager.open_extended("B", OpenExtendedMiningChannel(2, "w", 1.0, ANY, 4), NOW)
    job_id, out = manager.new_work(work(7))
    assert [(o, type(m)) for o, m in out] == [("A", NewMiningJob), ("B", NewExtendedMiningJob)]
    activated = manager.new_prev_hash(7, prev())
    assert [(o, type(m), m.job_id) for o, m in activated] == [
        ("A", SetNewPrevHash, job_id),
        ("B", SetNewPrevHash, job_id),
    ]
    with pytest.raises(MiningJobError):
        manager.new_prev_hash(99, prev(b"other"))


def test_a_channel_opened_between_future_work_and_its_prev_hash_still_gets_the_job():
    manager = ChannelManager(easy_settings())
    manager.new_work(work(7))
    manager.open_extended("B", OpenExtendedMiningChannel(2, "w", 1.0, ANY, 4), NOW)
    out = [type(m) for _, m in manager.new_prev_hash(7, prev())]
    assert out == [NewExtendedMiningJob, SetNewPrevHash]


def mine_extended(manager: ChannelManager, channel_id: int, job_id: int, start: int = 0) -> SubmitSharesExtended:
    from sv2proxy.pool.validation import validate_share

    channel = manager.channels[channel_id]
    for nonce in range(start, start + 10_000):
        share = SubmitSharesExtended(channel_id, nonce, job_id, nonce, int(NOW), 0x20000000, b"\x00" * 6)
        probe = validate_share(channel, job_id, nonce, int(NOW), 0x20000000, share.extranonce, NOW)
        if probe.error_code is None:
            del channel.seen[probe.hash]
            return share
    raise AssertionError("no share found")


def test_shares_are_answered_errors_at_once_and_successes_in_batches():
    manager = ChannelManager(easy_settings())
    with_tip(manager)
    out = manager.open_extended("B", OpenExtendedMiningChannel(2, "w", 1.0, ANY, 4), NOW)
    channel_id = out[0][1].channel_id
    job_id = out[1][1].job_id

    bad = SubmitSharesExtended(channel_id, 1, job_id + 50, 0, int(NOW), 0x20000000, b"\x00" * 6)
    assert manager.submit("B", bad, NOW)[0] == [("B", SubmitSharesError(channel_id, 1, "invalid-job-id"))]
    stranger = SubmitSharesStandard(channel_id, 2, job_id, 0, int(NOW), 0x20000000)
    assert manager.submit("C", stranger, NOW)[0] == [("C", SubmitSharesError(channel_id, 2, "invalid-channel-id"))]

    replies = []
    nonce = 0
    for _ in range(3):
        share = mine_extended(manager, channel_id, job_id, nonce)
        nonce = share.nonce + 1
        sent, result = manager.submit("B", share, NOW)
        assert result is not None and result.accepted
        replies.extend(sent)
    assert len(replies) == 1
    success = replies[0][1]
    assert isinstance(success, SubmitSharesSuccess)
    assert (success.new_submits_accepted_count, success.last_sequence_number) == (3, nonce - 1)

    share = mine_extended(manager, channel_id, job_id, nonce)
    assert manager.submit("B", share, NOW)[0] == []
    assert manager.tick(NOW + 0.5) == []
    flushed = manager.tick(NOW + 2)
    assert [type(m) for _, m in flushed if isinstance(m, SubmitSharesSuccess)] == [SubmitSharesSuccess]


def test_update_channel_honours_a_lower_maximum_target():
    manager = ChannelManager(easy_settings())
    out = manager.open_extended("B", OpenExtendedMiningChannel(2, "w", 1.0, ANY, 4), NOW)
    channel_id = out[0][1].channel_id
    lower = MAX_TARGET >> 40
    ((owner, answer),) = manager.update_channel("B", UpdateChannel(channel_id, 1.0, target_to_u256(lower)), NOW)
    assert isinstance(answer, SetTarget) and u256_to_target(answer.maximum_target) <= lower
    assert manager.channels[channel_id].target <= lower
    assert manager.update_channel("X", UpdateChannel(channel_id, 1.0, ANY), NOW) == [
        ("X", UpdateChannelError(channel_id, "invalid-channel-id"))
    ]


def test_closing_an_owner_frees_its_channels():
    manager = ChannelManager(easy_settings())
    manager.open_standard("A", OpenStandardMiningChannel(1, "w", 1.0, ANY), NOW)
    manager.open_standard("A", OpenStandardMiningChannel(2, "w", 1.0, ANY), NOW)
    manager.open_standard("B", OpenStandardMiningChannel(3, "w", 1.0, ANY), NOW)
    a_channels = sorted(cid for cid in manager.channels if manager.owner_of(cid) == "A")
    assert manager.close_owner("A") == a_channels and len(a_channels) == 2
    assert [manager.owner_of(cid) for cid in manager.channels] == ["B"]


def test_update_channel_with_an_impossible_maximum_target_is_an_error():
    manager = ChannelManager(PoolSettings(vardiff=VardiffConfig(max_difficulty=10.0)))
    out = manager.open_extended("B", OpenExtendedMiningChannel(2, "w", 1.0, ANY, 4), NOW)
    channel_id = out[0][1].channel_id
    hard = target_to_u256(MAX_TARGET >> 80)
    assert manager.update_channel("B", UpdateChannel(channel_id, 1.0, hard), NOW) == [
        ("B", UpdateChannelError(channel_id, "max-target-out-of-range"))
    ]


def test_vardiff_does_not_ease_a_channel_that_has_nothing_to_mine():
    manager = ChannelManager(easy_settings())
    out = manager.open_extended("B", OpenExtendedMiningChannel(2, "w", 1e14, ANY, 4), NOW)
    channel_id = out[0][1].channel_id
    before = manager.channels[channel_id].target
    for second in range(1, 601):
        assert [m for _, m in manager.tick(NOW + second) if isinstance(m, SetTarget)] == []
    assert manager.channels[channel_id].target == before


def test_a_refused_update_channel_changes_nothing():
    manager = ChannelManager(easy_settings())
    out = manager.open_extended("B", OpenExtendedMiningChannel(2, "w", 1.0, ANY, 4), NOW)
    channel_id = out[0][1].channel_id
    channel = manager.channels[channel_id]
    before = (channel.target, channel.max_target, manager._vardiff[channel_id].target)
    lower = target_to_u256(MAX_TARGET >> 40)
    assert manager.update_channel("B", UpdateChannel(channel_id, float("nan"), lower), NOW) == [
        ("B", UpdateChannelError(channel_id, "invalid-nominal-hashrate"))
    ]
    assert (channel.target, channel.max_target, manager._vardiff[channel_id].target) == before


def test_a_new_tip_reaches_each_channel_as_its_job_then_its_prev_hash():
    manager = ChannelManager(easy_settings())
    manager.open_standard("A", OpenStandardMiningChannel(1, "w", 1.0, ANY), NOW)
    manager.open_extended("B", OpenExtendedMiningChannel(2, "w", 1.0, ANY, 4), NOW)
    job_id, out = manager.new_tip(work(7), prev())
    assert [(o, type(m)) for o, m in out] == [
        ("A", NewMiningJob),
        ("A", SetNewPrevHash),
        ("B", NewExtendedMiningJob),
        ("B", SetNewPrevHash),
    ]
    assert {m.job_id for _, m in out} == {job_id}
    # A channel opened afterwards starts on the same work.
    late = [type(m) for _, m in manager.open_extended("C", OpenExtendedMiningChannel(3, "w", 1.0, ANY, 4), NOW)]
    assert late == [OpenExtendedMiningChannelSuccess, NewExtendedMiningJob, SetNewPrevHash]
    with pytest.raises(MiningJobError):
        manager.new_tip(work(8, future=False), prev(b"x"))


def test_a_new_tip_says_and_does_what_new_work_then_new_prev_hash_would():
    def populated() -> ChannelManager:
        manager = ChannelManager(easy_settings())
        manager.open_extended("lone", OpenExtendedMiningChannel(1, "w", 1.0, ANY, 4), NOW)
        manager.open_extended("mixed", OpenExtendedMiningChannel(2, "w", 1.0, ANY, 4), NOW)
        manager.open_standard("mixed", OpenStandardMiningChannel(3, "w", 1.0, ANY), NOW)
        manager.open_extended("mixed", OpenExtendedMiningChannel(4, "w", 1.0, ANY, 4), NOW)
        manager.open_extended("mixed", OpenExtendedMiningChannel(5, "w", 1.0, ANY, 4), NOW, grouped=False)
        manager.open_standard("standard-only", OpenStandardMiningChannel(6, "w", 1.0, ANY), NOW, grouped=False)
        manager.open_extended("ungrouped", OpenExtendedMiningChannel(7, "w", 1.0, ANY, 4), NOW, grouped=False)
        with_tip(manager)
        manager.new_work(work(2, future=False))
        manager.new_work(work(3))  # future work the tip overtakes
        return manager

    at_once, stepwise = populated(), populated()
    job_id, out = at_once.new_tip(work(4), prev(b"next"))
    step_id, step_out = stepwise.new_work(work(4))
    step_out += stepwise.new_prev_hash(4, prev(b"next"))
    assert job_id == step_id
    for owner in ("lone", "mixed", "standard-only", "ungrouped"):
        # Each connection hears the same messages in the same order (jobs before activations).
        assert [m for o, m in out if o == owner] == [m for o, m in step_out if o == owner]
    for channel_id, channel in at_once.channels.items():
        other = stepwise.channels[channel_id].jobs
        assert channel.jobs.active.job_id == other.active.job_id == job_id
        assert [channel.jobs.lookup(j) for j in (1, 2, 3)] == [other.lookup(j) for j in (1, 2, 3)] == [STALE] * 3


def test_a_connection_s_extended_channels_share_one_group_and_one_broadcast():
    manager = ChannelManager(easy_settings())
    out = [m for _, m in manager.open_extended("A", OpenExtendedMiningChannel(1, "w", 1.0, ANY, 4), NOW)]
    out += [m for _, m in manager.open_extended("A", OpenExtendedMiningChannel(2, "w", 1.0, ANY, 4), NOW)]
    out += [m for _, m in manager.open_standard("A", OpenStandardMiningChannel(3, "w", 1.0, ANY), NOW)]
    group = out[0].group_channel_id
    assert group and out[1].group_channel_id == group
    assert out[2].group_channel_id == 0  # a standard channel has its own jobs: never in a group
    assert group not in {m.channel_id for m in out}  # group ids share the channel id space
    standard = out[2].channel_id
    job_id, sent = manager.new_tip(work(7), prev())
    assert [(type(m), m.channel_id) for _, m in sent] == [
        (NewExtendedMiningJob, group),  # one job for both extended channels
        (NewMiningJob, standard),  # the standard channel's own job, announced once
        (SetNewPrevHash, standard),
        (SetNewPrevHash, group),  # one activation for the group's members
    ]
    assert all(ch.jobs.active.job_id == job_id for ch in manager.channels.values())


def test_close_channel_on_a_group_id_closes_its_members():
    manager = ChannelManager(easy_settings())
    first = manager.open_extended("A", OpenExtendedMiningChannel(1, "w", 1.0, ANY, 4), NOW)[0][1]
    manager.open_extended("A", OpenExtendedMiningChannel(2, "w", 1.0, ANY, 4), NOW)
    manager.open_standard("A", OpenStandardMiningChannel(3, "w", 1.0, ANY), NOW)
    assert manager.close_group("B", first.group_channel_id) == []  # not B's group
    assert len(manager.close_group("A", first.group_channel_id)) == 2
    assert [manager.channels[cid].standard for cid in manager.channels] == [True]


def test_ungrouped_channels_never_join_an_existing_group():
    manager = ChannelManager(easy_settings())
    manager.open_extended("A", OpenExtendedMiningChannel(1, "w", 1.0, ANY, 4), NOW)
    ((_, late),) = manager.open_extended("A", OpenExtendedMiningChannel(2, "w", 1.0, ANY, 4), NOW, grouped=False)
    assert late.group_channel_id == 0
    _, sent = manager.new_tip(work(7), prev())
    assert [m.channel_id for _, m in sent].count(late.channel_id) == 2  # its own job and prev hash


def test_a_standard_jobs_only_connection_never_sees_a_group():
    manager = ChannelManager(easy_settings())
    ((_, success),) = manager.open_standard("D", OpenStandardMiningChannel(1, "w", 1.0, ANY), NOW, grouped=False)
    assert success.group_channel_id == 0
    _, sent = manager.new_tip(work(7), prev())
    assert [(type(m), m.channel_id) for _, m in sent] == [
        (NewMiningJob, success.channel_id),
        (SetNewPrevHash, success.channel_id),
    ]


def _solo_settings():
    from sv2proxy.bitcoin.address import Network
    from sv2proxy.server.mining import solo_payout

    return PoolSettings(
        layout=ExtranonceLayout(8, 2),
        vardiff=VardiffConfig(min_difficulty=1e-9),
        payout_for=solo_payout(Network.REGTEST),
    )


SOLO = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


def test_solo_channels_mine_their_own_work_and_bad_usernames_are_refused():
    manager = ChannelManager(_solo_settings())
    assert manager.open_extended("A", OpenExtendedMiningChannel(1, "not-an-address", 1.0, ANY, 4), NOW) == [
        ("A", OpenMiningChannelError(1, "invalid-user-identity"))
    ]
    assert manager.open_extended(
        "A", OpenExtendedMiningChannel(2, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", 1.0, ANY, 4), NOW
    ) == [
        ("A", OpenMiningChannelError(2, "invalid-user-identity"))  # a mainnet address on regtest
    ]
    ((_, first),) = manager.open_extended("A", OpenExtendedMiningChannel(3, f"{SOLO}.rig1", 1.0, ANY, 4), NOW)
    ((_, second),) = manager.open_extended("A", OpenExtendedMiningChannel(4, f"{SOLO}.rig2", 1.0, ANY, 4), NOW)
    assert first.group_channel_id == second.group_channel_id == 0  # solo coinbases are their own

    built = []

    def variant(payout: bytes) -> Work:
        built.append(payout)
        return Work(7, 0x20000000, True, b"solo-head" + payout, b"tail", PATH, True, None, payout)

    _, sent = manager.new_tip(work(7), prev(), variant)
    jobs = [m for _, m in sent if isinstance(m, NewExtendedMiningJob)]
    assert [j.channel_id for j in jobs] == [first.channel_id, second.channel_id]
    assert all(j.coinbase_tx_prefix.startswith(b"solo-head") for j in jobs)
    assert len(built) == 1  # one variant per payout, shared by the channels that pay it
    assert manager.channels[first.channel_id].jobs.active.work.payout == built[0]


def test_keepalives_on_a_quiet_chain_never_nest_solo_variants():
    manager = ChannelManager(_solo_settings())
    manager.open_extended("A", OpenExtendedMiningChannel(1, f"{SOLO}.rig1", 1.0, ANY, 4), NOW)

    def variant(payout: bytes) -> Work:
        return Work(7, 0x20000000, True, b"solo-head", b"tail", PATH, True, None, payout)

    manager.new_tip(work(7), prev(), variant)
    for second in range(1, 2001):  # ~17 hours of 30 s keepalives without a new template
        job_id, sent = manager.refresh_work(NOW + second)
    (job,) = [m for _, m in sent if isinstance(m, NewExtendedMiningJob)]
    assert job.coinbase_tx_prefix == b"solo-head" and job.min_ntime == int(NOW) + 2000
    # A channel joining now still gets the solo work.
    late = manager.open_extended("B", OpenExtendedMiningChannel(2, f"{SOLO}.rig2", 1.0, ANY, 4), NOW)
    assert [m for _, m in late if isinstance(m, NewExtendedMiningJob)][0].coinbase_tx_prefix == b"solo-head"
