"""Addresses → scriptPubKey on every network (sv2proxy.bitcoin.address).

The segwit vectors are BIP173's and BIP350's, copied verbatim (valid addresses with their
scripts, invalid ones with the reason the BIP gives).  The generic bech32/bech32m string
vectors run against the codec we depend on (base58-bech32), so an upgrade that breaks it fails
here.  Base58 vectors are well-known mainnet addresses plus test-network ones for the same
hashes.
"""

from __future__ import annotations

import pytest
from base58_bech32.bech32 import BECH32_1_CONST, BECH32_M_CONST, bech32_decode

from sv2proxy.bitcoin.address import Network, decode_segwit_address, script_for_address
from sv2proxy.bitcoin.script import witness_program_script

# --- BIP173 / BIP350: generic strings ----------------------------------------------------------

BIP173_VALID_BECH32 = [
    "A12UEL5L",
    "a12uel5l",
    "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
    "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
    "11" + "q" * 82 + "c8247j",  # 90 characters
    "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    "?1ezyfcl",
]
BIP350_VALID_BECH32M = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]
BIP173_INVALID_BECH32 = [
    "\x201nwldj5",  # HRP character out of range
    "\x7f1axkwrx",  # HRP character out of range
    "\x801eym55h",  # HRP character out of range
    "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",  # too long
    "pzry9x0s0muk",  # no separator character
    "1pzry9x0s0muk",  # empty HRP
    "x1b4n0q5v",  # invalid data character
    "li1dgmt3",  # too short checksum
    "de1lg7wt\xff",  # invalid character in checksum
    "A1G7SGD8",  # checksum calculated with uppercase form of HRP
    "10a06t8",  # empty HRP
    "1qzzfhee",  # empty HRP
]
BIP350_INVALID_BECH32M = [
    "\x201xj0phk",  # HRP character out of range
    "\x7f1g6xzxy",  # HRP character out of range
    "\x801vctc34",  # HRP character out of range
    "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",  # too long
    "qyrz8wqd2c9m",  # no separator character
    "1qyrz8wqd2c9m",  # empty HRP
    "y1b0jsk6g",  # invalid data character
    "lt1igcx5c0",  # invalid data character
    "in1muywd",  # too short checksum
    "mm1crxm3i",  # invalid character in checksum
    "au1s5cgom",  # invalid character in checksum
    "M1VUXWEZ",  # checksum calculated with uppercase form of HRP
    "16plkw9",  # empty HRP
    "1p2gdwpf",  # empty HRP
]


@pytest.mark.parametrize("text", BIP173_VALID_BECH32)
def test_codec_bip173_valid(text: str) -> None:
    assert bech32_decode(text, m=BECH32_1_CONST, limit=90)[2] == BECH32_1_CONST
    with pytest.raises(ValueError):
        bech32_decode(text, m=BECH32_M_CONST, limit=90)


@pytest.mark.parametrize("text", BIP350_VALID_BECH32M)
def test_codec_bip350_valid(text: str) -> None:
    assert bech32_decode(text, m=BECH32_M_CONST, limit=90)[2] == BECH32_M_CONST
    with pytest.raises(ValueError):
        bech32_decode(text, m=BECH32_1_CONST, limit=90)


@pytest.mark.parametrize("text", BIP173_INVALID_BECH32 + BIP350_INVALID_BECH32M)
def test_codec_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        bech32_decode(text, limit=90)


# --- BIP350 segwit addresses -----------------------------------------------------------------

BIP350_VALID_ADDRESSES = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    (
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
    ),
    (
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
        "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6",
    ),
    ("BC1SW50QGDZ25J", "6002751e"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "5210751e76e8199196d454941c45d1b3a323"),
    (
        "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
        "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
        "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
    ),
    (
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
    ),
]

BIP350_INVALID_ADDRESSES = [
    ("tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut", "human-readable part 'tc'"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", "needs bech32m, the address uses bech32"),
    ("tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf", "needs bech32m, the address uses bech32"),
    ("BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL", "needs bech32m, the address uses bech32"),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", "needs bech32, the address uses bech32m"),
    ("tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47", "needs bech32, the address uses bech32m"),
    ("bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4", "invalid character in checksum"),
    ("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R", "invalid witness version 17"),
    ("bc1pw5dgrnzv", "program length 1"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav", "program length 41"),
    ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", "v0 program length 16"),
    ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq", "mixed case"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf", "zero padding of more than 4 bits"),
    ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j", "non-zero padding"),
    ("bc1gmk9yu", "empty data section"),
]

# BIP173's own list, and its v1+ addresses, which BIP350 made invalid (bech32 on v1+).
BIP173_INVALID_ADDRESSES = [
    ("tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty", "human-readable part 'tc'"),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", "bad checksum"),
    ("BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2", "invalid witness version 17"),
    ("bc1rw5uspcuh", "program length 1"),
    ("bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90", "program length 41"),
    ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", "v0 program length 16"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7", "mixed case"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du", "zero padding of more than 4 bits"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv", "non-zero padding"),
    ("bc1gmk9yu", "empty data section"),
    ("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx", "needs bech32m"),
    ("BC1SW50QA3JX3S", "needs bech32m"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvg6kdaj", "needs bech32m"),
]


def _network_for(address: str) -> Network:
    return Network.MAINNET if address.lower().startswith("bc1") else Network.TESTNET


@pytest.mark.parametrize(("address", "script"), BIP350_VALID_ADDRESSES)
def test_bip350_valid_addresses_decode(address: str, script: str) -> None:
    hrp, version, program = decode_segwit_address(address)
    assert hrp == address[:2].lower()
    assert witness_program_script(version, program).hex() == script


@pytest.mark.parametrize(("address", "script"), BIP350_VALID_ADDRESSES)
def test_bip350_valid_addresses_to_script(address: str, script: str) -> None:
    version = bytes.fromhex(script)[0]
    program_size = bytes.fromhex(script)[1]
    if version == 0x00 or (version == 0x51 and program_size == 32):
        assert script_for_address(address, _network_for(address)).hex() == script
    else:
        # Valid BIP350 addresses, but no wallet can spend these outputs yet.
        with pytest.raises(ValueError, match="unsupported witness version"):
            script_for_address(address, _network_for(address))


@pytest.mark.parametrize(("address", "reason"), BIP350_INVALID_ADDRESSES + BIP173_INVALID_ADDRESSES)
def test_invalid_segwit_addresses(address: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        script_for_address(address, _network_for(address))


# --- base58check ---------------------------------------------------------------------------

# hash160 751e76e8… is BIP173's example key (02 79be667e…, the secp256k1 generator).
H160 = "751e76e8199196d454941c45d1b3a323f1433bd6"

BASE58_VECTORS = [
    # The genesis coinbase's key, as P2PKH.
    (Network.MAINNET, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "76a91462e907b15cbf27d5425399ebf6f0fb50ebb88f1888ac"),
    (Network.MAINNET, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "a914b472a266d0bd89c13706a4132ccfb16f7c3b9fcb87"),
    (Network.MAINNET, "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH", f"76a914{H160}88ac"),
    (Network.MAINNET, "3CNHUhP3uyB9EUtRLsmvFUmvGdjGdkTxJw", f"a914{H160}87"),
    (Network.TESTNET, "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r", f"76a914{H160}88ac"),
    (Network.TESTNET4, "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r", f"76a914{H160}88ac"),
    (Network.SIGNET, "2N3vVYSK5XRgVSGWy21PnsRmBUywSQNdCsf", f"a914{H160}87"),
    (Network.REGTEST, "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r", f"76a914{H160}88ac"),
    (Network.REGTEST, "2N3vVYSK5XRgVSGWy21PnsRmBUywSQNdCsf", f"a914{H160}87"),
]


@pytest.mark.parametrize(("network", "address", "script"), BASE58_VECTORS)
def test_base58_addresses(network: Network, address: str, script: str) -> None:
    assert script_for_address(address, network).hex() == script


# --- every network's segwit forms -----------------------------------------------------------

P2WSH_PROGRAM = "1863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262"
P2TR_PROGRAM = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"

SEGWIT_VECTORS = [
    (Network.MAINNET, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", f"0014{H160}"),
    (Network.MAINNET, "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3", f"0020{P2WSH_PROGRAM}"),
    (Network.MAINNET, "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", f"5120{P2TR_PROGRAM}"),
    (Network.TESTNET, "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", f"0014{H160}"),
    (Network.TESTNET4, "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", f"0020{P2WSH_PROGRAM}"),
    (Network.SIGNET, "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47zagq", f"5120{P2TR_PROGRAM}"),
    (Network.REGTEST, "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", f"0014{H160}"),
    (Network.REGTEST, "bcrt1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qzf4jry", f"0020{P2WSH_PROGRAM}"),
    (Network.REGTEST, "bcrt1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqc8gma6", f"5120{P2TR_PROGRAM}"),
    (Network.REGTEST, "BCRT1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KYGT080", f"0014{H160}"),  # uppercase (QR codes)
]


@pytest.mark.parametrize(("network", "address", "script"), SEGWIT_VECTORS)
def test_segwit_addresses(network: Network, address: str, script: str) -> None:
    assert script_for_address(address, network).hex() == script


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "network", "message"),
    [
        ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", Network.REGTEST, "address is for mainnet, not regtest"),
        ("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", Network.TESTNET, "address is for mainnet, not testnet"),
        (
            "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r",
            Network.MAINNET,
            "address is for testnet, testnet4, signet or regtest, not mainnet",
        ),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", Network.SIGNET, "address is for mainnet, not signet"),
        ("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", Network.MAINNET, "address is for testnet, testnet4 or signet"),
        ("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", Network.REGTEST, "not regtest"),
        ("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", Network.TESTNET, "address is for regtest, not testnet"),
    ],
)
def test_network_mismatch(address: str, network: Network, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        script_for_address(address, network)


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("", "empty address"),
        (" 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "whitespace"),
        ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", r"bad checksum \(base58check\)"),
        ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfN0", "invalid base58 character '0'"),
        ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNI", "invalid base58 character 'I'"),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5", r"bad checksum \(bech32\)"),
        # WIF private key pasted as an address (33-byte payload): refused without echoing it.
        ("5HpjKrb7dH5kKQQzmbjB87Mxova7mek5bXUTWfndcX6tBoqUwzm", "payload is 33 bytes"),
        ("LVuDpNCSSj6pQ7t9Pv6d6sUkLKoqDEVUnJ", "unknown base58 address version byte 0x30"),  # Litecoin
        ("1" * 70, "too long"),
    ],
)
def test_malformed_addresses(address: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        script_for_address(address, Network.MAINNET)
    if len(address) > 20:
        assert address.strip() not in str(info.value)


def test_non_string_refused() -> None:
    with pytest.raises(ValueError, match="string"):
        script_for_address(b"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", Network.MAINNET)  # type: ignore[arg-type]


def test_network_parameters() -> None:
    assert [(n.p2pkh_prefix, n.p2sh_prefix, n.bech32_hrp) for n in Network] == [
        (0x00, 0x05, "bc"),
        (0x6F, 0xC4, "tb"),
        (0x6F, 0xC4, "tb"),
        (0x6F, 0xC4, "tb"),
        (0x6F, 0xC4, "bcrt"),
    ]
    assert len(set(Network)) == 5  # equal prefixes must not make aliases


@pytest.mark.parametrize(
    ("name", "network"),
    [
        ("mainnet", Network.MAINNET),
        ("main", Network.MAINNET),
        ("test", Network.TESTNET),
        ("testnet", Network.TESTNET),
        ("testnet4", Network.TESTNET4),
        ("Signet", Network.SIGNET),
        ("regtest", Network.REGTEST),
    ],
)
def test_network_from_name(name: str, network: Network) -> None:
    assert Network.from_name(name) is network


def test_unknown_network_name() -> None:
    with pytest.raises(ValueError, match="unknown network 'bitcoin'"):
        Network.from_name("bitcoin")
