"""The authority secret key file: load it, create it, or both (DESIGN.md "Data the system must never lose").

The file holds one line, the secret in SRI's base58check text form
(:func:`sv2proxy.noise.keys.encode_authority_secret_key`).  It is created with
mode 0600 and never overwritten: losing or replacing the key would make every
miner that pinned the public key refuse the pool.  A file other users can
read or change is refused rather than used, as ssh does for private keys.

Plain blocking file I/O: call it at start-up (``tap.postOptions`` or the CLI),
never from the reactor thread while it serves connections.
"""

from __future__ import annotations

import contextlib
import os
import stat

from sv2proxy.errors import ConfigError
from sv2proxy.noise.keys import AuthorityKey

KEY_FILE_MODE = 0o600
# Any permission for group or others: readable lets them steal the key,
# writable lets them swap in their own.
_FOREIGN_ACCESS = 0o077
# A key file is ~52 bytes; a cap keeps a wrong path (a log, a device) from
# being read whole.
_MAX_FILE_SIZE = 4096

StrPath = str | os.PathLike[str]


class AuthorityKeyFileError(ConfigError):
    """The authority key file cannot be used; ``str()`` names the path and the fix."""


class AuthorityKeyExistsError(AuthorityKeyFileError):
    """Creating the key file was refused because the path already exists."""


def load_secret_key_file(path: StrPath) -> AuthorityKey:
    """The key stored at ``path``; refused if group or others have any access to it."""
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise AuthorityKeyFileError(
            f"authority key file {name} does not exist; create one with: sv2proxy-keygen {name}"
        ) from None
    except OSError as e:
        raise AuthorityKeyFileError(f"cannot open authority key file {name}: {e.strerror}") from None
    try:
        # fstat on the open descriptor: the file checked is the file read.
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AuthorityKeyFileError(f"authority key file {name} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & _FOREIGN_ACCESS:
            raise AuthorityKeyFileError(
                f"authority key file {name} has mode {mode:04o}, so other users can read "
                f"or change the secret key; fix it with: chmod 600 {name}"
            )
        data = _read_all(fd, name)
    finally:
        os.close(fd)
    try:
        return AuthorityKey.from_secret_text(data.decode("ascii"))
    except ValueError:
        # The decoder's own message may quote part of the file; a secret must
        # not reach a log, so the message stays generic.
        raise AuthorityKeyFileError(
            f"authority key file {name} does not hold a valid secret key (expected one "
            "line of base58check text as written by sv2proxy-keygen)"
        ) from None


def create_secret_key_file(path: StrPath, key: AuthorityKey | None = None) -> AuthorityKey:
    """Write ``key`` (or a fresh one) to a new file at ``path`` with mode 0600.

    Refuses to touch an existing path (:class:`AuthorityKeyExistsError`); a
    half-written file is removed if writing fails.
    """
    name = os.fspath(path)
    if key is None:
        key = AuthorityKey.generate()
    # O_EXCL makes "does not exist yet" and "create it" one step, and refuses
    # to follow a symlink planted at the path.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, KEY_FILE_MODE)
    except FileExistsError:
        raise AuthorityKeyExistsError(
            f"{name} already exists; refusing to overwrite an authority key "
            "(miners pin its public key). Move it away first to really replace it"
        ) from None
    except FileNotFoundError:
        raise AuthorityKeyFileError(
            f"cannot create authority key file {name}: its directory does not exist"
        ) from None
    except OSError as e:
        raise AuthorityKeyFileError(f"cannot create authority key file {name}: {e.strerror}") from None
    try:
        # The umask can only have removed bits; set the mode exactly anyway.
        os.fchmod(fd, KEY_FILE_MODE)
        _write_all(fd, (key.secret_text() + "\n").encode("ascii"))
        os.fsync(fd)
    except OSError as e:
        os.close(fd)
        os.unlink(name)
        raise AuthorityKeyFileError(f"cannot write authority key file {name}: {e.strerror}") from None
    os.close(fd)
    _sync_directory(os.path.dirname(os.path.abspath(name)))
    return key


def load_or_create(path: StrPath) -> tuple[AuthorityKey, bool]:
    """The key at ``path``, created on first use: ``(key, created)``.

    For the daemon's "no key configured" case: the key lives in the data
    directory and survives restarts.  Creating first and loading on
    "already exists" keeps two daemons starting together from both writing.
    """
    try:
        return create_secret_key_file(path), True
    except AuthorityKeyExistsError:
        return load_secret_key_file(path), False


def _read_all(fd: int, name: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := os.read(fd, _MAX_FILE_SIZE + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > _MAX_FILE_SIZE:
            raise AuthorityKeyFileError(
                f"authority key file {name} is larger than {_MAX_FILE_SIZE} bytes; "
                "is this the right path?"
            )
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sync_directory(directory: str) -> None:
    # Make the new directory entry durable too, so the key cannot vanish in a
    # crash right after the daemon reported it.  Some filesystems refuse to
    # fsync a directory; the file itself is already synced then.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = [
    "KEY_FILE_MODE",
    "AuthorityKeyExistsError",
    "AuthorityKeyFileError",
    "create_secret_key_file",
    "load_or_create",
    "load_secret_key_file",
]
