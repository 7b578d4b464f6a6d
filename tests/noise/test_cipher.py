"""CipherState and SymmetricState (PROTOCOL.md §5.1; Noise rev 34 §5)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from sv2proxy.errors import ProtocolError
from sv2proxy.noise.cipher import MAX_NONCE, CipherState, SymmetricState, hkdf2

KEY = bytes(range(32))


def _nonce(n: int) -> bytes:
    return b"\x00\x00\x00\x00" + n.to_bytes(8, "little")


def test_initial_chaining_key_and_hash() -> None:
    """§5.1: ck = SHA256(protocol name), h = SHA256(ck) (SRI constants)."""
    ck = "2eb47881208e9eee1f669f67c66ee70ea9ea88090d503fe830dc4bc83e29bf10"
    h = "922fa32e4f487c0d59caa3bed7899ce3d98db7e13dbd3b7cf2d23dd433dc6104"
    assert hashlib.sha256(b"Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256").hexdigest() == ck
    assert SymmetricState().handshake_hash.hex() == h


@settings(max_examples=50, deadline=None)
@given(ck=st.binary(min_size=32, max_size=32), ikm=st.binary(max_size=100))
def test_hkdf2_is_rfc5869_with_salt_ck(ck: bytes, ikm: bytes) -> None:
    expected = HKDF(hashes.SHA256(), 64, salt=ck, info=b"").derive(ikm)
    assert b"".join(hkdf2(ck, ikm)) == expected


def test_nonce_layout_is_four_zero_bytes_then_le64() -> None:
    cipher = CipherState(KEY, nonce=0x0102030405060708)
    reference = ChaCha20Poly1305(KEY)
    assert cipher.encrypt_with_ad(b"ad", b"msg") == reference.encrypt(
        bytes.fromhex("000000000807060504030201"), b"msg", b"ad"
    )
    assert cipher.nonce == 0x0102030405060709


def test_each_operation_uses_the_next_nonce() -> None:
    sender, receiver = CipherState(KEY), CipherState(KEY)
    reference = ChaCha20Poly1305(KEY)
    for n in range(3):
        ciphertext = sender.encrypt_with_ad(b"", b"x" * n)
        assert ciphertext == reference.encrypt(_nonce(n), b"x" * n, b"")
        assert receiver.decrypt_with_ad(b"", ciphertext) == b"x" * n
    assert sender.nonce == receiver.nonce == 3


def test_failed_decryption_does_not_advance_the_nonce() -> None:
    sender, receiver = CipherState(KEY), CipherState(KEY)
    ciphertext = sender.encrypt_with_ad(b"", b"payload")
    tampered = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    with pytest.raises(ProtocolError, match="failed authentication"):
        receiver.decrypt_with_ad(b"", tampered)
    assert receiver.nonce == 0
    with pytest.raises(ProtocolError):
        receiver.decrypt_with_ad(b"other ad", ciphertext)
    assert receiver.nonce == 0
    assert receiver.decrypt_with_ad(b"", ciphertext) == b"payload"
    assert receiver.nonce == 1


def test_last_nonce_is_refused() -> None:
    """Noise reserves 2^64-1: the key is spent once the counter reaches it."""
    sender = CipherState(KEY, nonce=MAX_NONCE - 1)
    receiver = CipherState(KEY, nonce=MAX_NONCE - 1)
    assert receiver.decrypt_with_ad(b"", sender.encrypt_with_ad(b"", b"last")) == b"last"
    assert sender.nonce == receiver.nonce == MAX_NONCE
    with pytest.raises(ProtocolError, match="nonce space exhausted"):
        sender.encrypt_with_ad(b"", b"one too many")
    with pytest.raises(ProtocolError, match="nonce space exhausted"):
        receiver.decrypt_with_ad(b"", bytes(16))
    assert sender.nonce == receiver.nonce == MAX_NONCE


@pytest.mark.parametrize("key", [bytes(31), bytes(33)])
def test_key_must_be_32_bytes(key: bytes) -> None:
    with pytest.raises(ValueError):
        CipherState(key)


def test_nonce_must_fit_u64() -> None:
    with pytest.raises(ValueError):
        CipherState(KEY, nonce=2**64)


def test_symmetric_state_before_the_first_key_passes_plaintext_through() -> None:
    state = SymmetricState()
    h0 = state.handshake_hash
    assert state.encrypt_and_hash(b"clear") == b"clear"
    assert state.handshake_hash == hashlib.sha256(h0 + b"clear").digest()


def test_symmetric_state_encrypts_with_h_as_ad_and_hashes_the_ciphertext() -> None:
    alice, bob = SymmetricState(), SymmetricState()
    for state in (alice, bob):
        state.mix_key(b"shared secret")
    h_before = alice.handshake_hash
    ciphertext = alice.encrypt_and_hash(b"secret payload")
    _, temp_key = hkdf2(hashlib.sha256(b"Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256").digest(), b"shared secret")
    assert ciphertext == ChaCha20Poly1305(temp_key).encrypt(_nonce(0), b"secret payload", h_before)
    assert alice.handshake_hash == hashlib.sha256(h_before + ciphertext).digest()
    assert bob.decrypt_and_hash(ciphertext) == b"secret payload"
    assert bob.handshake_hash == alice.handshake_hash


def test_mix_key_resets_the_nonce() -> None:
    state = SymmetricState()
    state.mix_key(b"one")
    first = state.encrypt_and_hash(b"")
    state.mix_key(b"two")
    # A fresh key starts at nonce 0 again; compare with an independent computation.
    ck = hashlib.sha256(b"Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256").digest()
    ck, _ = hkdf2(ck, b"one")
    _, key2 = hkdf2(ck, b"two")
    h = state.handshake_hash
    assert state.encrypt_and_hash(b"") == ChaCha20Poly1305(key2).encrypt(_nonce(0), b"", h)
    assert len(first) == 16


def test_split_gives_k1_then_k2() -> None:
    state = SymmetricState()
    state.mix_key(b"ikm")
    ck = hkdf2(hashlib.sha256(b"Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256").digest(), b"ikm")[0]
    k1, k2 = hkdf2(ck, b"")
    c1, c2 = state.split()
    assert c1.encrypt_with_ad(b"", b"a") == ChaCha20Poly1305(k1).encrypt(_nonce(0), b"a", b"")
    assert c2.encrypt_with_ad(b"", b"a") == ChaCha20Poly1305(k2).encrypt(_nonce(0), b"a", b"")
