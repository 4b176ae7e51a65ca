"""The judgement cache: successful judgements, one JSON line each, keyed by everything a score depends on
(judge model and endpoint, prompt name, method and its settings, the rendered prompt's hash), so a rerun
asks only for what is missing or failed and nothing is paid for twice."""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

log = logging.getLogger(__name__)
CACHE_FILE = "geval_judgements.jsonl"


class JudgeCache:
    """Successful judgements, one JSON line each, appended as they arrive (thread-safe).

    A line broken by a kill mid-write is skipped on reading (that item is simply asked again).
    Failures are never cached, so a rerun retries them.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._records: dict[str, dict] = {}
        if self.path.exists():
            with open(self.path, encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    try:
                        rec = json.loads(line)
                        self._records[rec["key"]] = rec
                    except (json.JSONDecodeError, KeyError, TypeError):
                        log.warning("%s:%d: unreadable cache line (interrupted write?); skipped", self.path, lineno)

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> dict | None:
        """The cached record for `key`, or None."""
        return self._records.get(key)

    def put(self, key: str, record: dict) -> None:
        """Store a record under `key` and append it to the file at once."""
        record = {**record, "key": key}
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
            self._records[key] = record


def open_cache(cache_dir: str | Path | None = None) -> JudgeCache:
    """The judgement cache in `cache_dir` (default: $STUDYLLAMA_CACHE/geval, i.e. ~/.cache/studyllama/geval)."""
    if cache_dir is None:
        from model.resolve import cache_root

        cache_dir = cache_root() / "geval"
    return JudgeCache(Path(cache_dir) / CACHE_FILE)


def cache_key(identity: dict, prompt_name: str, method: str, settings: dict, prompt_text: str) -> str:
    """sha256 over judge model, base URL, prompt name, method, its settings and the rendered prompt's hash."""
    text_hash = hashlib.sha256(prompt_text.encode("utf-8")).hexdigest()
    blob = json.dumps({"judge": identity, "prompt": prompt_name, "method": method, "settings": settings,
                       "text": text_hash}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
