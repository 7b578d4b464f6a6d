"""Encrypted SV2 frames after the handshake (PROTOCOL.md §5.5; SPEC 04 §4.6).

Each frame travels as its 6-byte header encrypted on its own (22 bytes with
the tag) followed by the payload cut into plaintext chunks of at most 65,519
bytes, each encrypted with the next nonce into at most 65,535 bytes.  The
header's ``msg_length`` is the plaintext length, so the reader knows how much
ciphertext follows as soon as it has decrypted the header.  An empty payload
sends no payload ciphertext at all: an empty message costs exactly 22 bytes.

:class:`FrameEncryptor` takes encoded frames (``codec.framing.encode_frame``);
:class:`FrameDecryptor` returns :class:`~sv2proxy.codec.framing.Frame` objects,
exactly as :class:`~sv2proxy.codec.framing.FrameDecoder` does for plain links.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NoReturn

from cryptography.exceptions import InvalidTag

from sv2proxy.codec.framing import (
    CHANNEL_MSG_BIT,
    EXTENSION_TYPE_MASK,
    FRAME_HEADER_SIZE,
    MAX_PAYLOAD_LENGTH,
    Frame,
)
from sv2proxy.errors import ProtocolError
from sv2proxy.noise.certificate import SignatureNoiseMessage
from sv2proxy.noise.cipher import _EXHAUSTED as _NONCES_EXHAUSTED
from sv2proxy.noise.cipher import MAC_SIZE, MAX_NONCE, CipherState, _pack_nonce

ENCRYPTED_HEADER_SIZE = FRAME_HEADER_SIZE + MAC_SIZE  # 22
_new_frame = tuple.__new__
_PAYLOAD_FORGED = "noise message failed authentication: corrupted, forged, or encrypted with another key"
MAX_CHUNK_CIPHERTEXT = 65535  # SRI SV2_FRAME_CHUNK_SIZE
MAX_CHUNK_PLAINTEXT = MAX_CHUNK_CIPHERTEXT - MAC_SIZE  # 65519

# The frame header (codec.framing): extension_type U16 LE, msg_type U8, msg_length U24 LE
# as U16 LE low + U8 high.  Unpacked here directly: every frame pays for it twice.
_HEADER = struct.Struct("<HBHB")
_LENGTH = struct.Struct("<3xHB")


def encrypted_payload_length(plaintext_length: int) -> int:
    """Ciphertext bytes after the header for a payload of ``plaintext_length``."""
    chunks = -(-plaintext_length // MAX_CHUNK_PLAINTEXT)
    return plaintext_length + MAC_SIZE * chunks


class FrameEncryptor:
    """Encrypts whole frames with the sending key (k1 initiator, k2 responder)."""

    __slots__ = ("_cipher",)

    def __init__(self, cipher: CipherState) -> None:
        self._cipher = cipher

    @property
    def nonce(self) -> int:
        """The nonce the next header or chunk will use."""
        return self._cipher.nonce

    def encrypt_frame(self, frame: bytes) -> bytes:
        """The wire bytes of one encoded frame (header and payload)."""
        size = len(frame)
        if size < FRAME_HEADER_SIZE:
            raise ValueError(f"a frame is at least {FRAME_HEADER_SIZE} bytes, got {size}")
        low, high = _LENGTH.unpack_from(frame)
        length = low | (high << 16)
        if size != FRAME_HEADER_SIZE + length:
            raise ValueError(
                f"frame header announces {length} payload bytes but {size - FRAME_HEADER_SIZE} follow"
            )
        cipher = self._cipher
        if length <= MAX_CHUNK_PLAINTEXT:
            # Nearly every SV2 message: the header and at most one chunk.  The AEAD is driven
            # directly here (the hottest path of the link); the nonce rules are CipherState's:
            # refuse the last nonce, advance only by what was used.
            nonce = cipher._nonce
            if nonce + (2 if length else 1) > MAX_NONCE:
                raise ProtocolError(_NONCES_EXHAUSTED)
            aead_encrypt = cipher._aead.encrypt
            header = aead_encrypt(_pack_nonce(nonce), frame[:FRAME_HEADER_SIZE], None)
            if not length:
                cipher._nonce = nonce + 1
                return header
            cipher._nonce = nonce + 2
            return header + aead_encrypt(_pack_nonce(nonce + 1), frame[FRAME_HEADER_SIZE:], None)
        encrypt = cipher.encrypt_with_ad
        with memoryview(frame) as view:
            parts = [encrypt(None, view[:FRAME_HEADER_SIZE])]
            for start in range(FRAME_HEADER_SIZE, size, MAX_CHUNK_PLAINTEXT):
                parts.append(encrypt(None, view[start : start + MAX_CHUNK_PLAINTEXT]))
        return b"".join(parts)


class FrameDecryptor:
    """Accumulates ciphertext cut anywhere and yields whole decrypted frames.

    ``max_payload`` is checked as soon as a header is decrypted, before any of
    its payload is buffered.  After a :class:`ProtocolError` the stream is out
    of step (the nonces no longer line up), so every later call raises too;
    the connection must be closed.
    """

    __slots__ = ("_buffer", "_cipher", "_ciphertext_length", "_failed", "_pending", "max_payload")

    def __init__(self, cipher: CipherState, max_payload: int = MAX_PAYLOAD_LENGTH) -> None:
        self._cipher = cipher
        self._buffer = bytearray()
        # The decrypted header (raw extension_type, msg_type) whose payload we await.
        self._pending: tuple[int, int] | None = None
        self._ciphertext_length = 0
        self._failed = False
        self.max_payload = max_payload

    @property
    def nonce(self) -> int:
        """The nonce the next header or chunk must have been encrypted with."""
        return self._cipher.nonce

    @property
    def buffered(self) -> int:
        """Ciphertext bytes received but not yet part of a returned frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data`` and return every frame it completes, in order."""
        if self._failed:
            raise ProtocolError("the encrypted stream already failed; close the connection")
        buf = self._buffer
        try:
            if buf or self._pending is not None:
                buf += data
                frames, used = self._drain(buf)
                if used:
                    del buf[:used]
                return frames
            # Nothing buffered: decrypt straight from ``data``.  The usual read
            # is exactly one small frame; it is done here without a loop.
            size = len(data)
            if size < ENCRYPTED_HEADER_SIZE:
                buf += data
                return []
            cipher = self._cipher
            nonce = cipher._nonce
            if size == ENCRYPTED_HEADER_SIZE + 24 + MAC_SIZE and nonce + 2 <= MAX_NONCE:
                # The hottest read of all, one share-sized frame: the AEAD is driven directly,
                # keeping CipherState's rules (the nonce moves only past what authenticated).
                aead_decrypt = cipher._aead.decrypt
                try:
                    plain_header = aead_decrypt(_pack_nonce(nonce), data[:ENCRYPTED_HEADER_SIZE], None)
                except InvalidTag:
                    plain_header = None
                if plain_header is not None:
                    ext, msg_type, low, high = _HEADER.unpack(plain_header)
                    if low == 24 and not high and 24 <= self.max_payload:
                        try:
                            payload = aead_decrypt(_pack_nonce(nonce + 1), data[ENCRYPTED_HEADER_SIZE:], None)
                        except InvalidTag:
                            cipher._nonce = nonce + 1
                            raise ProtocolError(_PAYLOAD_FORGED) from None
                        cipher._nonce = nonce + 2
                        # tuple.__new__ skips NamedTuple's Python-level __new__ on this path.
                        return [_new_frame(Frame, (ext & 0x7FFF, msg_type, ext >= CHANNEL_MSG_BIT, payload))]
                # Anything unusual goes the general way, which reports it precisely.
            decrypt = cipher.decrypt_with_ad
            ext, msg_type, low, high = _HEADER.unpack(decrypt(None, data[:ENCRYPTED_HEADER_SIZE]))
            length = low | (high << 16)
            if length > self.max_payload:
                self._too_large(ext, msg_type, length)
            if length <= MAX_CHUNK_PLAINTEXT:
                if not length and size == ENCRYPTED_HEADER_SIZE:
                    return [_new_frame(Frame, (ext & 0x7FFF, msg_type, ext >= CHANNEL_MSG_BIT, b""))]
                if size == ENCRYPTED_HEADER_SIZE + length + MAC_SIZE:
                    # No state to record: if the payload fails, the stream is failed for good.
                    payload = decrypt(None, data[ENCRYPTED_HEADER_SIZE:])
                    return [_new_frame(Frame, (ext & 0x7FFF, msg_type, ext >= CHANNEL_MSG_BIT, payload))]
            self._pending = (ext, msg_type)
            self._ciphertext_length = encrypted_payload_length(length)
            frames, used = self._drain(data, ENCRYPTED_HEADER_SIZE)
            if used < size:
                buf += memoryview(data)[used:]
            return frames
        except ProtocolError:
            self._failed = True
            raise

    def _too_large(self, ext: int, msg_type: int, length: int) -> NoReturn:
        raise ProtocolError(
            f"frame of {length} bytes exceeds the limit of {self.max_payload} "
            f"(extension_type {ext:#06x}, msg_type {msg_type:#04x})"
        )

    def _drain(self, src: bytes | bytearray, offset: int = 0) -> tuple[list[Frame], int]:
        """The frames complete in ``src`` from ``offset`` on, and where they end."""
        decrypt = self._cipher.decrypt_with_ad
        frames: list[Frame] = []
        available = len(src)
        pending = self._pending
        ciphertext_length = self._ciphertext_length
        while True:
            if pending is None:
                if available - offset < ENCRYPTED_HEADER_SIZE:
                    break
                ext, msg_type, low, high = _HEADER.unpack(
                    decrypt(None, src[offset : offset + ENCRYPTED_HEADER_SIZE])
                )
                offset += ENCRYPTED_HEADER_SIZE
                length = low | (high << 16)
                if length > self.max_payload:
                    self._too_large(ext, msg_type, length)
                pending = (ext, msg_type)
                ciphertext_length = encrypted_payload_length(length)
            stop = offset + ciphertext_length
            if stop > available:
                break
            ext, msg_type = pending
            if ciphertext_length <= MAX_CHUNK_CIPHERTEXT:
                payload = decrypt(None, src[offset:stop]) if ciphertext_length else b""
            else:
                with memoryview(src) as view:
                    payload = b"".join(
                        [
                            decrypt(None, view[start : min(start + MAX_CHUNK_CIPHERTEXT, stop)])
                            for start in range(offset, stop, MAX_CHUNK_CIPHERTEXT)
                        ]
                    )
            frames.append(Frame(ext & EXTENSION_TYPE_MASK, msg_type, bool(ext & CHANNEL_MSG_BIT), payload))
            offset = stop
            pending = None
        self._pending = pending
        self._ciphertext_length = ciphertext_length
        return frames, offset


class NoiseSession:
    """Both directions of an established Noise link, and what the handshake proved.

    ``encrypt_frame(frame) -> bytes`` gives the wire bytes of one encoded
    frame; ``feed(data) -> list[Frame]`` takes received ciphertext and returns
    the complete frames.  They are the encryptor's and decryptor's own bound
    methods, not wrappers: each frame would otherwise pay for a second call.

    ``remote_static_key`` and ``certificate`` are the server's, as seen by an
    initiator; a responder learns nothing about its (anonymous) client.
    ``handshake_hash`` is the final ``h``, usable as a channel binding.
    """

    __slots__ = (
        "certificate",
        "decryptor",
        "encrypt_frame",
        "encryptor",
        "feed",
        "handshake_hash",
        "remote_static_key",
    )

    encrypt_frame: Callable[[bytes], bytes]
    feed: Callable[[bytes], list[Frame]]

    def __init__(
        self,
        send_cipher: CipherState,
        receive_cipher: CipherState,
        *,
        handshake_hash: bytes,
        remote_static_key: bytes | None = None,
        certificate: SignatureNoiseMessage | None = None,
        max_payload: int = MAX_PAYLOAD_LENGTH,
    ) -> None:
        self.encryptor = FrameEncryptor(send_cipher)
        self.decryptor = FrameDecryptor(receive_cipher, max_payload)
        self.encrypt_frame = self.encryptor.encrypt_frame
        self.feed = self.decryptor.feed
        self.handshake_hash = handshake_hash
        self.remote_static_key = remote_static_key
        self.certificate = certificate


__all__ = [
    "ENCRYPTED_HEADER_SIZE",
    "MAX_CHUNK_CIPHERTEXT",
    "MAX_CHUNK_PLAINTEXT",
    "FrameDecryptor",
    "FrameEncryptor",
    "NoiseSession",
    "encrypted_payload_length",
]
