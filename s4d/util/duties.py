"""Which process runs the background duties: whoever holds ``DATA_DIR/run/duties.lock``.

With ``S4_WORKERS=N`` every process opens the same data directory, but the
background duties (compaction, scrubbing, lifecycle, multipart expiry) must run
in exactly one of them. The one that holds an exclusive ``flock`` on the duty
lock file runs them; the others try again every second. The kernel releases the
lock when its holder dies, however it dies, so another process takes the duties
over within a second. The holder writes its pid into the file, for the admin
API and the log; that pid is only believed while the lock is held.
"""

from __future__ import annotations

import fcntl
import os

#: the duty lock, under the data directory
DUTY_LOCK = os.path.join("run", "duties.lock")


def duty_lock_path(data_dir: str) -> str:
    """The duty lock file of ``data_dir``."""
    return os.path.join(data_dir, DUTY_LOCK)


class DutyLock:
    """One process's hold (or not) on the duty lock of a data directory."""

    def __init__(self, data_dir: str) -> None:
        self.path = duty_lock_path(data_dir)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """This process holds the lock."""
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it (never blocks); True if this process holds it."""
        if self._fd is not None:
            return True
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        """Let the lock go (closing the file releases it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def duty_holder(data_dir: str) -> int | None:
    """The pid of the process that runs the duties now (None: nobody holds the lock)."""
    path = duty_lock_path(data_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            # a shared lock is granted only when nobody holds the exclusive one
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else None
        return None
    finally:
        os.close(fd)
