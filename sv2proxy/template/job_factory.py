"""From a :class:`BlockTemplate` to pool :class:`Work`, and from a found share back to a block.

:class:`JobFactory` holds what the operator configured (payouts, pool tag, extranonce size)
and turns each template into the :class:`~sv2proxy.pool.jobs.Work` every channel mines plus a
:class:`BlockAssembler` that keeps what the share sink needs should a share meet the network
target: the coinbase with its witness, the header fields the miner does not roll, and the
template's transactions (PROTOCOL.md §6 "coinbase", "merkle root", "SRI coinbase layout";
§7 "NewTemplate fields", "SubmitSolution").

Work carries the coinbase stripped of BIP141 data (its SHA256d is the txid); the assembler
writes the witness form into the block and into SubmitSolution.  Pure code: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sv2proxy.bitcoin.coinbase import CoinbaseTemplate, Percent, build_coinbase, check_shares, split_reward
from sv2proxy.bitcoin.hashing import merkle_root, merkle_root_from_path
from sv2proxy.bitcoin.script import witness_commitment, witness_commitment_index, witness_commitment_script
from sv2proxy.bitcoin.serialize import BlockHeader, Transaction, TxIn, encode_compact_size, parse_block
from sv2proxy.bitcoin.target import target_from_nbits
from sv2proxy.codec.constants import MAX_EXTRANONCE_SIZE
from sv2proxy.codec.template_distribution import SubmitSolution
from sv2proxy.pool.jobs import PrevHash, Work
from sv2proxy.template.block_template import BlockTemplate

#: The longest NewTemplate.coinbase_prefix a Template Provider may send (PROTOCOL.md §7); a
#: getblocktemplate height push is at most 5 bytes.  The factory budgets the scriptSig for it.
MAX_TEMPLATE_COINBASE_PREFIX = 8


@dataclass(frozen=True, slots=True)
class AssembledBlock:
    """A block built from a share: its header, its coinbase (witness form) and its bytes."""

    header: BlockHeader
    coinbase: bytes
    #: header ‖ CompactSize tx count ‖ coinbase ‖ template transactions: what submitblock takes.
    data: bytes
    #: The block hash, raw order (SHA256d of the header).
    hash: bytes

    @property
    def meets_network_target(self) -> bool:
        """Whether the hash meets the header's own nBits target, i.e. whether this is a block."""
        return int.from_bytes(self.hash, "little") <= target_from_nbits(self.header.bits)

    def problem(self) -> str | None:
        """Why a node would refuse :attr:`data` for its structure alone, or None.

        The bytes must decode as one block whose header is :attr:`header`, starting with the
        coinbase; the merkle root of every txid must be the header's (else Core's
        ``bad-txnmrklroot``); a coinbase witness commitment must commit to every wtxid with the
        coinbase's witness reserved value (``bad-witness-nonce-size``,
        ``bad-witness-merkle-match``), and without one no transaction may carry a witness
        (``unexpected-witness``).  Scripts, amounts and the chain are the node's business.
        """
        try:
            header, transactions = parse_block(self.data)
        except ValueError as exc:
            return f"block-decode-failed: {exc}"
        if header != self.header:
            return "bad-header: the block's header is not the one the share hashed"
        if not transactions or not transactions[0].is_coinbase:
            return "bad-cb-missing: the first transaction is not a coinbase"
        if merkle_root([tx.txid for tx in transactions]) != header.merkle_root:
            return f"bad-txnmrklroot: the {len(transactions)} transactions do not hash to the header's merkle root"
        coinbase = transactions[0]
        index = witness_commitment_index([out.script_pubkey for out in coinbase.outputs])
        if index is None:
            if any(tx.has_witness for tx in transactions):
                return "unexpected-witness: witness data without a witness commitment"
            return None
        reserved = coinbase.inputs[0].witness
        if len(reserved) != 1 or len(reserved[0]) != 32:
            return "bad-witness-nonce-size: the coinbase witness is not one 32-byte reserved value"
        wtxids = [tx.wtxid for tx in transactions[1:]]
        expected = witness_commitment_script(witness_commitment(wtxids, reserved[0]))
        if not coinbase.outputs[index].script_pubkey.startswith(expected):
            return "bad-witness-merkle-match: the witness commitment does not match the transactions"
        return None


@dataclass(frozen=True, slots=True)
class BlockAssembler:
    """Everything of one template's block except what a share supplies.

    A share gives the full extranonce (channel prefix ‖ miner's bytes), the version it rolled,
    ntime and nonce; the rest was fixed when the work was made.  ``transactions`` are the
    template's transactions as the block carries them (with witness), None when the source
    did not give them (see :class:`BlockTemplate`).
    """

    coinbase: CoinbaseTemplate
    prev_hash: bytes
    nbits: int
    merkle_path: tuple[bytes, ...]
    transactions: tuple[bytes, ...] | None
    #: The TP template the block comes from (for SubmitSolution); None for getblocktemplate.
    template_id: int | None = None
    #: The coinbase's BIP141 witness reserved value when not the 32 zero bytes it was built
    #: with (a TP's RequestTransactionData.Success.excess_data).  The witness is outside the
    #: txid, so it changes neither the merkle root nor the hash the miner found.
    witness_reserved_value: bytes | None = None

    def header(self, extranonce: bytes, version: int, ntime: int, nonce: int) -> BlockHeader:
        """The header a share with these values hashed, merkle root computed from the coinbase txid."""
        root = merkle_root_from_path(self.coinbase.txid(extranonce), self.merkle_path)
        return BlockHeader(version, self.prev_hash, root, ntime, self.nbits, nonce)

    def assemble(self, extranonce: bytes, version: int, ntime: int, nonce: int) -> AssembledBlock:
        """The whole block for the share, ready for ``submitblock``.

        ValueError if the template's transactions are unknown: a block without them would not
        match the merkle root the miner hashed.
        """
        if self.transactions is None:
            raise ValueError(
                f"the transactions of template {self.template_id} are unknown: request them with "
                "RequestTransactionData, or submit the share with SubmitSolution"
            )
        header = self.header(extranonce, version, ntime, nonce)
        coinbase = self.witness_coinbase(extranonce)
        data = b"".join(
            (header.serialize(), encode_compact_size(1 + len(self.transactions)), coinbase, *self.transactions)
        )
        return AssembledBlock(header, coinbase, data, header.hash)

    def submit_solution(self, extranonce: bytes, version: int, ntime: int, nonce: int) -> SubmitSolution:
        """The SubmitSolution that hands the share to the Template Provider (coinbase with witness)."""
        if self.template_id is None:
            raise ValueError("SubmitSolution needs a Template Provider template; this one came from getblocktemplate")
        return SubmitSolution(self.template_id, version, ntime, nonce, self.witness_coinbase(extranonce))

    def witness_coinbase(self, extranonce: bytes) -> bytes:
        """The coinbase with its witness, as the block and SubmitSolution carry it."""
        coinbase = self.coinbase.serialize(extranonce, with_witness=True)
        reserved = self.witness_reserved_value
        if reserved is None or not self.coinbase.witness:
            return coinbase
        tx = Transaction.parse(coinbase)
        first = tx.inputs[0]
        if first.witness == (reserved,):
            return coinbase
        filled = TxIn(first.prev_txid, first.prev_index, first.script_sig, first.sequence, (reserved,))
        return Transaction(tx.version, (filled, *tx.inputs[1:]), tx.outputs, tx.lock_time).serialize()


@dataclass(frozen=True, slots=True)
class JobFactory:
    """Makes work from templates for one pool configuration.

    ``payout`` is either one scriptPubKey that gets the whole reward, or ``(script_pubkey,
    percent)`` pairs summing to 100 (see :func:`~sv2proxy.bitcoin.coinbase.split_reward`).
    ``extranonce_size`` is the full extranonce the pool hands out (prefix ‖ rollable bytes).
    Everything is checked here, once, so a bad configuration fails at start-up and not at
    the first template.
    """

    payout: bytes | Sequence[tuple[bytes, Percent]]
    pool_tag: bytes
    extranonce_size: int
    version_rolling_allowed: bool = True
    #: ``payout`` as ``(script_pubkey, percent)`` pairs.
    shares: tuple[tuple[bytes, Percent], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        shares: tuple[tuple[bytes, Percent], ...]
        if isinstance(self.payout, bytes):
            shares = ((self.payout, 100),)
        else:
            shares = tuple((script, percent) for script, percent in self.payout)
        check_shares(shares)
        object.__setattr__(self, "shares", shares)
        if not isinstance(self.pool_tag, bytes):
            raise ValueError(f"pool_tag must be bytes, got {type(self.pool_tag).__name__}")
        if not 1 <= self.extranonce_size <= MAX_EXTRANONCE_SIZE:
            raise ValueError(f"extranonce_size must be 1..{MAX_EXTRANONCE_SIZE}, got {self.extranonce_size}")
        # The same check every template will meet, with the longest prefix one may carry.
        build_coinbase(
            coinbase_prefix=bytes(MAX_TEMPLATE_COINBASE_PREFIX),
            pool_tag=self.pool_tag,
            extranonce_size=self.extranonce_size,
            payouts=((shares[0][0], 0),),
        )

    def work_for(
        self,
        template: BlockTemplate,
        *,
        future: bool,
        source_id: int,
        payout_script: bytes | None = None,
        aux_push: bytes = b"",
    ) -> tuple[Work, BlockAssembler]:
        """The work for ``template`` and the assembler for its blocks.

        ``future`` work waits for :meth:`prev_hash_for`'s PrevHash; other work starts at the
        template's ntime on the current tip.  ``payout_script`` overrides the configured payout
        with one script that takes the whole reward (solo mining to a miner's own address,
        resolved by the caller).  ``aux_push`` is the merged-mining commitment's data push, put
        in the scriptSig after the pool tag (merge mining; see :mod:`sv2proxy.merge_mining`).
        """
        if payout_script is not None:
            if not isinstance(payout_script, bytes) or not payout_script:
                raise ValueError("payout_script must be non-empty bytes")
            payouts: tuple[tuple[bytes, int], ...] = ((payout_script, template.coinbase_value),)
        else:
            payouts = split_reward(template.coinbase_value, self.shares)
        coinbase = build_coinbase(
            coinbase_prefix=template.coinbase_prefix,
            pool_tag=self.pool_tag,
            extranonce_size=self.extranonce_size,
            payouts=payouts,
            extra_outputs=template.coinbase_outputs,
            version=template.coinbase_version,
            sequence=template.coinbase_sequence,
            lock_time=template.coinbase_lock_time,
            # BIP141: a block with a witness commitment needs the reserved value in the coinbase.
            witness=template.witness_commitment_script is not None,
            aux_push=aux_push,
        )
        work = Work(
            source_id=source_id,
            version=template.version,
            version_rolling_allowed=self.version_rolling_allowed,
            coinbase_prefix=coinbase.prefix,
            coinbase_suffix=coinbase.suffix,
            merkle_path=template.merkle_path,
            future=future,
            min_ntime=None if future else template.start_ntime,
        )
        transactions = None if template.transactions is None else tuple(tx.data for tx in template.transactions)
        assembler = BlockAssembler(
            coinbase=coinbase,
            prev_hash=template.prev_hash,
            nbits=template.bits,
            merkle_path=template.merkle_path,
            transactions=transactions,
            template_id=template.template_id,
        )
        return work, assembler

    def prev_hash_for(self, template: BlockTemplate) -> PrevHash:
        """The chain tip ``template`` builds on, as the pool activates future work with it.

        min_ntime is the template's start time: SRI forwards a TP's header_timestamp as the
        mining min_ntime; for getblocktemplate it is curtime, never below mintime.
        """
        return PrevHash(prev_hash=template.prev_hash, min_ntime=template.start_ntime, nbits=template.bits)
