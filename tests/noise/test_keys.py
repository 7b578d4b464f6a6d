"""Authority key text forms (PROTOCOL.md §5.4, vectors of §5.6)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sv2proxy.noise.keys import (
    AuthorityKey,
    decode_authority_public_key,
    decode_authority_secret_key,
    encode_authority_public_key,
    encode_authority_secret_key,
)


def test_spec_public_key_vector() -> None:
    """SPEC 04 §4.7.1."""
    xonly = bytes.fromhex("76637000979c1c11af0c300bcd8c7fe48610fce9b9c11e3daee35ae0b08a7455")
    text = "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh"
    assert encode_authority_public_key(xonly) == text
    assert decode_authority_public_key(text) == xonly


@pytest.mark.parametrize(
    ("secret_text", "secret_hex", "public_text"),
    [
        (  # key-utils unit test
            "zmBEmPhqo3A92FkiLVvyCz6htc3e53ph3ZbD4ASqGaLjwnFLi",
            "8327a919dfa7772950ea6e15f035d0cc2eaf21a3a33bc2f595c1dec1cca31a9b",
            "9bDuixKmZqAJnrmP746n8zU1wyAQRrus7th9dxnkPg6RzQvCnan",
        ),
        (  # SRI example configs
            "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n",
            "65995eb19631f478a46ffa5cf1e545091efe950eaeac7482ffdc06eb6a89f697",
            "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72",
        ),
    ],
)
def test_sri_key_pair_vectors(secret_text: str, secret_hex: str, public_text: str) -> None:
    assert decode_authority_secret_key(secret_text).hex() == secret_hex
    assert encode_authority_secret_key(bytes.fromhex(secret_hex)) == secret_text
    key = AuthorityKey.from_secret_text(secret_text)
    assert key.public_text == public_text
    assert key.secret_text() == secret_text


def test_sri_example_xonly() -> None:
    key = AuthorityKey.from_secret_text("mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n")
    assert key.public.hex() == "24ee3c3804a1aaa4c03b80ea19f7a5863c916e8994b7db94a3bad7ee092b6ce7"


def test_repr_never_shows_the_secret() -> None:
    key = AuthorityKey.from_secret_text("mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n")
    assert "secret" not in repr(key)
    assert key.secret.hex() not in repr(key) and repr(key.secret) not in repr(key)


# secp256k1 group order: valid secrets are 1..N-1.
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=N - 1))
def test_keys_round_trip_through_text(k: int) -> None:
    key = AuthorityKey(k.to_bytes(32, "big"))
    assert decode_authority_public_key(key.public_text) == key.public
    assert AuthorityKey.from_secret_text(key.secret_text()) == key
    # 0x01 0x00 then 36 bytes always gives 51 base58 digits led by "9".
    assert len(key.public_text) == 51 and key.public_text.startswith("9")


def test_generate_gives_distinct_valid_keys() -> None:
    first, second = AuthorityKey.generate(), AuthorityKey.generate()
    assert first != second
    assert AuthorityKey(first.secret).public == first.public


@pytest.mark.parametrize("secret", [bytes(32), bytes(31), b"\xff" * 32])
def test_invalid_secrets(secret: bytes) -> None:
    with pytest.raises(ValueError):
        AuthorityKey(secret)
