"""``addr(ADDRESS)`` and ``raw(HEX)`` output descriptors with BIP380 checksums (BIP380, BIP385).

A payout may be given as a descriptor instead of a bare address, as Bitcoin Core's wallet
prints them (``getaddressinfo`` → ``desc``).  Only the two top-level forms that name one
fixed scriptPubKey are accepted; key expressions (``wpkh(...)``, ``tr(...)``, ranged
xpubs) would need key derivation and are refused by name.  The checksum after ``#`` is
optional, as BIP380 allows, but verified when present; error texts follow Core's
``descriptor.cpp`` so a user can compare them with what ``getdescriptorinfo`` says.
"""

from __future__ import annotations

import re

from sv2proxy.bitcoin.address import Network, script_for_address

# BIP380: three groups of 32 characters; a symbol is the position in its group, and every
# third character adds a symbol made of the three group numbers.
_INPUT_CHARSET = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ "
_CHECKSUM_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0xF5DEE51989, 0xA9FDCA3312, 0x1BAB10E32D, 0x3706B1677A, 0x644D626FFD)
CHECKSUM_LENGTH = 8
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_FUNCTION = re.compile(r"([A-Za-z0-9_]+)\((.*)\)", re.DOTALL)


def _polymod(symbols: list[int]) -> int:
    chk = 1
    for value in symbols:
        top = chk >> 35
        chk = (chk & 0x7FFFFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATOR):
            if (top >> i) & 1:
                chk ^= generator
    return chk


def _expand(descriptor: str) -> list[int]:
    symbols: list[int] = []
    groups: list[int] = []
    for char in descriptor:
        position = _INPUT_CHARSET.find(char)
        if position < 0:
            raise ValueError(f"invalid character {char!r} in descriptor")
        symbols.append(position & 31)
        groups.append(position >> 5)
        if len(groups) == 3:
            symbols.append(groups[0] * 9 + groups[1] * 3 + groups[2])
            groups = []
    if len(groups) == 1:
        symbols.append(groups[0])
    elif len(groups) == 2:
        symbols.append(groups[0] * 3 + groups[1])
    return symbols


def descriptor_checksum(descriptor: str) -> str:
    """The 8-character BIP380 checksum of ``descriptor`` (given without ``#...``)."""
    checksum = _polymod(_expand(descriptor) + [0] * CHECKSUM_LENGTH) ^ 1
    return "".join(
        _CHECKSUM_CHARSET[(checksum >> (5 * (CHECKSUM_LENGTH - 1 - i))) & 31] for i in range(CHECKSUM_LENGTH)
    )


def add_checksum(descriptor: str) -> str:
    """``descriptor#checksum``, as Core's getdescriptorinfo prints it."""
    return f"{descriptor}#{descriptor_checksum(descriptor)}"


def split_checksum(text: str) -> str:
    """The descriptor without its ``#checksum``, after verifying the checksum if there is one."""
    body, hash_sign, checksum = text.partition("#")
    _expand(body)  # refuse characters outside the BIP380 set whether or not a checksum follows
    if not hash_sign:
        return body
    if "#" in checksum:
        raise ValueError("multiple '#' symbols")
    if len(checksum) != CHECKSUM_LENGTH:
        raise ValueError(f"expected {CHECKSUM_LENGTH} character checksum, not {len(checksum)} characters")
    computed = descriptor_checksum(body)
    if checksum != computed:
        raise ValueError(f"provided checksum {checksum!r} does not match computed checksum {computed!r}")
    return body


def parse_descriptor(text: str, network: Network) -> bytes:
    """The scriptPubKey that ``addr(ADDRESS)`` or ``raw(HEX)`` (optionally ``#checksum``) names.

    ``addr`` takes any address :func:`~sv2proxy.bitcoin.address.script_for_address` accepts
    for ``network``; ``raw`` takes a non-empty even-length hex script, as Core's IsHex does.
    """
    body = split_checksum(text)
    match = _FUNCTION.fullmatch(body)
    if match is None:
        raise ValueError("a descriptor is FUNCTION(ARGUMENT), e.g. addr(...) or raw(...)")
    function, argument = match.groups()
    if function == "raw":
        if not _HEX.fullmatch(argument):
            raise ValueError("raw script is not hex")
        return bytes.fromhex(argument)
    if function == "addr":
        try:
            return script_for_address(argument, network)
        except ValueError as exc:
            raise ValueError(f"address in addr() is not valid: {exc}") from None
    raise ValueError(f"unsupported descriptor {function}(): only addr() and raw() name a fixed output script")
