"""ElligatorSwift and BIP324 XDH through coincurve's private cffi layer (PROTOCOL.md §5.1, §9)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from sv2proxy.noise.ellswift import (
    ellswift_create,
    ellswift_decode,
    ellswift_decode_xonly,
    ellswift_encode,
    ellswift_xdh,
)

# secp256k1 group order: valid secrets are 1..N-1.
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
secrets = st.integers(min_value=1, max_value=N - 1).map(lambda k: k.to_bytes(32, "big"))


def test_bip324_vectors() -> None:
    """BIP324 packet_encoding_test_vectors.csv rows 1 (initiator) and 999 (responder).

    This is the guard against a coincurve upgrade breaking the private
    ``_libsecp256k1.lib.secp256k1_ellswift_*`` layer that sv2proxy depends on
    (coincurve is pinned to 21.0.0 for this reason): if this fails after an
    upgrade, the Noise handshake is broken.
    """
    # row 1: we are the initiator, so our encoding is party A's
    priv = bytes.fromhex("e79f04ad4c684525ff3e3cf7c19f4cdb11193d387d7f3fe82a948a0c3165f5fe")
    ours = bytes.fromhex(
        "4eff53ea1945e57b5d170565e760d771e5d496101c1005c302fd687af80d8b85"
        "8c5a681c474fc4c0546ee464a1b95899ecb9d4f50c2c0854fe029fc054ae6777"
    )
    theirs = bytes.fromhex(
        "824a1da0530fa695b95b375fee2a56ec96ce375ddd2fcf8367cc8ec1c0b751a3"
        "304bbef5dc96543acaac50c24be8cb39906ef8521727de0c6e96c2060a026bd7"
    )
    assert ellswift_decode_xonly(ours).hex() == (
        "b63341693587b4944b865485cffcc34707b3e0760a6ba8d1d402fc1c996c4e91"
    )
    assert ellswift_decode_xonly(ours) == PrivateKey(priv).public_key.format()[1:]
    assert ellswift_xdh(ours, theirs, priv, initiator=True).hex() == (
        "05ac09c882b2cddd57fd4a1a14f93ae78d78a2ab2adb8cb6d67176cdb3101e15"
    )

    # row 999: we are the responder, so our encoding is party B's
    priv = bytes.fromhex("53a915e6d8f6c5bbb93e537081085e9e642dc525649acf05be74e3a825e20921")
    ours = bytes.fromhex(
        "715d7b8357dd4d15a07b3f8c6764ebd9927140f75047fb50478c33ea8889d710"
        "511cdf39aa0fd6b1e94ea660d87f9d97bffc548646f9e2aaebc1468fe563fb97"
    )
    theirs = bytes.fromhex(
        "cea7abc3112397b894bd3e89a615248af473f897bbdd30997c20e53e7ce499a2"
        "95e55c4c5655cd3d21191e76c8af0aa1bbea10fd1b540a42d0fbed388dc59877"
    )
    assert ellswift_xdh(theirs, ours, priv, initiator=False).hex() == (
        "08cbe6a86ff92a9757b2aeea92b8b2f4d78426786a2caec99c3cc73d7dda47ab"
    )


@settings(max_examples=50, deadline=None)
@given(secret=secrets, rnd32=st.binary(min_size=32, max_size=32))
def test_encode_decode_round_trip(secret: bytes, rnd32: bytes) -> None:
    public = PrivateKey(secret).public_key.format()
    encoding = ellswift_encode(public, rnd32)
    assert len(encoding) == 64
    assert ellswift_decode(encoding) == public  # ElligatorSwift keeps the y parity
    assert ellswift_decode(ellswift_create(secret, rnd32)) == public
    assert ellswift_decode(ellswift_create(secret)) == public


@settings(max_examples=50, deadline=None)
@given(a=secrets, b=secrets)
def test_both_parties_derive_the_same_secret(a: bytes, b: bytes) -> None:
    ell_a = ellswift_create(a)
    ell_b = ellswift_create(b)
    assert ellswift_xdh(ell_a, ell_b, a, initiator=True) == ellswift_xdh(
        ell_a, ell_b, b, initiator=False
    )


@settings(max_examples=100, deadline=None)
@given(encoding=st.binary(min_size=64, max_size=64))
def test_every_64_byte_string_decodes(encoding: bytes) -> None:
    """A peer cannot make decoding fail: every string is some point."""
    assert len(ellswift_decode(encoding)) == 33


def test_create_without_aux_is_deterministic_and_differs_from_zero_aux() -> None:
    secret = bytes([7]) * 32
    assert ellswift_create(secret) == ellswift_create(secret)
    assert ellswift_create(secret) != ellswift_create(secret, bytes(32))


@pytest.mark.parametrize(
    "call",
    [
        lambda: ellswift_decode(bytes(63)),
        lambda: ellswift_encode(PrivateKey(bytes([1]) * 32).public_key.format(), bytes(31)),
        lambda: ellswift_encode(b"\x02" + bytes(32), bytes(32)),  # x = 0 is not on the curve
        lambda: ellswift_create(bytes(31)),
        lambda: ellswift_create(bytes(32)),  # zero is not a secret key
        lambda: ellswift_xdh(bytes(64), bytes(64), bytes(31), initiator=True),
        lambda: ellswift_xdh(bytes(64), bytes(65), bytes([1]) * 32, initiator=True),
    ],
)
def test_bad_inputs_raise_value_error(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()
