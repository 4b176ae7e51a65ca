"""Exact, near-duplicate and cross-source paraphrase detection over QA items.

Exact: the same question after case, punctuation and spacing are folded. Near: questions whose
MiniLM embeddings have cosine similarity at or above a threshold (or, without a model, MinHash
Jaccard over word 3-grams). Paraphrase: two items from different sources (corpus shards written
separately, or different user files) that ask the same thing in other words and answer it with the
same content. Their questions alone can sit well below the near threshold ("What is tail recursion?"
against "What is tail call optimisation?"), so the score joins three signals: question cosine, answer
cosine (MiniLM reads the first 128 tokens of an answer) and TF-IDF cosine of the whole item, which sees
the shared specifics (numbers, formulas, terms) an answer pair repeats. Duplicates are grouped with
union-find; in each group the item with the smallest id is kept, and every merged pair is reported.
"""
from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass

import numpy as np

from data.embedding import embed_answers, embed_questions
from data.normalize import question_key
from data.schema import QAItem


@dataclass(frozen=True)
class DuplicatePair:
    kept: str
    dropped: str
    kind: str  # "exact" | "near" | "paraphrase"
    score: float
    # paraphrases: the question, answer and lexical similarities the score combines
    parts: tuple[tuple[str, float], ...] = ()
    # the two items whose similarity was measured, when they are not (kept, dropped) themselves
    matched: tuple[str, str] = ()

    def to_dict(self) -> dict:
        out = {"kept": self.kept, "dropped": self.dropped, "kind": self.kind, "score": round(self.score, 4)}
        out.update({name: round(value, 4) for name, value in self.parts})
        if self.matched and set(self.matched) != {self.kept, self.dropped}:
            out["matched"] = list(self.matched)
        return out


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


# English function words: shared by every answer, they carry no sign that two answers say the same thing
FUNCTION_WORDS = frozenset(
    "a an the and or but nor so yet if then than that this these those there here of in on at to from by for "
    "with without into onto over under about between through during before after above below up down out off "
    "as is are was were be been being am do does did done has have had having it its itself they them their "
    "theirs he she his her we us our you your i me my which who whom whose what when where why how while "
    "whereas because since although though not no can could may might must shall should will would also just "
    "only very more most less least such each every any all both either neither some many much few other "
    "another same own one s".split()
)


def lexical_similarity(texts: list[str], min_df: int = 2) -> np.ndarray:
    """Cosine similarity of TF-IDF vectors (word unigrams and bigrams, sublinear counts, smoothed IDF).

    Terms in fewer than `min_df` texts are dropped: they cannot be shared, and would only shrink every
    similarity of the text that holds them."""
    from scipy import sparse

    docs = []
    for text in texts:
        words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in FUNCTION_WORDS]
        docs.append(Counter(words + [f"{a} {b}" for a, b in zip(words, words[1:])]))
    df = Counter(term for doc in docs for term in doc)
    vocab = {term: k for k, term in enumerate(sorted(t for t, n in df.items() if n >= min_df))}
    n = len(texts)
    idf = np.array([np.log((1 + n) / (1 + df[t])) + 1 for t in sorted(vocab, key=vocab.get)])
    rows, cols, vals = [], [], []
    for i, doc in enumerate(docs):
        for term, count in doc.items():
            if term in vocab:
                rows.append(i)
                cols.append(vocab[term])
                vals.append((1 + np.log(count)) * idf[vocab[term]])
    mat = sparse.csr_matrix((vals, (rows, cols)), shape=(n, len(vocab)), dtype=np.float64)
    norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1)).ravel())
    mat = sparse.diags(1 / np.maximum(norms, 1e-12)) @ mat
    return np.asarray((mat @ mat.T).todense(), dtype=np.float32)


def paraphrase_pairs(
    question_vecs: np.ndarray, answer_vecs: np.ndarray, texts: list[str], groups: list[str], threshold: float
) -> list[tuple[int, int, float, tuple[tuple[str, float], ...]]]:
    """(i, j, score, parts) for items of different groups whose paraphrase score reaches `threshold`.

    score = (question cosine + answer cosine + 2 x lexical cosine) / 4: the lexical part counts double
    because it is the only signal that reads a whole answer."""
    q = question_vecs @ question_vecs.T
    a = answer_vecs @ answer_vecs.T
    lex = lexical_similarity(texts)
    score = (q + a + 2 * lex) / 4
    group_ids = np.unique(np.asarray(groups), return_inverse=True)[1]
    pairs = []
    for i, j in zip(*np.nonzero(np.triu(score >= threshold, k=1))):
        i, j = int(i), int(j)
        if group_ids[i] != group_ids[j]:
            parts = (("question_similarity", float(q[i, j])), ("answer_similarity", float(a[i, j])),
                     ("lexical_similarity", float(lex[i, j])))
            pairs.append((i, j, float(score[i, j]), parts))
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
    paraphrase_threshold: float | None = None,
    answer_embeddings: dict[str, np.ndarray] | None = None,
    groups: dict[str, str] | None = None,
) -> tuple[list[QAItem], list[DuplicatePair]]:
    """Drop exact and near duplicates, and paraphrases across groups; return the kept items (sorted by
    id) and the merged pairs.

    embeddings / answer_embeddings: question / answer vectors by item id; computed with the bundled
    MiniLM if None (method "embedding"). paraphrase_threshold: None turns paraphrase detection off.
    groups: item id -> the source it was written in (its corpus shard); items of one group are never
    merged as paraphrases, since one author writes related questions on purpose. Without groups every
    item is its own group.
    """
    items = sorted(items, key=lambda it: it.id)
    group_of = [groups.get(it.id, it.id) if groups else it.id for it in items]
    exact = exact_duplicate_pairs(items)
    paraphrases: list = []
    if method == "embedding":
        question_vecs = embed_questions(items, embeddings)
        near = similar_pairs(question_vecs, near_threshold)
        if paraphrase_threshold is not None:
            answer_vecs = embed_answers(items, answer_embeddings)
            texts = [f"{it.question}\n{it.answer}" for it in items]
            paraphrases = paraphrase_pairs(question_vecs, answer_vecs, texts, group_of, paraphrase_threshold)
    elif method == "minhash":
        near = minhash_pairs(minhash_signatures([it.question for it in items]), minhash_threshold)
    else:
        raise ValueError(f"unknown dedup method {method!r}")

    parent = list(range(len(items)))
    members = [{g} for g in group_of]  # the groups each union-find root holds

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    # exact before near for the same pair (so a pair is reported by its strongest kind), both in id order as
    # before; then paraphrases, strongest first, so a weaker overlap cannot pre-empt a closer match
    candidates = [(i, j, "exact", score, ()) for i, j, score in sorted(exact)]
    candidates += [(i, j, "near", score, ()) for i, j, score in near]
    candidates.sort(key=lambda c: (c[0], c[1], c[2] != "exact"))
    strongest_first = sorted(paraphrases, key=lambda p: (-p[2], p[0], p[1]))
    candidates += [(i, j, "paraphrase", score, parts) for i, j, score, parts in strongest_first]
    merged: list[DuplicatePair] = []
    for i, j, kind, score, parts in candidates:
        ri, rj = find(i), find(j)
        if ri == rj:
            continue
        # a paraphrase merge never joins two items of one source, not even through a third item
        if kind == "paraphrase" and members[ri] & members[rj]:
            continue
        keep, drop = min(ri, rj), max(ri, rj)  # smallest id wins (items are sorted by id)
        parent[drop] = keep
        members[keep] |= members[drop]
        merged.append(DuplicatePair(items[keep].id, items[drop].id, kind, score, parts, (items[i].id, items[j].id)))
    kept = [it for k, it in enumerate(items) if find(k) == k]
    return kept, merged
