"""Per-system prediction files that a stopped evaluation resumes from.

One JSONL file per system, appended and flushed after every batch; items already present are not
generated again. A truncated last line (a kill mid-write) is ignored and regenerated.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def read_cached(path: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if not path.exists():
        return done
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                row = json.loads(line)
                done[row["id"]] = row
            except (json.JSONDecodeError, KeyError):
                log.warning("%s:%d: unreadable cached prediction (interrupted write?); it will be regenerated", path, lineno)
    return done


def append_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def rewrite_clean(path: Path, rows: list[dict]) -> None:
    """Rewrite a cache without broken lines (after a resume), atomically."""
    from data.fileio import atomic_write

    with atomic_write(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
