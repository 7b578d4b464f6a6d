"""Addresses -> scriptPubKey: base58check (P2PKH, P2SH), bech32 (P2WPKH, P2WSH), bech32m (P2TR).

The rules are BIP13 (P2SH), BIP173 (bech32, segwit v0) and BIP350 (bech32m for v1+), with
each network's prefixes as in Bitcoin Core's ``kernel/chainparams.cpp``.  A payout address
is where a found block's reward goes, so anything doubtful is refused with a message naming
the problem: the wrong network, a bad checksum, a witness version no wallet can spend yet.
Messages never repeat the address itself: what lands in this function may be a private key
pasted into the wrong field, and error messages end up in logs.

Libraries: base58check through ``base58`` (a project dependency already); the bech32/bech32m
checksum and 5<->8-bit regrouping through ``base58-bech32`` (the btclib developers' stdlib-only,
typed codec, maintained, derived from Pieter Wuille's BIP173/BIP350 reference code).  The
segwit address rules on top (HRP, witness version, program length, which checksum goes with
which version) are BIP350's reference ``decode``, written out here because that library
deliberately leaves them to the caller.  The pure-Python ``bech32`` package stops at 2020
(before bech32m) and ``bech32m`` has had no release since 2023.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType

import base58
from base58_bech32.bech32 import BECH32_1_CONST, BECH32_M_CONST, bech32_decode, convertbits

from sv2proxy.bitcoin.script import p2pkh_script, p2sh_script, witness_program_script

BECH32_MAX_LENGTH = 90  # BIP173's limit for segwit addresses
_BASE58_ALPHABET = frozenset("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
_BECH32_CHARSET = frozenset("qpzry9x8gf2tvdw0s3jn54khce6mua7l")
_MAX_BASE58_ADDRESS_LENGTH = 64  # a 25-byte payload is at most 35 characters


class Network(enum.Enum):
    """The Bitcoin networks a payout address can belong to; values are our config names."""

    MAINNET = "mainnet"
    TESTNET = "testnet"
    TESTNET4 = "testnet4"
    SIGNET = "signet"
    REGTEST = "regtest"

    @property
    def p2pkh_prefix(self) -> int:
        """The base58check version byte of P2PKH addresses."""
        return _PARAMS[self].p2pkh_prefix

    @property
    def p2sh_prefix(self) -> int:
        """The base58check version byte of P2SH addresses."""
        return _PARAMS[self].p2sh_prefix

    @property
    def bech32_hrp(self) -> str:
        """The human-readable part of segwit addresses."""
        return _PARAMS[self].bech32_hrp

    @property
    def core_chain(self) -> str:
        """The name Bitcoin Core's getblockchaininfo reports as ``chain``."""
        return _PARAMS[self].core_chain

    @classmethod
    def from_name(cls, name: str) -> Network:
        """The network for our name or Core's ``chain`` name ("main", "test", ...)."""
        lowered = name.strip().lower()
        for network in cls:
            if lowered in (network.value, network.core_chain):
                return network
        known = ", ".join(n.value for n in cls)
        raise ValueError(f"unknown network {name!r} (known: {known})")


@dataclass(frozen=True, slots=True)
class _NetworkParams:
    p2pkh_prefix: int
    p2sh_prefix: int
    bech32_hrp: str
    core_chain: str


# testnet, testnet4 and signet share every prefix, so an address alone cannot tell them apart.
_PARAMS = MappingProxyType(
    {
        Network.MAINNET: _NetworkParams(0x00, 0x05, "bc", "main"),
        Network.TESTNET: _NetworkParams(0x6F, 0xC4, "tb", "test"),
        Network.TESTNET4: _NetworkParams(0x6F, 0xC4, "tb", "testnet4"),
        Network.SIGNET: _NetworkParams(0x6F, 0xC4, "tb", "signet"),
        Network.REGTEST: _NetworkParams(0x6F, 0xC4, "bcrt", "regtest"),
    }
)
_KNOWN_HRPS = frozenset(params.bech32_hrp for params in _PARAMS.values())


def script_for_address(address: str, network: Network) -> bytes:
    """The scriptPubKey that pays ``address``, which must belong to ``network``.

    Accepts P2PKH and P2SH (base58check), P2WPKH and P2WSH (bech32, witness v0) and P2TR
    (bech32m, witness v1, 32-byte program).  Other witness versions and v1 programs that
    are not 32 bytes are valid BIP350 addresses but anyone-can-spend today, so they are
    refused as unsupported rather than paid.
    """
    if not isinstance(address, str):
        raise ValueError(f"an address is a string, got {type(address).__name__}")
    if not address:
        raise ValueError("empty address")
    if address != address.strip():
        raise ValueError("address has leading or trailing whitespace")
    lowered = address.lower()
    if any(lowered.startswith(hrp + "1") for hrp in _KNOWN_HRPS):
        return _segwit_script(address, network)
    return _base58_script(address, network)


def decode_segwit_address(address: str) -> tuple[str, int, bytes]:
    """(HRP, witness version, program) of a BIP350-valid segwit address of any version.

    The HRP comes back lowercase and is not checked against a network here.
    """
    try:
        hrp, data, checksum_const = bech32_decode(address, limit=BECH32_MAX_LENGTH)
    except ValueError as exc:
        raise ValueError(_bech32_error(str(exc))) from None
    if not data:
        raise ValueError("empty data section")
    version = data[0]
    if version > 16:
        raise ValueError(f"invalid witness version {version}")
    try:
        program = bytes(convertbits(data[1:], 5, 8, pad=False))
    except ValueError as exc:
        raise ValueError(f"invalid witness program: {exc}") from None
    if not 2 <= len(program) <= 40:
        raise ValueError(f"invalid witness program length {len(program)} (2..40 bytes)")
    if version == 0 and len(program) not in (20, 32):
        raise ValueError(f"invalid witness v0 program length {len(program)} (20 or 32 bytes, BIP141)")
    expected = BECH32_1_CONST if version == 0 else BECH32_M_CONST
    if checksum_const != expected:
        wanted, got = ("bech32", "bech32m") if version == 0 else ("bech32m", "bech32")
        raise ValueError(f"bad checksum: witness version {version} needs {wanted}, the address uses {got}")
    return hrp, version, program


def _segwit_script(address: str, network: Network) -> bytes:
    hrp, version, program = decode_segwit_address(address)
    if hrp != network.bech32_hrp:
        owners = [n for n in Network if n.bech32_hrp == hrp]
        raise ValueError(f"address is for {_names(owners)}, not {network.value}")
    if version == 0 or (version == 1 and len(program) == 32):
        return witness_program_script(version, program)
    if version == 1:
        raise ValueError(f"unsupported witness version 1 program of {len(program)} bytes (P2TR is 32)")
    raise ValueError(f"unsupported witness version {version}")


def _base58_script(address: str, network: Network) -> bytes:
    bad = sorted(set(address) - _BASE58_ALPHABET)
    if bad:
        if _looks_like_bech32(address):
            hrp = address[: address.rfind("1")].lower()
            known = ", ".join(sorted(_KNOWN_HRPS))
            raise ValueError(f"unknown bech32 human-readable part {hrp!r} (known: {known})")
        raise ValueError(f"invalid base58 character {bad[0]!r}")
    if len(address) > _MAX_BASE58_ADDRESS_LENGTH:
        raise ValueError(f"address is too long ({len(address)} characters)")
    try:
        payload = base58.b58decode_check(address)
    except ValueError:
        raise ValueError("bad checksum (base58check)") from None
    if len(payload) != 21:
        raise ValueError(f"base58check payload is {len(payload)} bytes, an address has 21")
    version, hash160 = payload[0], payload[1:]
    if version == network.p2pkh_prefix:
        return p2pkh_script(hash160)
    if version == network.p2sh_prefix:
        return p2sh_script(hash160)
    owners = [n for n in Network if version in (n.p2pkh_prefix, n.p2sh_prefix)]
    if owners:
        raise ValueError(f"address is for {_names(owners)}, not {network.value}")
    raise ValueError(f"unknown base58 address version byte {version:#04x}")


def _looks_like_bech32(address: str) -> bool:
    separator = address.rfind("1")
    data = address[separator + 1 :].lower()
    return separator > 0 and len(data) >= 6 and set(data) <= _BECH32_CHARSET


def _bech32_error(reason: str) -> str:
    """The library's refusal in our words: checksum failures say "bad checksum" like base58's."""
    if reason.startswith("invalid checksum"):
        return "bad checksum (bech32)"
    return f"invalid bech32 address: {reason}"


def _names(networks: Iterable[Network]) -> str:
    names = [n.value for n in networks]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
