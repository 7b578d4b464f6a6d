"""addr()/raw() descriptors and the BIP380 checksum (sv2proxy.bitcoin.descriptor).

Checksum vectors are BIP380's; descriptor vectors BIP385's.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sv2proxy.bitcoin.address import Network
from sv2proxy.bitcoin.descriptor import add_checksum, descriptor_checksum, parse_descriptor, split_checksum


def test_bip380_valid_checksum() -> None:
    assert descriptor_checksum("raw(deadbeef)") == "89f8spxm"
    assert add_checksum("raw(deadbeef)") == "raw(deadbeef)#89f8spxm"
    assert split_checksum("raw(deadbeef)#89f8spxm") == "raw(deadbeef)"
    assert parse_descriptor("raw(deadbeef)#89f8spxm", Network.MAINNET).hex() == "deadbeef"


def test_bip380_no_checksum_is_accepted() -> None:
    assert parse_descriptor("raw(deadbeef)", Network.MAINNET).hex() == "deadbeef"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("raw(deadbeef)#", "expected 8 character checksum, not 0 characters"),  # missing checksum
        ("raw(deadbeef)#89f8spxmx", "not 9 characters"),  # too long
        ("raw(deadbeef)#89f8spx", "not 7 characters"),  # too short
        ("raw(deedbeef)#89f8spxm", "does not match computed checksum"),  # error in payload
        ("raw(deedbeef)##9f8spxm", "multiple '#' symbols"),  # error in checksum
        ("raw(Ü)#00000000", "invalid character 'Ü'"),  # invalid characters in payload
    ],
)
def test_bip380_invalid_checksums(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_descriptor(text, Network.MAINNET)


@pytest.mark.parametrize(
    ("descriptor", "script"),
    [
        ("raw(deadbeef)", "deadbeef"),
        (
            "raw(512103a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd4104a34b99f22c790c4e36b2b3c2"
            "c35a36db06226e41c692fc82b8b56ac1c540c5bd5b8dec5235a0fa8722476c7709c02559e3aa73aa03918ba2d492eea75abea2"
            "3552ae)",
            "512103a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd4104a34b99f22c790c4e36b2b3c2c35a3"
            "6db06226e41c692fc82b8b56ac1c540c5bd5b8dec5235a0fa8722476c7709c02559e3aa73aa03918ba2d492eea75abea23552ae",
        ),
        ("raw(a9149a4d9901d6af519b2a23d4a2f51650fcba87ce7b87)", "a9149a4d9901d6af519b2a23d4a2f51650fcba87ce7b87"),
        ("addr(3PUNyaW7M55oKWJ3kDukwk9bsKvryra15j)", "a914eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee87"),
    ],
)
def test_bip385_valid(descriptor: str, script: str) -> None:
    assert parse_descriptor(descriptor, Network.MAINNET).hex() == script
    assert parse_descriptor(add_checksum(descriptor), Network.MAINNET).hex() == script


@pytest.mark.parametrize(
    ("descriptor", "message"),
    [
        ("raw(asdf)", "raw script is not hex"),
        ("addr(asdf)", "address in addr"),
        ("sh(raw(deadbeef))", r"unsupported descriptor sh\(\)"),
        ("wsh(raw(deadbeef))", r"unsupported descriptor wsh\(\)"),
        ("sh(addr(3PUNyaW7M55oKWJ3kDukwk9bsKvryra15j))", r"unsupported descriptor sh\(\)"),
        ("wsh(addr(3PUNyaW7M55oKWJ3kDukwk9bsKvryra15j))", r"unsupported descriptor wsh\(\)"),
    ],
)
def test_bip385_invalid(descriptor: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_descriptor(descriptor, Network.MAINNET)


@pytest.mark.parametrize(
    ("descriptor", "message"),
    [
        ("raw()", "not hex"),  # Core's IsHex refuses the empty string
        ("raw(abc)", "not hex"),  # odd length
        ("raw(de ad)", "not hex"),  # bytes.fromhex would skip the space
        (
            "wpkh(02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9)",
            r"unsupported descriptor wpkh\(\)",
        ),
        ("addr(bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "FUNCTION"),
        ("deadbeef", "FUNCTION"),
    ],
)
def test_other_refusals(descriptor: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_descriptor(descriptor, Network.MAINNET)


def test_addr_follows_the_network() -> None:
    regtest = "addr(bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080)"
    assert parse_descriptor(regtest, Network.REGTEST).hex() == "0014751e76e8199196d454941c45d1b3a323f1433bd6"
    with pytest.raises(ValueError, match="address is for regtest, not mainnet"):
        parse_descriptor(add_checksum(regtest), Network.MAINNET)


def test_raw_accepts_uppercase_hex() -> None:
    assert parse_descriptor("raw(DEADBEEF)", Network.MAINNET).hex() == "deadbeef"


@given(st.binary(min_size=1, max_size=64))
def test_raw_round_trip_with_checksum(script: bytes) -> None:
    assert parse_descriptor(add_checksum(f"raw({script.hex()})"), Network.REGTEST) == script


@given(st.binary(min_size=1, max_size=32), st.integers(min_value=0, max_value=63))
def test_any_single_character_change_breaks_the_checksum(script: bytes, position: int) -> None:
    descriptor = add_checksum(f"raw({script.hex()})")
    index = len("raw(") + position % (2 * len(script))  # inside the hex payload
    changed = descriptor[:index] + ("0" if descriptor[index] != "0" else "1") + descriptor[index + 1 :]
    with pytest.raises(ValueError, match="does not match"):
        split_checksum(changed)
