"""Shared helpers of the reliability tests: a small filesystem of their own, a server on it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

from twisted.trial.unittest import SkipTest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60)


def mount_small_fs(kind: str, mount_point: str, size_mb: int) -> Callable[[], None]:
    """Mount a filesystem of ``size_mb`` MiB at ``mount_point``; return its unmount.

    ``kind`` is ``tmpfs`` (a size-limited tmpfs) or ``ext4`` (an image file
    formatted with no blocks reserved for root, loop-mounted). Raises
    :class:`SkipTest` saying why when this environment does not allow it
    (not root, no ``mount``, no loop devices, a sandbox that forbids mounts).
    """
    os.makedirs(mount_point, exist_ok=True)
    if os.geteuid() != 0:
        raise SkipTest(f"mounting a {kind} filesystem needs root")
    if shutil.which("mount") is None:
        raise SkipTest("no mount command")
    image = None
    if kind == "tmpfs":
        done = _run("mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", mount_point)
    elif kind == "ext4":
        if shutil.which("mkfs.ext4") is None:
            raise SkipTest("no mkfs.ext4 (e2fsprogs)")
        image = mount_point.rstrip("/") + ".img"
        with open(image, "wb") as f:
            f.truncate(size_mb << 20)
        made = _run("mkfs.ext4", "-q", "-F", "-m", "0", image)
        if made.returncode != 0:
            os.unlink(image)
            raise SkipTest(f"mkfs.ext4 failed: {made.stderr.strip()}")
        done = _run("mount", "-o", "loop", image, mount_point)
    else:
        raise ValueError(kind)
    if done.returncode != 0:
        if image:
            os.unlink(image)
        raise SkipTest(f"cannot mount a {kind} filesystem here: {done.stderr.strip()}")

    def unmount() -> None:
        result = _run("umount", mount_point)
        if result.returncode != 0:
            _run("umount", "-l", mount_point)
        if image:
            os.unlink(image)

    return unmount
