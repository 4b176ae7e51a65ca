"""Files written so that a reader never sees half of one, and two writers never trip over each other.

Every write goes to a temporary file with a name of its own (process id and a random part) in the target's
folder, then replaces the target in one rename. Two processes writing the same file at once (two commands
started together, the ranks of a distributed run preparing the same split) each finish, and the target holds
one complete version.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def temp_path(path: Path) -> Path:
    """A fresh, unused temporary name beside `path` (the caller writes it, then os.replace()s it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".{os.getpid()}.tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = "\n"):
    """`with atomic_write(p) as fh: ...` writes p whole or not at all."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        binary = "b" in mode
        with open(tmp, mode, encoding=None if binary else encoding, newline=None if binary else newline) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_write(path) as fh:
        fh.write(text)
