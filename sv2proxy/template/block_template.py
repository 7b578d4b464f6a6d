"""What a node offers to mine on: :class:`BlockTemplate`, from getblocktemplate or from SV2 TDP.

Two sources, one shape (PROTOCOL.md §7 "NewTemplate fields", "SetNewPrevHash (TDP)", §11):

- Bitcoin Core's ``getblocktemplate`` JSON: hashes come as display hex (byte-reversed) and are
  stored raw; every transaction is parsed so its txid and wtxid are ours, not taken on trust;
  the coinbase is shaped as Core's own miner and sv2-tp shape it (version 2, sequence
  0xfffffffe, lock_time height - 1) and carries the witness commitment output.
- A Template Provider's NewTemplate plus the SetNewPrevHash that activates it: the coinbase
  prefix, sequence, lock_time and outputs are the TP's, the merkle path is given; the
  transactions are known only if RequestTransactionData.Success supplied them.

Everything is raw internal byte order from here on.  Malformed input is a ValueError that names
the field, so a misbehaving node shows up as a sentence rather than a KeyError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sv2proxy.bitcoin.coinbase import COINBASE_TX_VERSION, MAX_MONEY, SEQUENCE_NONFINAL, parse_outputs
from sv2proxy.bitcoin.hashing import merkle_path
from sv2proxy.bitcoin.script import (
    WITNESS_RESERVED_VALUE,
    bip34_height_from_script_sig,
    bip34_height_push,
    witness_commitment,
    witness_commitment_index,
    witness_commitment_script,
)
from sv2proxy.bitcoin.serialize import Transaction, TxOut
from sv2proxy.bitcoin.target import MAX_TARGET, target_from_nbits
from sv2proxy.codec.template_distribution import NewTemplate, SetNewPrevHash


@dataclass(frozen=True, slots=True)
class TemplateTransaction:
    """One non-coinbase transaction of a template: its bytes as the block carries them (with
    witness), and the txid/wtxid computed from those bytes (raw order)."""

    data: bytes
    txid: bytes
    wtxid: bytes
    #: The fee getblocktemplate reports, in satoshis; None where the source does not say.
    fee: int | None = None

    @classmethod
    def from_data(cls, data: bytes, fee: int | None = None, *, what: str = "transaction") -> TemplateTransaction:
        """Parse ``data`` and compute its ids; ValueError naming ``what`` if it is not one transaction."""
        try:
            tx = Transaction.parse(data)
        except ValueError as exc:
            raise ValueError(f"{what}: not a transaction: {exc}") from exc
        if tx.is_coinbase:
            raise ValueError(f"{what}: a template transaction cannot be a coinbase")
        return cls(data, tx.txid, tx.wtxid, fee)


@dataclass(frozen=True, slots=True)
class BlockTemplate:
    """A block to mine, short of its coinbase outputs, extranonce, ntime and nonce.

    ``coinbase_value`` is what our payouts may claim (getblocktemplate's coinbasevalue, a TP's
    coinbase_tx_value_remaining); ``coinbase_outputs`` follow our payouts in the coinbase (the
    witness commitment output, or whatever the TP asked for).  ``merkle_path`` is deepest first,
    coinbase excluded.  ``transactions`` is None when the source named them only by the merkle
    path (a TP template whose data was not requested): such a template can be mined and
    submitted through SubmitSolution, but not assembled into a block here.
    """

    version: int
    prev_hash: bytes
    bits: int
    height: int
    curtime: int
    #: The earliest valid ntime (getblocktemplate's mintime); None where the source gives none.
    mintime: int | None
    target: int
    coinbase_value: int
    coinbase_prefix: bytes
    coinbase_version: int
    coinbase_sequence: int
    coinbase_lock_time: int
    coinbase_outputs: tuple[TxOut, ...]
    merkle_path: tuple[bytes, ...]
    transactions: tuple[TemplateTransaction, ...] | None
    #: The witness commitment output's scriptPubKey, None for a template without one.
    witness_commitment_script: bytes | None
    #: NewTemplate.template_id (what SubmitSolution names); None for getblocktemplate.
    template_id: int | None = None
    #: NewTemplate.future_template: whether it waited for a new prev hash.
    future: bool = False

    def __post_init__(self) -> None:
        if len(self.prev_hash) != 32:
            raise ValueError(f"prev_hash must be 32 bytes, got {len(self.prev_hash)}")
        if any(len(node) != 32 for node in self.merkle_path):
            raise ValueError("every merkle_path node must be 32 bytes")
        if not 0 <= self.coinbase_value <= MAX_MONEY:
            raise ValueError(f"coinbase_value must be 0..{MAX_MONEY}, got {self.coinbase_value}")

    @property
    def start_ntime(self) -> int:
        """The ntime to start mining at: curtime, never below mintime (a block below it is invalid)."""
        return self.curtime if self.mintime is None else max(self.curtime, self.mintime)

    @classmethod
    def from_getblocktemplate(cls, result: Mapping[str, Any]) -> BlockTemplate:
        """The template in a getblocktemplate ``result`` (the JSON-RPC result object, decoded).

        Transactions are parsed and their ``txid``/``hash`` fields, when present, must match
        what the data hashes to; ``default_witness_commitment``, when present, must equal the
        commitment computed from the wtxids, so the block we build is the one Core validated.
        """
        if not isinstance(result, Mapping):
            raise ValueError(f"getblocktemplate result must be a JSON object, got {type(result).__name__}")
        version = _u32(result, "version")
        prev_hash = _hash(result, "previousblockhash")
        bits = _hex_u32(result, "bits")
        height = _int(result, "height", 0, 0x7FFF_FFFF)
        curtime = _u32(result, "curtime")
        mintime = _u32(result, "mintime") if "mintime" in result else None
        coinbase_value = _int(result, "coinbasevalue", 0, MAX_MONEY)
        try:
            nbits_target = target_from_nbits(bits)
        except ValueError as exc:
            raise ValueError(f"getblocktemplate field 'bits': {exc}") from exc
        target = _hex_target(result, "target") if "target" in result else nbits_target

        raw_transactions = result.get("transactions")
        if not isinstance(raw_transactions, list):
            raise ValueError("getblocktemplate field 'transactions' must be a list")
        transactions = tuple(_gbt_transaction(entry, index) for index, entry in enumerate(raw_transactions))

        commitment = witness_commitment_script(witness_commitment([tx.wtxid for tx in transactions]))
        if "default_witness_commitment" in result:
            given = _hex_bytes(result, "default_witness_commitment")
            if given != commitment:
                raise ValueError(
                    "getblocktemplate field 'default_witness_commitment' does not commit to the template's "
                    f"wtxids: got {given.hex()}, computed {commitment.hex()}"
                )

        return cls(
            version=version,
            prev_hash=prev_hash,
            bits=bits,
            height=height,
            curtime=curtime,
            mintime=mintime,
            target=target,
            coinbase_value=coinbase_value,
            coinbase_prefix=bip34_height_push(height),
            # The shape Bitcoin Core's own miner and sv2-tp give the coinbase (PROTOCOL.md §11): a
            # non-final sequence with lock_time height - 1, so gbt and TDP coinbases look alike.
            coinbase_version=COINBASE_TX_VERSION,
            coinbase_sequence=SEQUENCE_NONFINAL,
            coinbase_lock_time=max(height - 1, 0),
            coinbase_outputs=(TxOut(0, commitment),),
            merkle_path=tuple(merkle_path([tx.txid for tx in transactions])),
            transactions=transactions,
            witness_commitment_script=commitment,
        )

    @classmethod
    def from_template_distribution(
        cls,
        new_template: NewTemplate,
        set_new_prev_hash: SetNewPrevHash,
        transactions: Sequence[bytes] | None = None,
    ) -> BlockTemplate:
        """The template a TP's NewTemplate describes, mined on ``set_new_prev_hash``'s tip.

        A future template must be the one ``set_new_prev_hash`` activates; a non-future one
        applies to the current tip, set by an earlier (or the same) template's SetNewPrevHash.
        ``transactions`` are RequestTransactionData.Success.transaction_list; given, they must
        rebuild the merkle path (and the witness commitment, when there is one).  Without them a
        template with an empty merkle path is known to hold no transactions.
        """
        template_id = new_template.template_id
        if new_template.future_template:
            if set_new_prev_hash.template_id != template_id:
                raise ValueError(
                    f"SetNewPrevHash.template_id {set_new_prev_hash.template_id} does not activate "
                    f"the future NewTemplate.template_id {template_id}"
                )
        elif set_new_prev_hash.template_id > template_id:
            raise ValueError(
                f"SetNewPrevHash.template_id {set_new_prev_hash.template_id} is newer than the "
                f"non-future NewTemplate.template_id {template_id} mined on it"
            )
        try:
            height = bip34_height_from_script_sig(new_template.coinbase_prefix)
        except ValueError as exc:
            raise ValueError(f"NewTemplate.coinbase_prefix: {exc}") from exc
        try:
            outputs = parse_outputs(new_template.coinbase_tx_outputs, new_template.coinbase_tx_outputs_count)
        except ValueError as exc:
            raise ValueError(f"NewTemplate.coinbase_tx_outputs: {exc}") from exc
        # nBits is only checked here (the share check derives the network target from it); the
        # TP's own ``target`` may lie below it (PROTOCOL.md §7) and is kept as given.
        try:
            target_from_nbits(set_new_prev_hash.n_bits)
        except ValueError as exc:
            raise ValueError(f"SetNewPrevHash.n_bits: {exc}") from exc
        index = witness_commitment_index([out.script_pubkey for out in outputs])
        commitment = None if index is None else outputs[index].script_pubkey
        path = tuple(new_template.merkle_path)

        template = cls(
            version=new_template.version,
            prev_hash=set_new_prev_hash.prev_hash,
            bits=set_new_prev_hash.n_bits,
            height=height,
            # SRI forwards header_timestamp as the mining min_ntime (PROTOCOL.md §7); TDP gives no
            # separate earliest-valid time.
            curtime=set_new_prev_hash.header_timestamp,
            mintime=None,
            target=int.from_bytes(set_new_prev_hash.target, "little"),
            coinbase_value=new_template.coinbase_tx_value_remaining,
            coinbase_prefix=new_template.coinbase_prefix,
            coinbase_version=new_template.coinbase_tx_version,
            coinbase_sequence=new_template.coinbase_tx_input_sequence,
            coinbase_lock_time=new_template.coinbase_tx_locktime,
            coinbase_outputs=outputs,
            merkle_path=path,
            transactions=() if not path else None,
            witness_commitment_script=commitment,
            template_id=template_id,
            future=new_template.future_template,
        )
        return template if transactions is None else template.with_transactions(transactions)

    def with_transactions(
        self,
        transaction_list: Sequence[bytes],
        *,
        known: Mapping[bytes, TemplateTransaction] | None = None,
        witness_reserved_value: bytes = WITNESS_RESERVED_VALUE,
    ) -> BlockTemplate:
        """This template with its transactions: RequestTransactionData.Success.transaction_list.

        They must rebuild the merkle path, and their wtxids the witness commitment with
        ``witness_reserved_value`` (Success.excess_data; sv2-tp sends the 32 zero bytes the spec
        computes the commitment with, PROTOCOL.md §7); otherwise ValueError.  ``known`` maps a
        transaction's bytes to an entry parsed before (a previous template's), so consecutive
        templates share their transactions instead of parsing and holding each one again.
        """
        parsed: list[TemplateTransaction] = []
        for index, data in enumerate(transaction_list):
            entry = known.get(data) if known is not None else None
            parsed.append(
                entry if entry is not None else TemplateTransaction.from_data(data, what=f"transaction_list[{index}]")
            )
        if tuple(merkle_path([tx.txid for tx in parsed])) != self.merkle_path:
            raise ValueError(f"the {len(parsed)} transactions do not rebuild NewTemplate.merkle_path")
        if self.witness_commitment_script is not None:
            computed = witness_commitment_script(
                witness_commitment([tx.wtxid for tx in parsed], witness_reserved_value)
            )
            if not self.witness_commitment_script.startswith(computed):
                raise ValueError("the transactions' wtxids do not match the witness commitment in coinbase_tx_outputs")
        return replace(self, transactions=tuple(parsed))


def _gbt_transaction(entry: object, index: int) -> TemplateTransaction:
    what = f"transactions[{index}]"
    if not isinstance(entry, Mapping):
        raise ValueError(f"getblocktemplate field '{what}' must be a JSON object")
    data = _hex_bytes(entry, "data", what)
    fee = _int(entry, "fee", 0, MAX_MONEY, what) if "fee" in entry else None
    tx = TemplateTransaction.from_data(data, fee, what=f"getblocktemplate field '{what}.data'")
    # Core calls the wtxid "hash"; both are display hex.
    for name, computed in (("txid", tx.txid), ("hash", tx.wtxid)):
        if name in entry and _hash(entry, name, what) != computed:
            raise ValueError(
                f"getblocktemplate field '{what}.{name}' is {entry[name]}, "
                f"but the data hashes to {computed[::-1].hex()}"
            )
    return tx


def _field(obj: Mapping[str, Any], name: str, where: str | None) -> tuple[Any, str]:
    label = f"{where}.{name}" if where else name
    if name not in obj:
        raise ValueError(f"getblocktemplate field '{label}' is missing")
    return obj[name], label


def _int(obj: Mapping[str, Any], name: str, low: int, high: int, where: str | None = None) -> int:
    value, label = _field(obj, name, where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"getblocktemplate field '{label}' must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"getblocktemplate field '{label}' must be {low}..{high}, got {value}")
    return value


def _u32(obj: Mapping[str, Any], name: str) -> int:
    return _int(obj, name, 0, 0xFFFF_FFFF)


def _hex_bytes(obj: Mapping[str, Any], name: str, where: str | None = None) -> bytes:
    value, label = _field(obj, name, where)
    if not isinstance(value, str):
        raise ValueError(f"getblocktemplate field '{label}' must be a hex string, got {value!r}")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise ValueError(f"getblocktemplate field '{label}' is not hex: {value!r}") from exc


def _hash(obj: Mapping[str, Any], name: str, where: str | None = None) -> bytes:
    """A display-hex hash (as RPC prints it) turned into raw internal order."""
    raw = _hex_bytes(obj, name, where)
    if len(raw) != 32:
        label = f"{where}.{name}" if where else name
        raise ValueError(f"getblocktemplate field '{label}' must be 64 hex digits, got {len(raw) * 2}")
    return raw[::-1]


def _hex_u32(obj: Mapping[str, Any], name: str) -> int:
    """getblocktemplate's ``bits``: the compact target as 8 hex digits, big-endian."""
    raw = _hex_bytes(obj, name)
    if len(raw) != 4:
        raise ValueError(f"getblocktemplate field '{name}' must be 8 hex digits, got {len(raw) * 2}")
    return int.from_bytes(raw, "big")


def _hex_target(obj: Mapping[str, Any], name: str) -> int:
    """getblocktemplate's ``target``: 64 hex digits, big-endian (not a raw hash: no reversal)."""
    raw = _hex_bytes(obj, name)
    if len(raw) != 32:
        raise ValueError(f"getblocktemplate field '{name}' must be 64 hex digits, got {len(raw) * 2}")
    value = int.from_bytes(raw, "big")
    if not 0 < value <= MAX_TARGET:
        raise ValueError(f"getblocktemplate field '{name}' must be a non-zero target")
    return value
