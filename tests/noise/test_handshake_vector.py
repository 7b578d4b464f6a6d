"""A deterministic Noise NX handshake vector (PROTOCOL.md §5.2, §5.6).

No byte-level SV2 handshake vector exists upstream, so this one is our own:
fixed secrets, ElligatorSwift rnd32 = 32 zero bytes (as SRI encodes), BIP340
aux = 32 zero bytes.  The expected values were produced once by sv2proxy and
are checked two ways:

* ``test_implementation_*`` runs :class:`Initiator` / :class:`Responder`;
* ``test_rederived_*`` recomputes every value from first principles with
  hashlib/hmac, ``cryptography``'s ChaCha20-Poly1305 and pure-Python
  secp256k1 arithmetic (BIP324 ElligatorSwift decoding, x-only ECDH, BIP340
  signing), so the vector does not merely repeat what the code under test says.

The one value not re-derived is the choice of ElligatorSwift *encoding* for a
key (libsecp256k1's sampling with rnd32); instead the re-derivation checks that
those 64 bytes decode to the right public key, which is all the protocol needs.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from sv2proxy.codec.framing import encode_frame
from sv2proxy.noise import (
    AuthorityKey,
    Initiator,
    Responder,
    SignatureNoiseMessage,
    ellswift_xdh,
)

# --- inputs ---------------------------------------------------------------
INITIATOR_EPHEMERAL_SECRET = bytes([0x11]) * 32
RESPONDER_EPHEMERAL_SECRET = bytes([0x22]) * 32
RESPONDER_STATIC_SECRET = bytes([0x33]) * 32
AUTHORITY_SECRET = bytes([0x44]) * 32
RND32 = bytes(32)  # ElligatorSwift encoding randomness
AUX32 = bytes(32)  # BIP340 auxiliary randomness
VALID_FROM = 1_700_000_000
NOT_VALID_AFTER = 1_700_003_600
NOW = 1_700_000_100
FIRST_CLIENT_FRAME = encode_frame(0x0000, 0x00, b"hello", False)
FIRST_SERVER_FRAME = encode_frame(0x0000, 0x01, b"world", False)

# --- expected values --------------------------------------------------------
AUTHORITY_XONLY = bytes.fromhex("2c0b7cf95324a07d05398b240174dc0c2be444d96b159aa6c7f7b1e668680991")
STATIC_XONLY = bytes.fromhex("3c72addb4fdf09af94f0c94d7fe92a386a7e70cf8a1d85916386bb2535c7b1b1")
# SHA256(version ‖ valid_from ‖ not_valid_after ‖ STATIC_XONLY)
CERT_DIGEST = bytes.fromhex("9f6c849a9298b0b84f3feb84ec3c72022b171214d9b1675198d2f478c97e8fbb")
CERTIFICATE = bytes.fromhex(
    "0000"  # version 0
    "00f15365"  # valid_from 1_700_000_000
    "10ff5365"  # not_valid_after 1_700_003_600
    "2772dc305ddc113d03eecd124bdea317a70b772015b1bec49b763356e0adc03c"  # signature R.x
    "c765037e5bc99d169a77f80d8c067a35d40d7685e90fc7d14f1218ba33179d39"  # signature s
)
H_INITIAL = bytes.fromhex("922fa32e4f487c0d59caa3bed7899ce3d98db7e13dbd3b7cf2d23dd433dc6104")
ACT1 = bytes.fromhex(
    "f5962c51828e028546105360511635b8b63c6f94ea73d04e26f24eab63931c8e"  # E_i u
    "0ec1e646c878fced6c65171fd3997a6d0b8b1b15590876e846a51620cb096c59"  # E_i t
)
H_AFTER_ACT1 = bytes.fromhex("86f3c60c20f0118e64525953e6afc9b2493cca16e679f7d7f331dee4ac3e7f7c")
ACT2 = bytes.fromhex(
    # E_r (64)
    "a35af1ea1dd30c1defe8e6349ee7d5b8bcaf292f9e834e077d043d5f781d1a1d"
    "90486b1ff7845917843489a5a19444865db2b5f3cfdfc2e561cef4f52c59c5fe"
    # ENC(S_r) (64) + MAC (16)
    "40661107134d88d99d44ec6e97914aa17f8d3882a3e7e6dd059824bbfbe8f50a"
    "8c9815f3e0febe182ac5ec87901bff95452d07d61ddcad7d4ddf43922d7099bb"
    "e26037b9471ed3951067166bcdb21f8a"
    # ENC(SIGNATURE_NOISE_MESSAGE) (74) + MAC (16)
    "17bde65e3b90608f0193209906eac47d600aeb8967865d2652d2c12f962b2ea2"
    "d738bbe155c382dad1020342c4a2cca59ddb5f7f5d2cd45363a2c9c3864424ad"
    "308f2ab096775f10e3a11a92c111f828a3a68b0bae0a17c95ab4"
)
EE = bytes.fromhex("2931fe36daab78a55f95145be407395ec9d6e68cd3bb8a9fe475bfe3d4db9e74")
ES = bytes.fromhex("0ce429dda3d16f368beb947207d772988121e1311a3b70dc5531268644b6a2f3")
H_FINAL = bytes.fromhex("586f29637c7adfb3c3764a8b31fa4aff074268411bcafd9185514c2075b6dfbd")
K1 = bytes.fromhex("b4bd056f855a7f05ccdf7ba5888b27f1485115bf35cea2be5d9c244aa5b89a6b")
K2 = bytes.fromhex("0334980148f759562d3eb7aed4b88ccd3aab5f6d2f2c96e5ea3b7a2169c351e2")
# encrypted header (22) ‖ encrypted payload (5 + 16)
FIRST_CLIENT_CIPHERTEXT = bytes.fromhex(
    "99a9e88e0dcc0aa1467bf0deaa994d7dcca6cb562a35"
    "78dbfc22fb18bddcf4c3593d444533451a25a3fec1"
)
FIRST_SERVER_CIPHERTEXT = bytes.fromhex(
    "ec808790fad6d72815d62cbd1973440de3eeb02c8b9a"
    "69f497ffbe9ccde27e9735cf1ca7f34e871fcf5f23"
)


# --- the implementation -----------------------------------------------------
def test_implementation_matches_vector() -> None:
    authority = AuthorityKey(AUTHORITY_SECRET)
    assert authority.public == AUTHORITY_XONLY
    certificate = SignatureNoiseMessage.sign(
        AUTHORITY_SECRET, STATIC_XONLY, VALID_FROM, NOT_VALID_AFTER, aux_rand=AUX32
    )
    assert certificate.digest(STATIC_XONLY) == CERT_DIGEST
    assert certificate.encode() == CERTIFICATE

    initiator = Initiator(
        AUTHORITY_XONLY, ephemeral_secret=INITIATOR_EPHEMERAL_SECRET, ellswift_rnd=RND32
    )
    responder = Responder(
        RESPONDER_STATIC_SECRET,
        certificate,
        ephemeral_secret=RESPONDER_EPHEMERAL_SECRET,
        ellswift_rnd=RND32,
    )
    assert initiator.handshake_hash == H_INITIAL
    assert initiator.write_act1() == ACT1
    assert initiator.handshake_hash == H_AFTER_ACT1

    act2, server = responder.read_act1(ACT1)
    assert act2 == ACT2
    assert ellswift_xdh(ACT1, ACT2[:64], INITIATOR_EPHEMERAL_SECRET, initiator=True) == EE
    assert ellswift_xdh(ACT1, ACT2[:64], RESPONDER_EPHEMERAL_SECRET, initiator=False) == EE

    client = initiator.read_act2(ACT2, NOW)
    assert client.handshake_hash == server.handshake_hash == H_FINAL
    assert client.remote_static_key == STATIC_XONLY
    assert client.certificate == certificate

    # k1 and k2 through their effect: the first frame each way.
    assert client.encrypt_frame(FIRST_CLIENT_FRAME) == FIRST_CLIENT_CIPHERTEXT
    assert server.encrypt_frame(FIRST_SERVER_FRAME) == FIRST_SERVER_CIPHERTEXT
    assert [f.payload for f in server.feed(FIRST_CLIENT_CIPHERTEXT)] == [b"hello"]
    assert [f.payload for f in client.feed(FIRST_SERVER_CIPHERTEXT)] == [b"world"]


def test_implementation_es_matches_vector() -> None:
    # S_r as sent inside act 2 (decrypted by the re-derivation below).
    static_encoding = _rederive()["static_encoding"]
    assert ellswift_xdh(ACT1, static_encoding, INITIATOR_EPHEMERAL_SECRET, initiator=True) == ES
    assert ellswift_xdh(ACT1, static_encoding, RESPONDER_STATIC_SECRET, initiator=False) == ES


# --- an independent re-derivation -------------------------------------------
# secp256k1 in plain integers (affine coordinates; slow but obvious).
P = 2**256 - 2**32 - 977
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)
Point = tuple[int, int] | None


def _add(a: Point, b: Point) -> Point:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        slope = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else:
        slope = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (slope * slope - a[0] - b[0]) % P
    return x, (slope * (a[0] - x) - a[1]) % P


def _mul(k: int, point: Point) -> Point:
    result: Point = None
    while k:
        if k & 1:
            result = _add(result, point)
        point = _add(point, point)
        k >>= 1
    return result


def _is_square(v: int) -> bool:
    return v % P == 0 or pow(v, (P - 1) // 2, P) == 1


def _lift_x(x: int) -> tuple[int, int]:
    """The point with this x and an even y (BIP340 lift_x)."""
    y = pow((x**3 + 7) % P, (P + 1) // 4, P)
    assert y * y % P == (x**3 + 7) % P, "x is not on the curve"
    return x, y if y % 2 == 0 else P - y


def _xswiftec(u: int, t: int) -> int:
    """BIP324 reference ``xswiftec``: the x-coordinate encoded by (u, t)."""
    u %= P
    t %= P
    if u == 0:
        u = 1
    if t == 0:
        t = 1
    if (u**3 + t**2 + 7) % P == 0:
        t = 2 * t % P
    x_ = (u**3 + 7 - t**2) * pow(2 * t, -1, P) % P
    # Either square root of -3 works: swapping it only swaps the last two
    # candidates, and at most one of those is ever on the curve.
    sqrt_minus_3 = pow(P - 3, (P + 1) // 4, P)
    y_ = (x_ + t) * pow(sqrt_minus_3 * u, -1, P) % P
    for x in ((u + 4 * y_ * y_) % P, (-x_ * pow(y_, -1, P) - u) * pow(2, -1, P) % P,
              (x_ * pow(y_, -1, P) - u) * pow(2, -1, P) % P):
        if _is_square(x**3 + 7):
            return x
    raise AssertionError("unreachable: one candidate is always on the curve")


def _ellswift_x(encoding: bytes) -> int:
    return _xswiftec(int.from_bytes(encoding[:32], "big"), int.from_bytes(encoding[32:], "big"))


def _x_of_secret(secret: bytes) -> int:
    point = _mul(int.from_bytes(secret, "big"), G)
    assert point is not None
    return point[0]


def _bip324_xdh(initiator_encoding: bytes, responder_encoding: bytes, secret: bytes, *, initiator: bool) -> bytes:
    theirs = responder_encoding if initiator else initiator_encoding
    shared = _mul(int.from_bytes(secret, "big"), _lift_x(_ellswift_x(theirs)))
    assert shared is not None
    tag = hashlib.sha256(b"bip324_ellswift_xonly_ecdh").digest()
    return hashlib.sha256(
        tag + tag + initiator_encoding + responder_encoding + shared[0].to_bytes(32, "big")
    ).digest()


def _tagged_hash(tag: str, data: bytes) -> bytes:
    tag_hash = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(tag_hash + tag_hash + data).digest()


def _bip340_sign(secret: bytes, message: bytes, aux: bytes) -> bytes:
    """BIP340 ``Sign`` exactly as the BIP's reference code writes it."""
    d0 = int.from_bytes(secret, "big")
    public = _mul(d0, G)
    assert public is not None
    d = d0 if public[1] % 2 == 0 else N - d0
    t = (d ^ int.from_bytes(_tagged_hash("BIP0340/aux", aux), "big")).to_bytes(32, "big")
    px = public[0].to_bytes(32, "big")
    k0 = int.from_bytes(_tagged_hash("BIP0340/nonce", t + px + message), "big") % N
    nonce_point = _mul(k0, G)
    assert nonce_point is not None
    k = k0 if nonce_point[1] % 2 == 0 else N - k0
    rx = nonce_point[0].to_bytes(32, "big")
    e = int.from_bytes(_tagged_hash("BIP0340/challenge", rx + px + message), "big") % N
    return rx + ((k + e * d) % N).to_bytes(32, "big")


def _hkdf2(chaining_key: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    temp = hmac.new(chaining_key, ikm, hashlib.sha256).digest()
    out1 = hmac.new(temp, b"\x01", hashlib.sha256).digest()
    return out1, hmac.new(temp, out1 + b"\x02", hashlib.sha256).digest()


def _aead(key: bytes, nonce: int, ad: bytes, plaintext: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(b"\x00" * 4 + nonce.to_bytes(8, "little"), plaintext, ad)


def _rederive() -> dict[str, bytes]:
    sha = hashlib.sha256
    ck = sha(b"Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256").digest()
    h = sha(ck).digest()  # MixHash of the empty prologue
    values = {"h_initial": h}

    e_i = ACT1
    h = sha(sha(h + e_i).digest()).digest()  # MixHash(E_i), MixHash(empty payload)
    values["h_after_act1"] = h

    e_r = ACT2[:64]
    h = sha(h + e_r).digest()
    ee = _bip324_xdh(e_i, e_r, INITIATOR_EPHEMERAL_SECRET, initiator=True)
    values["ee"] = ee
    ck, key = _hkdf2(ck, ee)
    static_plain = ChaCha20Poly1305(key).decrypt(bytes(12), ACT2[64:144], h)
    values["static_encoding"] = static_plain
    h = sha(h + ACT2[64:144]).digest()
    es = _bip324_xdh(e_i, static_plain, INITIATOR_EPHEMERAL_SECRET, initiator=True)
    values["es"] = es
    ck, key = _hkdf2(ck, es)

    static_xonly = _ellswift_x(static_plain).to_bytes(32, "big")
    values["static_xonly"] = static_xonly
    header = (0).to_bytes(2, "little") + VALID_FROM.to_bytes(4, "little")
    header += NOT_VALID_AFTER.to_bytes(4, "little")
    digest = sha(header + static_xonly).digest()
    values["cert_digest"] = digest
    certificate = header + _bip340_sign(AUTHORITY_SECRET, digest, AUX32)
    values["certificate"] = certificate
    encrypted_certificate = _aead(key, 0, h, certificate)
    values["encrypted_certificate"] = encrypted_certificate
    h = sha(h + encrypted_certificate).digest()
    values["h_final"] = h

    k1, k2 = _hkdf2(ck, b"")
    values["k1"], values["k2"] = k1, k2
    values["client_ciphertext"] = _aead(k1, 0, b"", FIRST_CLIENT_FRAME[:6]) + _aead(
        k1, 1, b"", FIRST_CLIENT_FRAME[6:]
    )
    values["server_ciphertext"] = _aead(k2, 0, b"", FIRST_SERVER_FRAME[:6]) + _aead(
        k2, 1, b"", FIRST_SERVER_FRAME[6:]
    )
    return values


def test_rederived_keys_match_vector() -> None:
    assert _x_of_secret(AUTHORITY_SECRET).to_bytes(32, "big") == AUTHORITY_XONLY
    assert _x_of_secret(RESPONDER_STATIC_SECRET).to_bytes(32, "big") == STATIC_XONLY
    # The encodings on the wire stand for the right keys.
    assert _ellswift_x(ACT1) == _x_of_secret(INITIATOR_EPHEMERAL_SECRET)
    assert _ellswift_x(ACT2[:64]) == _x_of_secret(RESPONDER_EPHEMERAL_SECRET)
    # Both roles agree on each shared secret.
    e_r = ACT2[:64]
    assert _bip324_xdh(ACT1, e_r, RESPONDER_EPHEMERAL_SECRET, initiator=False) == EE


def test_rederived_handshake_matches_vector() -> None:
    values = _rederive()
    assert values["h_initial"] == H_INITIAL
    assert values["h_after_act1"] == H_AFTER_ACT1
    assert values["ee"] == EE
    assert values["es"] == ES
    assert values["static_xonly"] == STATIC_XONLY
    assert values["cert_digest"] == CERT_DIGEST
    assert values["certificate"] == CERTIFICATE
    assert values["encrypted_certificate"] == ACT2[144:]
    assert values["h_final"] == H_FINAL
    assert values["k1"] == K1
    assert values["k2"] == K2
    assert values["client_ciphertext"] == FIRST_CLIENT_CIPHERTEXT
    assert values["server_ciphertext"] == FIRST_SERVER_CIPHERTEXT


def test_rederived_static_key_encryption_matches_act2() -> None:
    """Act 2's middle part is ENC(S_r) under the ee key with ad = h, as sent."""
    values = _rederive()
    sha = hashlib.sha256
    ck = sha(b"Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256").digest()
    _, key = _hkdf2(ck, EE)
    h = sha(H_AFTER_ACT1 + ACT2[:64]).digest()
    assert _aead(key, 0, h, values["static_encoding"]) == ACT2[64:144]
