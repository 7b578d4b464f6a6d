"""JobFactory and BlockAssembler: work for the pool, and the block for a share that finds one.

The decisive checks: the block assembled for a share parses back, its merkle root is the one the
share's header hashed, its coinbase commits to the wtxids, and the pool's own share validation
(sv2proxy.pool.validation) hashes the very same header from the Work alone.
"""

from __future__ import annotations

import pytest

from sv2proxy.bitcoin.coinbase import COINBASE_WITNESS, SEQUENCE_NONFINAL
from sv2proxy.bitcoin.hashing import merkle_root, merkle_root_from_path, sha256d
from sv2proxy.bitcoin.script import (
    bip34_height_from_script_sig,
    witness_commitment,
    witness_commitment_index,
    witness_commitment_script,
    witness_program_script,
)
from sv2proxy.bitcoin.serialize import Transaction, TxOut, parse_block
from sv2proxy.bitcoin.target import MAX_TARGET
from sv2proxy.codec.template_distribution import SubmitSolution
from sv2proxy.pool.channel import Channel, ChannelKind
from sv2proxy.pool.validation import validate_share
from sv2proxy.template.block_template import BlockTemplate
from sv2proxy.template.job_factory import BlockAssembler, JobFactory

from .fixtures import FEES, SUBSIDY, getblocktemplate_result, tp_templates

POOL = witness_program_script(0, bytes(range(20)))
OPERATOR = witness_program_script(1, bytes(range(32)))
SOLO_MINER = witness_program_script(0, bytes(range(100, 120)))
TAG = b"/sv2proxy/"
EXTRANONCE_SIZE = 16
CHANNEL_PREFIX = bytes.fromhex("00000007")  # what the pool's allocator gave the channel
EXTRANONCE = CHANNEL_PREFIX + bytes.fromhex("0102030405060708090a0b0c")  # ‖ the miner's 12 bytes


def gbt_template() -> BlockTemplate:
    return BlockTemplate.from_getblocktemplate(getblocktemplate_result())


def factory() -> JobFactory:
    return JobFactory([(POOL, 98), (OPERATOR, 2)], TAG, EXTRANONCE_SIZE)


def coinbase_of(work_prefix: bytes, work_suffix: bytes, extranonce: bytes = EXTRANONCE) -> Transaction:
    return Transaction.parse(work_prefix + extranonce + work_suffix, allow_witness=False)


# --- configuration --------------------------------------------------------------------------


def test_a_single_script_takes_everything() -> None:
    assert JobFactory(POOL, TAG, EXTRANONCE_SIZE).shares == ((POOL, 100),)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (([(POOL, 98), (OPERATOR, 1)], TAG, 16), "sum to 100, they sum to 99"),
        (([], TAG, 16), "at least one"),
        ((b"", TAG, 16), "non-empty bytes"),
        ((POOL, "tag", 16), "pool_tag must be bytes"),
        ((POOL, TAG, 0), "extranonce_size must be 1..32"),
        ((POOL, TAG, 33), "extranonce_size must be 1..32"),
        # 8 (longest TP prefix) + 1 + 75 (tag push) + 1 + 16 (extranonce push) = 101
        ((POOL, b"t" * 75, 16), "scriptSig would be 101 bytes"),
    ],
)
def test_bad_configuration_fails_at_construction(arguments: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JobFactory(*arguments)  # type: ignore[arg-type]


# --- work -----------------------------------------------------------------------------------


def test_future_work_from_a_getblocktemplate_template() -> None:
    template = gbt_template()
    work, _ = factory().work_for(template, future=True, source_id=41)
    assert (work.source_id, work.version, work.version_rolling_allowed, work.future) == (41, 0x20000000, True, True)
    assert work.min_ntime is None
    assert work.merkle_path == template.merkle_path
    coinbase = coinbase_of(work.coinbase_prefix, work.coinbase_suffix)
    assert coinbase.is_coinbase and not coinbase.has_witness  # BIP141-stripped for the miner
    assert bip34_height_from_script_sig(coinbase.inputs[0].script_sig) == 205
    assert coinbase.inputs[0].script_sig.endswith(bytes((EXTRANONCE_SIZE,)) + EXTRANONCE)
    assert (coinbase.version, coinbase.inputs[0].sequence, coinbase.lock_time) == (2, SEQUENCE_NONFINAL, 204)
    reward = SUBSIDY + sum(FEES)
    assert coinbase.outputs == (
        TxOut(reward - reward * 2 // 100, POOL),  # the rounding remainder goes to the first payout
        TxOut(reward * 2 // 100, OPERATOR),
        TxOut(0, template.witness_commitment_script or b""),
    )
    assert sum(out.value for out in coinbase.outputs) == template.coinbase_value


def test_work_that_is_not_future_starts_at_the_templates_ntime() -> None:
    template = gbt_template()
    work, _ = factory().work_for(template, future=False, source_id=1)
    assert not work.future and work.min_ntime == template.start_ntime == 1_795_571_900


def test_prev_hash_for_never_goes_below_mintime() -> None:
    result = getblocktemplate_result()
    result["curtime"] = result["mintime"] - 30
    template = BlockTemplate.from_getblocktemplate(result)
    prev = factory().prev_hash_for(template)
    assert (prev.prev_hash, prev.min_ntime, prev.nbits) == (template.prev_hash, result["mintime"], 0x207FFFFF)


def test_solo_payout_script_takes_the_whole_reward() -> None:
    template = gbt_template()
    work, assembler = factory().work_for(template, future=True, source_id=1, payout_script=SOLO_MINER)
    outputs = coinbase_of(work.coinbase_prefix, work.coinbase_suffix).outputs
    assert outputs[0] == TxOut(template.coinbase_value, SOLO_MINER)
    assert len(outputs) == 2 and outputs[1].value == 0  # and the witness commitment
    with pytest.raises(ValueError, match="payout_script must be non-empty bytes"):
        factory().work_for(template, future=True, source_id=1, payout_script=b"")


def test_version_rolling_can_be_turned_off() -> None:
    work, _ = JobFactory(POOL, TAG, EXTRANONCE_SIZE, version_rolling_allowed=False).work_for(
        gbt_template(), future=True, source_id=1
    )
    assert not work.version_rolling_allowed


# --- blocks ---------------------------------------------------------------------------------


def test_the_assembled_block_for_a_share() -> None:
    template = gbt_template()
    work, assembler = factory().work_for(template, future=True, source_id=1)
    version, ntime, nonce = 0x20000000 | 0x00A0_0000, template.start_ntime + 7, 0xDEADBEEF
    block = assembler.assemble(EXTRANONCE, version, ntime, nonce)

    # The header hashes the coinbase the miner saw: the Work's legacy bytes and merkle path.
    coinbase_txid = sha256d(work.coinbase_prefix + EXTRANONCE + work.coinbase_suffix)
    assert block.header.merkle_root == merkle_root_from_path(coinbase_txid, work.merkle_path)
    assert (block.header.version, block.header.time, block.header.nonce) == (version, ntime, nonce)
    assert (block.header.prev_hash, block.header.bits) == (template.prev_hash, template.bits)
    assert block.hash == sha256d(block.data[:80]) == block.header.hash

    header, transactions = parse_block(block.data)
    assert header == block.header
    coinbase, *rest = transactions
    assert coinbase.serialize() == block.coinbase
    assert coinbase.txid == coinbase_txid
    assert merkle_root([tx.txid for tx in transactions]) == header.merkle_root
    assert [tx.serialize() for tx in rest] == [tx.data for tx in template.transactions or ()]

    # BIP141: the coinbase carries the reserved value and commits to the other transactions' wtxids.
    assert coinbase.inputs[0].witness == COINBASE_WITNESS
    index = witness_commitment_index([out.script_pubkey for out in coinbase.outputs])
    assert index is not None
    assert coinbase.outputs[index].script_pubkey == witness_commitment_script(
        witness_commitment([tx.wtxid for tx in rest])
    )


def test_the_pools_share_validation_hashes_the_same_header() -> None:
    template = gbt_template()
    jobs = factory()
    work, assembler = jobs.work_for(template, future=True, source_id=1)
    channel = Channel(
        channel_id=7,
        kind=ChannelKind.EXTENDED,
        user_identity="worker",
        nominal_hash_rate=1e9,
        extranonce_value=7,
        extranonce_prefix=CHANNEL_PREFIX,
        rollable_size=EXTRANONCE_SIZE - len(CHANNEL_PREFIX),
        target=MAX_TARGET,  # every share is accepted, so every nonce gives a hash to compare
        max_target=MAX_TARGET,
    )
    channel.add_job(1, work)
    channel.activate(1, jobs.prev_hash_for(template))
    miner_part = EXTRANONCE[len(CHANNEL_PREFIX) :]
    ntime = template.start_ntime
    blocks = 0
    for nonce in range(16):
        version = 0x20000000 | (nonce << 13)  # rolled bits inside the BIP320/BIP323 mask
        result = validate_share(channel, 1, nonce, ntime, version, miner_part, now=ntime)
        assert result.accepted, result
        block = assembler.assemble(EXTRANONCE, version, ntime, nonce)
        assert result.hash == block.hash
        # Regtest's nBits accepts about one hash in two: some of these shares are blocks.
        assert result.is_block == block.meets_network_target
        blocks += result.is_block
    assert 0 < blocks < 16


def test_a_template_provider_template_end_to_end() -> None:
    future, _, prev = tp_templates()
    template = BlockTemplate.from_template_distribution(future, prev)
    jobs = factory()
    work, assembler = jobs.work_for(template, future=template.future, source_id=template.template_id or 0)
    assert work.source_id == 1 and work.future and work.merkle_path == ()

    coinbase = coinbase_of(work.coinbase_prefix, work.coinbase_suffix)
    # SRI's layout with the TP's fields: its prefix first, then our tag, then the extranonce push.
    assert coinbase.inputs[0].script_sig == bytes.fromhex("0166") + bytes((len(TAG),)) + TAG + b"\x10" + EXTRANONCE
    assert (coinbase.version, coinbase.inputs[0].sequence, coinbase.lock_time) == (2, 0xFFFFFFFE, 101)
    assert [out.value for out in coinbase.outputs] == [4_900_000_000, 100_000_000, 0]
    assert coinbase.outputs[2].script_pubkey == template.witness_commitment_script

    prev_hash = jobs.prev_hash_for(template)
    assert (prev_hash.prev_hash, prev_hash.min_ntime, prev_hash.nbits) == (prev.prev_hash, 1_795_571_302, 0x207FFFFF)

    block = assembler.assemble(EXTRANONCE, 0x20000000, prev_hash.min_ntime, 42)
    header, (only,) = parse_block(block.data)
    assert header.merkle_root == only.txid == coinbase.txid  # an empty path: the coinbase is the root
    assert only.inputs[0].witness == COINBASE_WITNESS

    solution = assembler.submit_solution(EXTRANONCE, 0x20000000, prev_hash.min_ntime, 42)
    assert solution == SubmitSolution(1, 0x20000000, prev_hash.min_ntime, 42, block.coinbase)
    assert SubmitSolution.decode(solution.encode()) == solution
    assert Transaction.parse(solution.coinbase_tx).inputs[0].witness == COINBASE_WITNESS


def test_unknown_transactions_allow_submit_solution_but_not_a_block() -> None:
    _, current, prev = tp_templates()
    template = BlockTemplate.from_template_distribution(current, prev)
    work, assembler = factory().work_for(template, future=False, source_id=6)
    assert assembler.transactions is None and work.merkle_path == template.merkle_path
    with pytest.raises(ValueError, match="transactions of template 6 are unknown"):
        assembler.assemble(EXTRANONCE, 0x30000000, 1_795_571_302, 0)
    solution = assembler.submit_solution(EXTRANONCE, 0x30000000, 1_795_571_302, 0)
    assert solution.template_id == 6
    # The header the TP will rebuild from it is the one the share hashed.
    coinbase = Transaction.parse(solution.coinbase_tx)
    expected = merkle_root_from_path(coinbase.txid, template.merkle_path)
    assert assembler.header(EXTRANONCE, 0x30000000, 1_795_571_302, 0).merkle_root == expected


def test_getblocktemplate_blocks_have_no_submit_solution() -> None:
    _, assembler = factory().work_for(gbt_template(), future=True, source_id=1)
    assert isinstance(assembler, BlockAssembler) and assembler.template_id is None
    with pytest.raises(ValueError, match="came from getblocktemplate"):
        assembler.submit_solution(EXTRANONCE, 0x20000000, 0, 0)


def test_the_extranonce_must_be_the_configured_size() -> None:
    _, assembler = factory().work_for(gbt_template(), future=True, source_id=1)
    with pytest.raises(ValueError, match="extranonce is 16 bytes, got 12"):
        assembler.assemble(EXTRANONCE[4:], 0x20000000, 0, 0)


# --- checking an assembled block ---------------------------------------------------------------


def test_an_assembled_block_checks_against_its_header() -> None:
    import dataclasses

    template = gbt_template()
    _, assembler = factory().work_for(template, future=True, source_id=1)
    block = assembler.assemble(EXTRANONCE, 0x20000000, template.start_ntime, 7)
    assert block.problem() is None
    # A transaction list the header did not hash: Core's bad-txnmrklroot.
    short = dataclasses.replace(assembler, transactions=(assembler.transactions or ())[:2])
    problem = short.assemble(EXTRANONCE, 0x20000000, template.start_ntime, 7).problem()
    assert problem is not None and problem.startswith("bad-txnmrklroot")
    # Same txids, another witness: the merkle root holds, the witness commitment does not.
    first, *others = assembler.transactions or ()
    changed = first.replace(bytes.fromhex("ab5b6208"), bytes.fromhex("ab5b6209"))
    assert Transaction.parse(changed).txid == Transaction.parse(first).txid
    witness = dataclasses.replace(assembler, transactions=(changed, *others))
    problem = witness.assemble(EXTRANONCE, 0x20000000, template.start_ntime, 7).problem()
    assert problem is not None and problem.startswith("bad-witness-merkle-match")
    # Bytes that are not the header's block at all.
    assert dataclasses.replace(block, data=block.data[:-1]).problem().startswith("block-decode-failed")


def test_a_witness_reserved_value_from_the_provider_goes_into_the_coinbase_witness() -> None:
    import dataclasses

    template = gbt_template()
    _, assembler = factory().work_for(template, future=True, source_id=1)
    plain = assembler.assemble(EXTRANONCE, 0x20000000, template.start_ntime, 7)
    other = dataclasses.replace(assembler, witness_reserved_value=b"\x01" * 32)
    block = other.assemble(EXTRANONCE, 0x20000000, template.start_ntime, 7)
    _, transactions = parse_block(block.data)
    assert transactions[0].inputs[0].witness == (b"\x01" * 32,)
    assert block.hash == plain.hash  # the witness is outside the txid: the share's hash stands
    # The template committed with 32 zero bytes, so this block is not valid, and the check says so.
    assert block.problem().startswith("bad-witness-merkle-match")
