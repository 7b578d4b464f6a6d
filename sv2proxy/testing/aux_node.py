"""AuxNode: a JSON-RPC double of an AuxPoW chain, answering as Namecoin Core does.

Methods, names and shapes as Namecoin Core's (``src/rpc/auxpow_miner.cpp``, ``rpc/mining.cpp``,
``wallet/rpc/auxpow.cpp``):

- ``createauxblock <address>`` -> ``{"hash", "chainid", "previousblockhash", "coinbasevalue",
  "bits", "height", "_target"}``; ``hash`` and ``previousblockhash`` are display hex,
  ``bits`` 8 hex digits, ``_target`` the target's 32 bytes little-endian in hex.  One block per
  payout script and tip: the same address gets the same block until the tip moves, and a new
  tip forgets every block made before it (their hashes become "block hash unknown", -8);
- ``submitauxblock <hash> <auxpow>`` -> true when the proof makes the block valid and it
  extends the tip, false otherwise;
- ``getauxblock`` -> ``createauxblock`` for the node's own wallet address; ``getauxblock
  <hash> <auxpow>`` -> ``submitauxblock``;
- ``getblockchaininfo`` -> ``chain``, ``blocks``, ``headers``, ``bestblockhash``, ...

Every proof is checked strictly by :func:`~sv2proxy.merge_mining.verify.check_auxpow`: the
commitment once and placed by the rules, both merkle branches, the slot for this chain's id,
the parent block's work against the aux target.  Why a proof failed is kept in
:attr:`AuxNode.rejected` for the tests.  The chain itself is a list of headers, not a ledger:
what is modelled is the merge-mining interface, not a coin.

For tests of the failure paths, :attr:`AuxNode.misbehave` makes the node answer garbage
(``"garbage"``) or never answer (``"hang"``); :meth:`AuxNode.stop` takes it away mid-run and
:meth:`AuxNode.mine_block` moves its tip as another miner would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorTime
from twisted.logger import Logger
from twisted.web import server

from sv2proxy.bitcoin.address import Network, script_for_address
from sv2proxy.bitcoin.hashing import sha256d
from sv2proxy.bitcoin.serialize import BlockHeader
from sv2proxy.bitcoin.target import target_from_nbits
from sv2proxy.errors import ServerError
from sv2proxy.merge_mining.proof import AuxPow
from sv2proxy.merge_mining.verify import AuxPowInvalid, check_auxpow
from sv2proxy.testing.connections import ClosableConnections
from sv2proxy.testing.regtest.rpc import (
    RPC_DESERIALIZATION_ERROR,
    RPC_INVALID_ADDRESS_OR_KEY,
    RPC_INVALID_PARAMETER,
    JSONRPCResource,
    Method,
    Param,
    RPCError,
)

log = Logger()

#: Namecoin's block version: the auxpow flag and the chain id above bit 16.
VERSION_AUXPOW = 1 << 8
BASE_VERSION = 4
REGTEST_BITS = 0x207FFFFF
#: BIP173's example key as a regtest address: the node's own "wallet" for getauxblock.
WALLET_ADDRESS = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


@dataclass(frozen=True, slots=True)
class AuxChainBlock:
    """A block of the aux chain: its header and, once mined, who found it and how."""

    header: BlockHeader
    height: int
    payout: bytes
    coinbase_value: int

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def display_hash(self) -> str:
        return self.header.hash[::-1].hex()


class AuxNode:
    """An AuxPoW chain with chain id ``chain_id`` mined at ``bits``, behind Namecoin's RPC."""

    def __init__(
        self,
        reactor: IReactorTime,
        *,
        chain_id: int,
        bits: int = REGTEST_BITS,
        name: str = "auxchain",
        rpc_endpoint: str = "tcp:0:interface=127.0.0.1",
        rpcuser: str = "aux",
        rpcpassword: str = "secret",
        network: Network = Network.REGTEST,
        coinbase_value: int = 50 * 100_000_000,
        strict_chain_id: bool = True,
    ) -> None:
        self.chain_id = chain_id
        self.bits = bits
        self.target = target_from_nbits(bits)
        self.name = name
        self.network = network
        self.coinbase_value = coinbase_value
        self.strict_chain_id = strict_chain_id
        #: None, "garbage" (malformed answers) or "hang" (no answer at all).
        self.misbehave: str | None = None
        self._reactor = reactor
        self._endpoint = rpc_endpoint
        self._userpass = f"{rpcuser}:{rpcpassword}"
        self.chain: list[AuxChainBlock] = []
        self.tip = sha256d(b"genesis of " + name.encode())
        #: (block hash display hex, reason) of every refused submission.
        self.rejected: list[tuple[str, str]] = []
        self._blocks: dict[bytes, AuxChainBlock] = {}  # by hash: what createauxblock handed out
        self._current: dict[bytes, AuxChainBlock] = {}  # by payout script, on the current tip
        self._counter = 0
        self._hanging: list[Deferred[Any]] = []
        self.resource = JSONRPCResource(self._methods(), lambda: self._userpass, reactor)
        self._port: IListeningPort | None = None
        self._connections: ClosableConnections | None = None

    # -- lifetime --------------------------------------------------------------------------

    async def start(self) -> None:
        if self._port is not None:
            raise ServerError("the aux node is already running")
        site = server.Site(self.resource)
        site.log = lambda request: None  # type: ignore[method-assign]
        site.noisy = False
        site.displayTracebacks = False
        self._connections = ClosableConnections(site)
        self._connections.noisy = False
        self._port = await serverFromString(self._reactor, self._endpoint).listen(self._connections)
        log.info(
            "aux node {name} (chain id {chain_id}) serving RPC on {url}",
            name=self.name,
            chain_id=self.chain_id,
            url=self.rpc_url,
        )

    async def stop(self) -> None:
        """Stop answering: close the port and every open connection (also mid-request)."""
        self._release_hanging()
        waiting: list[Deferred[Any]] = []
        if self._port is not None:
            stopped = self._port.stopListening()
            if stopped is not None:
                waiting.append(stopped)
            self._port = None
        if self._connections is not None:
            waiting.append(self._connections.close_all())
            self._connections = None
        self.resource.close()
        await DeferredList(waiting, consumeErrors=True)

    @property
    def rpc_url(self) -> str:
        if self._port is None:
            raise ServerError("the aux node is not listening")
        address = self._port.getHost()
        return f"http://{address.host}:{address.port}/"  # type: ignore[attr-defined]

    @property
    def height(self) -> int:
        return len(self.chain)

    # -- the chain -------------------------------------------------------------------------

    def mine_block(self) -> AuxChainBlock:
        """Another miner extends the chain: the tip moves and every handed-out block is stale."""
        block = self._new_block(b"\x6a")
        self._extend(block)
        return block

    def _new_block(self, payout: bytes) -> AuxChainBlock:
        self._counter += 1
        # A stand-in for the coinbase and transactions: unique per block, bound to the payout.
        root = sha256d(payout + self._counter.to_bytes(8, "little") + self.name.encode())
        header = BlockHeader(
            version=(self.chain_id << 16) | VERSION_AUXPOW | BASE_VERSION,
            prev_hash=self.tip,
            merkle_root=root,
            time=int(self._reactor.seconds()) & 0xFFFF_FFFF,
            bits=self.bits,
            nonce=0,
        )
        return AuxChainBlock(header, self.height + 1, payout, self.coinbase_value)

    def _extend(self, block: AuxChainBlock) -> None:
        self.chain.append(block)
        self.tip = block.hash
        # Namecoin clears every block it handed out when the tip changes.
        self._blocks.clear()
        self._current.clear()

    # -- RPC methods -----------------------------------------------------------------------

    def _methods(self) -> dict[str, Method]:
        return {
            "createauxblock": Method(self._createauxblock, (Param("address", "str"),)),
            "submitauxblock": Method(self._submitauxblock, (Param("hash", "str"), Param("auxpow", "str"))),
            "getauxblock": Method(self._getauxblock, (Param("hash", "str", None), Param("auxpow", "str", None))),
            "getblockchaininfo": Method(self._getblockchaininfo),
        }

    def _misbehaving(self) -> Any:
        if self.misbehave == "hang":
            waiter: Deferred[Any] = Deferred(lambda d: None)
            self._hanging.append(waiter)
            return waiter
        return None

    def _release_hanging(self) -> None:
        hanging, self._hanging = self._hanging, []
        for waiter in hanging:
            if not waiter.called:
                waiter.cancel()

    def _createauxblock(self, address: str) -> Any:
        stuck = self._misbehaving()
        if stuck is not None:
            return stuck
        try:
            script = script_for_address(address, self.network)
        except ValueError:
            raise RPCError(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid coinbase payout address") from None
        if self.misbehave == "garbage":
            return {"hash": "not hex", "chainid": "one", "bits": None}
        block = self._current.get(script)
        if block is None:
            block = self._new_block(script)
            self._current[script] = block
            self._blocks[block.hash] = block
        return {
            "hash": block.display_hash,
            "chainid": self.chain_id,
            "previousblockhash": block.header.prev_hash[::-1].hex(),
            "coinbasevalue": block.coinbase_value,
            "bits": f"{self.bits:08x}",
            "height": block.height,
            "_target": self.target.to_bytes(32, "little").hex(),
        }

    def _submitauxblock(self, hash: str, auxpow: str) -> Any:  # noqa: A002 (Namecoin's name)
        stuck = self._misbehaving()
        if stuck is not None:
            return stuck
        try:
            raw_hash = bytes.fromhex(hash)[::-1]
        except ValueError:
            raise RPCError(RPC_INVALID_PARAMETER, "invalid block hash hex") from None
        block = self._blocks.get(raw_hash)
        if block is None:
            raise RPCError(RPC_INVALID_PARAMETER, "block hash unknown")
        try:
            proof = AuxPow.parse(bytes.fromhex(auxpow))
        except ValueError as e:
            raise RPCError(RPC_DESERIALIZATION_ERROR, f"auxpow decode failed: {e}") from None
        try:
            check_auxpow(proof, block.hash, self.chain_id, self.target, strict_chain_id=self.strict_chain_id)
        except AuxPowInvalid as e:
            self.rejected.append((hash, str(e)))
            log.warn("aux node {name}: block {hash} refused: {reason}", name=self.name, hash=hash, reason=e)
            return False
        self._extend(block)
        log.info(
            "aux node {name}: block {hash} accepted at height {height}", name=self.name, hash=hash, height=block.height
        )
        return True

    def _getauxblock(self, hash: str | None, auxpow: str | None) -> Any:  # noqa: A002
        if hash is None and auxpow is None:
            return self._createauxblock(WALLET_ADDRESS)
        if hash is None or auxpow is None:
            raise RPCError(RPC_INVALID_PARAMETER, "getauxblock takes no arguments or both hash and auxpow")
        return self._submitauxblock(hash, auxpow)

    def _getblockchaininfo(self) -> Any:
        stuck = self._misbehaving()
        if stuck is not None:
            return stuck
        if self.misbehave == "garbage":
            return ["not", "an", "object"]
        return {
            "chain": "regtest" if self.network is Network.REGTEST else self.network.name.lower(),
            "blocks": self.height,
            "headers": self.height,
            "bestblockhash": self.tip[::-1].hex(),
            "bits": f"{self.bits:08x}",
            "initialblockdownload": False,
            "chainid": self.chain_id,
        }
