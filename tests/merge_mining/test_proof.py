"""Namecoin's CAuxPow serialization: a per-field vector, round trips, strict parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.bitcoin.coinbase import build_coinbase
from sv2proxy.merge_mining.proof import AuxPow

COINBASE = build_coinbase(extranonce_size=2, payouts=((b"\x51", 1),), height=1).serialize(b"\xaa\xbb", False)
HEADER = bytes(range(80))
H1 = b"\x11" * 32
H2 = b"\x22" * 32
H3 = b"\x33" * 32


def test_vector() -> None:
    proof = AuxPow(COINBASE, (H1,), (H2, H3), 2, HEADER)
    expected = b"".join(
        (
            COINBASE,  # the parent coinbase, legacy serialization
            bytes(32),  # hashBlock: zero, never read
            b"\x01",  # coinbase branch: 1 hash
            H1,
            b"\x00\x00\x00\x00",  # nIndex 0, LE i32
            b"\x02",  # chain branch: 2 hashes
            H2,
            H3,
            b"\x02\x00\x00\x00",  # nChainIndex 2, LE i32
            HEADER,  # the 80-byte parent header
        )
    )
    assert proof.serialize() == expected
    assert AuxPow.parse(expected) == proof


def test_a_witness_coinbase_is_read_as_its_legacy_form() -> None:
    template = build_coinbase(extranonce_size=2, payouts=((b"\x51", 1),), height=1, witness=True)
    legacy = template.serialize(b"\x00\x01", with_witness=False)
    data = template.serialize(b"\x00\x01", with_witness=True) + bytes(32) + b"\x00" + bytes(4) + b"\x00" + bytes(4)
    assert AuxPow.parse(data + HEADER).coinbase == legacy


hashes = st.lists(st.binary(min_size=32, max_size=32), max_size=12).map(tuple)


@given(hashes, hashes, st.integers(-(2**31), 2**31 - 1), st.binary(min_size=80, max_size=80))
def test_roundtrip(branch: tuple[bytes, ...], chain: tuple[bytes, ...], index: int, header: bytes) -> None:
    proof = AuxPow(COINBASE, branch, chain, index, header)
    assert AuxPow.parse(proof.serialize()) == proof


def test_truncation_anywhere_is_a_value_error() -> None:
    data = AuxPow(COINBASE, (H1,), (H2,), 1, HEADER).serialize()
    for cut in range(len(data)):
        with pytest.raises(ValueError):
            AuxPow.parse(data[:cut])


def test_trailing_bytes() -> None:
    with pytest.raises(ValueError, match="trailing"):
        AuxPow.parse(AuxPow(COINBASE, (), (), 0, HEADER).serialize() + b"\x00")


def test_absurd_branch_length() -> None:
    data = COINBASE + bytes(32) + b"\xfd\x00\x10" + bytes(40)
    with pytest.raises(ValueError, match="more than"):
        AuxPow.parse(data)


@pytest.mark.parametrize(
    "kwargs",
    [{"parent_header": b"short"}, {"chain_branch": (b"x",)}, {"chain_index": 2**31}],
)
def test_fields_are_checked(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {
        "coinbase": COINBASE,
        "coinbase_branch": (),
        "chain_branch": (),
        "chain_index": 0,
        "parent_header": HEADER,
    }
    with pytest.raises(ValueError):
        AuxPow(**{**base, **kwargs})  # type: ignore[arg-type]
