"""File locks that keep kg processes on one machine from undoing each other's work.

`fcntl.flock` locks belong to an open file and the kernel drops them when the process dies, so a killed
build never leaves a lock behind that someone would have to delete by hand. The holder of an exclusive
lock writes who it is into the lock file, so a process that has to wait can say whom it waits for.
"""
from __future__ import annotations

import fcntl
import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from kg.store import StoreUnavailableError

log = logging.getLogger(__name__)
POLL_SECONDS = 0.1


class LockTimeoutError(StoreUnavailableError):
    """Another process held the lock for longer than the caller was willing to wait."""


def holder_of(path: Path) -> str:
    """What the current holder wrote into the lock file ("pid 123, since 14:02:11: python -m kg.build ...")."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text or "another process"


def try_flock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def wait_flock(fd: int, mode: int, timeout: float, waiting: str, path: Path, hint: str = "",
               level: int = logging.WARNING) -> None:
    """flock with a deadline; logs `waiting` (with the holder) once if the lock is not free at once."""
    if try_flock(fd, mode):
        return
    log.log(level, "%s (held by %s); waiting up to %g s", waiting, holder_of(path), timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        if try_flock(fd, mode):
            return
    raise LockTimeoutError(f"{waiting} (held by {holder_of(path)}); gave up after {timeout:g} s. {hint}".strip())


@contextmanager
def exclusive_lock(path: Path, timeout: float, waiting: str, hint: str = "",
                   level: int = logging.WARNING) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the block; wait up to `timeout` seconds for another holder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        wait_flock(fd, fcntl.LOCK_EX, timeout, waiting, path, hint, level)
        argv = list(getattr(sys, "orig_argv", None) or sys.argv)
        command = " ".join(" ".join([Path(argv[0]).name, *argv[1:]]).split())[:200]  # one line, for messages
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, since {time.strftime('%H:%M:%S')}: {command}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock
