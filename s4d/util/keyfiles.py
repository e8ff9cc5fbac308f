"""Small secret files in the data directory: read, or created once with mode 0600.

The server key that seals S3 secret keys and the key that signs admin tokens
live beside the data they protect. :func:`read_or_create` returns a file's
bytes, creating it first (mode 0600, never readable by others, not even for a
moment) when it does not exist. Creation is atomic: the bytes go to a private
temporary file that is then linked into place, so a second process starting at
the same time reads either nothing (and links its own, which loses the race
and is discarded) or the whole file, never a torn one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable


class KeyFileError(RuntimeError):
    """A key file exists but cannot be used (empty, or readable by others)."""


def read_or_create(path: str, make: Callable[[], bytes]) -> bytes:
    """The content of ``path``; written first from ``make()`` if the file is missing."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, scratch = tempfile.mkstemp(dir=directory, prefix=".key-")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(make())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(scratch, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
    finally:
        os.unlink(scratch)
    _sync_directory(directory)
    return _read(path)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        data = f.read()
    if mode & 0o077:
        raise KeyFileError(f"{path} is readable by other users: chmod 600 it")
    if not data:
        raise KeyFileError(f"{path} is empty")
    return data


def _sync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
