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

from sv2proxy.codec.framing import (
    CHANNEL_MSG_BIT,
    EXTENSION_TYPE_MASK,
    FRAME_HEADER_SIZE,
    MAX_PAYLOAD_LENGTH,
    Frame,
    parse_header,
)
from sv2proxy.errors import ProtocolError
from sv2proxy.noise.certificate import SignatureNoiseMessage
from sv2proxy.noise.cipher import MAC_SIZE, CipherState

ENCRYPTED_HEADER_SIZE = FRAME_HEADER_SIZE + MAC_SIZE  # 22
MAX_CHUNK_CIPHERTEXT = 65535  # SRI SV2_FRAME_CHUNK_SIZE
MAX_CHUNK_PLAINTEXT = MAX_CHUNK_CIPHERTEXT - MAC_SIZE  # 65519

_NO_AD = b""


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
        if len(frame) < FRAME_HEADER_SIZE:
            raise ValueError(f"a frame is at least {FRAME_HEADER_SIZE} bytes, got {len(frame)}")
        view = memoryview(frame)
        _, _, length = parse_header(bytes(view[:FRAME_HEADER_SIZE]))
        end = FRAME_HEADER_SIZE + length
        if len(frame) != end:
            raise ValueError(
                f"frame header announces {length} payload bytes but {len(frame) - FRAME_HEADER_SIZE} follow"
            )
        encrypt = self._cipher.encrypt_with_ad
        parts = [encrypt(_NO_AD, view[:FRAME_HEADER_SIZE])]
        for start in range(FRAME_HEADER_SIZE, end, MAX_CHUNK_PLAINTEXT):
            parts.append(encrypt(_NO_AD, view[start : start + MAX_CHUNK_PLAINTEXT]))
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
        # The decrypted header (raw extension_type, msg_type, msg_length) whose payload we await.
        self._pending: tuple[int, int, int] | None = None
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
        self._buffer += data
        try:
            return self._drain()
        except ProtocolError:
            self._failed = True
            raise

    def _drain(self) -> list[Frame]:
        buf = self._buffer
        decrypt = self._cipher.decrypt_with_ad
        frames: list[Frame] = []
        offset = 0
        available = len(buf)
        while True:
            pending = self._pending
            if pending is None:
                if available - offset < ENCRYPTED_HEADER_SIZE:
                    break
                header = decrypt(_NO_AD, buf[offset : offset + ENCRYPTED_HEADER_SIZE])
                offset += ENCRYPTED_HEADER_SIZE
                pending = parse_header(header)
                ext, msg_type, length = pending
                if length > self.max_payload:
                    raise ProtocolError(
                        f"frame of {length} bytes exceeds the limit of {self.max_payload} "
                        f"(extension_type {ext:#06x}, msg_type {msg_type:#04x})"
                    )
                self._pending = pending
                self._ciphertext_length = encrypted_payload_length(length)
            stop = offset + self._ciphertext_length
            if stop > available:
                break
            ext, msg_type, _ = pending
            chunks = [
                decrypt(_NO_AD, buf[start : min(start + MAX_CHUNK_CIPHERTEXT, stop)])
                for start in range(offset, stop, MAX_CHUNK_CIPHERTEXT)
            ]
            frames.append(
                Frame(ext & EXTENSION_TYPE_MASK, msg_type, bool(ext & CHANNEL_MSG_BIT), b"".join(chunks))
            )
            offset = stop
            self._pending = None
        if offset:
            del buf[:offset]
        return frames


class NoiseSession:
    """Both directions of an established Noise link, and what the handshake proved.

    ``remote_static_key`` and ``certificate`` are the server's, as seen by an
    initiator; a responder learns nothing about its (anonymous) client.
    ``handshake_hash`` is the final ``h``, usable as a channel binding.
    """

    __slots__ = ("certificate", "decryptor", "encryptor", "handshake_hash", "remote_static_key")

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
        self.handshake_hash = handshake_hash
        self.remote_static_key = remote_static_key
        self.certificate = certificate

    def encrypt_frame(self, frame: bytes) -> bytes:
        """The wire bytes of one encoded frame."""
        return self.encryptor.encrypt_frame(frame)

    def feed(self, data: bytes) -> list[Frame]:
        """Received ciphertext in, complete frames out."""
        return self.decryptor.feed(data)


__all__ = [
    "ENCRYPTED_HEADER_SIZE",
    "MAX_CHUNK_CIPHERTEXT",
    "MAX_CHUNK_PLAINTEXT",
    "FrameDecryptor",
    "FrameEncryptor",
    "NoiseSession",
    "encrypted_payload_length",
]
