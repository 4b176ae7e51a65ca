"""Exact and near-duplicate detection over questions.

Exact: the same question after case, punctuation and spacing are folded. Near: questions whose
MiniLM embeddings have cosine similarity at or above a threshold (or, without a model, MinHash
Jaccard over word 3-grams). Duplicates are grouped with union-find; in each group the item with the
smallest id is kept, and every merged pair is reported.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

from data.embedding import embed_questions
from data.normalize import question_key
from data.schema import QAItem


@dataclass(frozen=True)
class DuplicatePair:
    kept: str
    dropped: str
    kind: str  # "exact" | "near"
    score: float

    def to_dict(self) -> dict:
        return {"kept": self.kept, "dropped": self.dropped, "kind": self.kind, "score": round(self.score, 4)}


def exact_duplicate_pairs(items: list[QAItem]) -> list[tuple[int, int, float]]:
    first: dict[str, int] = {}
    pairs = []
    for i, item in enumerate(items):
        key = question_key(item.question)
        if key in first:
            pairs.append((first[key], i, 1.0))
        else:
            first[key] = i
    return pairs


def similar_pairs(vectors: np.ndarray, threshold: float, chunk: int = 512) -> list[tuple[int, int, float]]:
    """All (i, j, sim) with i < j and cosine(vectors[i], vectors[j]) >= threshold; vectors are unit length."""
    pairs = []
    n = len(vectors)
    for start in range(0, n, chunk):
        sims = vectors[start : start + chunk] @ vectors.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist()):
            i = start + r
            if i < c:
                pairs.append((i, c, float(sims[r, c])))
    return pairs


def minhash_signatures(texts: list[str], num_perm: int = 128, shingle: int = 3, seed: int = 1) -> np.ndarray:
    """MinHash signatures of word n-gram shingles (universal hashing of CRC32 shingle hashes)."""
    rng = np.random.default_rng(seed)
    prime = np.uint64((1 << 61) - 1)
    a = rng.integers(1, 1 << 61, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, 1 << 61, size=num_perm, dtype=np.uint64)
    sigs = np.full((len(texts), num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    for i, text in enumerate(texts):
        words = re.findall(r"[a-z0-9]+", text.lower())
        grams = {" ".join(words[k : k + shingle]) for k in range(max(1, len(words) - shingle + 1))}
        h = np.array([zlib.crc32(g.encode()) for g in grams], dtype=np.uint64)
        # (a*h + b) mod p, computed in float-free uint64 arithmetic (values stay below 2**64 as h < 2**32)
        hashed = (np.outer(h, a >> np.uint64(32)) + b) % prime
        sigs[i] = hashed.min(axis=0)
    return sigs


def minhash_pairs(sigs: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    pairs = []
    for i in range(len(sigs)):
        est = (sigs[i + 1 :] == sigs[i]).mean(axis=1)
        for j in np.nonzero(est >= threshold)[0].tolist():
            pairs.append((i, i + 1 + j, float(est[j])))
    return pairs


def deduplicate(
    items: list[QAItem],
    near_threshold: float = 0.9,
    method: str = "embedding",
    embeddings: dict[str, np.ndarray] | None = None,
    minhash_threshold: float = 0.6,
) -> tuple[list[QAItem], list[DuplicatePair]]:
    """Drop exact and near-duplicate questions; return the kept items (sorted by id) and the merged pairs.

    embeddings: question vectors by item id; computed with the bundled MiniLM if None (method "embedding").
    """
    items = sorted(items, key=lambda it: it.id)
    exact = exact_duplicate_pairs(items)
    if method == "embedding":
        near = similar_pairs(embed_questions(items, embeddings), near_threshold)
    elif method == "minhash":
        near = minhash_pairs(minhash_signatures([it.question for it in items]), minhash_threshold)
    else:
        raise ValueError(f"unknown dedup method {method!r}")

    parent = list(range(len(items)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    exact_set = {(i, j) for i, j, _ in exact}
    merged: list[DuplicatePair] = []
    for i, j, score in sorted(exact + near, key=lambda p: (p[0], p[1])):
        ri, rj = find(i), find(j)
        if ri == rj:
            continue
        keep, drop = min(ri, rj), max(ri, rj)  # smallest id wins (items are sorted by id)
        parent[drop] = keep
        kind = "exact" if (i, j) in exact_set else "near"
        merged.append(DuplicatePair(items[keep].id, items[drop].id, kind, score))
    kept = [it for k, it in enumerate(items) if find(k) == k]
    return kept, merged
