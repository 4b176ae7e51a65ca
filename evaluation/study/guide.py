"""The study guide: the curated corpus with what the app needs to look things up in it.

Every question with its reference answer, domain, difficulty and topic; MiniLM question vectors (the same
on-disk cache `data.prepare` fills, so nothing is encoded twice); the concepts each reference answer names
(linked once by the graph's own linker and cached on disk per graph and corpus); and the graph's concept
names, definitions and prerequisite edges.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.schema import QAItem

log = logging.getLogger(__name__)


@dataclass
class Neighbour:
    item: QAItem
    similarity: float


class StudyGuide:
    """The corpus and the concept graph's index, ready for the app's look-ups."""

    def __init__(
        self,
        items: list[QAItem],
        question_vecs: np.ndarray,
        index,
        generic: set[str],
        reference_concepts: dict[str, list[str]],
        embedder=None,
    ):
        if len(items) != len(question_vecs):
            raise ValueError(f"{len(items)} items but {len(question_vecs)} question vectors")
        self.items = items
        self.by_id = {it.id: it for it in items}
        self.row = {it.id: k for k, it in enumerate(items)}
        self.question_vecs = question_vecs
        self.index = index
        self.generic = generic
        self.reference_concepts = reference_concepts
        self._embedder = embedder

    # --- loading --------------------------------------------------------------------------------------
    @classmethod
    def load(cls, corpus: list[str], index, work_dir: str | Path, question_cache: str | Path) -> "StudyGuide":
        """Read the corpus (every row validated), its question vectors (cached in `question_cache`, the file
        `data.prepare` fills) and its reference answers' concepts (cached in `work_dir`)."""
        from data.embedding import embed_cached
        from data.loaders import load_items

        items, _ = load_items(corpus)
        items = _drop_repeated_questions(items)
        work = Path(work_dir)
        vecs = embed_cached([it.question for it in items], Path(question_cache))
        generic, concepts = _reference_concepts(items, index, work)
        log.info(
            "study guide: %d questions, %d concepts in the graph (%d too generic to grade: %s)",
            len(items),
            len(index.ids),
            len(generic),
            ", ".join(sorted(generic)),
        )
        return cls(items, vecs, index, generic, concepts)

    @property
    def embedder(self):
        if self._embedder is None:
            from data.embedding import get_embedder

            self._embedder = get_embedder()
        return self._embedder

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode(texts)

    # --- questions ------------------------------------------------------------------------------------
    def get(self, item_id: str) -> QAItem:
        if item_id not in self.by_id:
            raise KeyError(f"no question with id {item_id!r} in the study guide")
        return self.by_id[item_id]

    def topics(self) -> dict[str, list[str]]:
        """domain -> its topics, sorted."""
        out: dict[str, set[str]] = {}
        for it in self.items:
            out.setdefault(it.domain, set()).add(it.topic)
        return {d: sorted(t) for d, t in sorted(out.items())}

    def select(
        self, domain: str | None = None, difficulty: str | None = None, topic: str | None = None
    ) -> list[QAItem]:
        return [
            it
            for it in self.items
            if (not domain or it.domain == domain)
            and (not difficulty or it.difficulty == difficulty)
            and (not topic or it.topic == topic)
        ]

    def nearest(self, vec: np.ndarray, k: int = 3, exclude: set[str] | None = None) -> list[Neighbour]:
        """The k questions whose vectors are closest to `vec` (cosine), without the excluded ids."""
        sims = self.question_vecs @ vec
        out = []
        for i in np.argsort(-sims, kind="stable"):
            it = self.items[int(i)]
            if exclude and it.id in exclude:
                continue
            out.append(Neighbour(it, float(sims[i])))
            if len(out) == k:
                break
        return out

    def nearest_to_question(self, text: str, k: int = 3) -> list[Neighbour]:
        return self.nearest(self.embed([text])[0], k)

    def practise_next(self, item: QAItem, missed: list[str], k: int = 3, pool: int = 20) -> list[Neighbour]:
        """Questions close to this one, those whose answers use a concept the learner missed first."""
        near = self.nearest(self.question_vecs[self.row[item.id]], pool, exclude={item.id})
        miss = set(missed)
        near.sort(key=lambda n: (-len(miss & set(self.reference_concepts.get(n.item.id, ()))), -n.similarity))
        return near[:k]

    # --- concepts -------------------------------------------------------------------------------------
    def concept(self, cid: str) -> dict:
        i = self.index.pos[cid]
        return {"id": cid, "name": self.index.names[i], "definition": self.index.definitions[i]}


def _drop_repeated_questions(items: list[QAItem]) -> list[QAItem]:
    """One item per question text: a learner should not meet the same question twice under two ids."""
    seen, out = set(), []
    for it in items:
        key = " ".join(it.question.lower().split())
        if key in seen:
            log.info("study guide: %s repeats an earlier question; skipped", it.id)
            continue
        seen.add(key)
        out.append(it)
    return out


def _reference_concepts(items: list[QAItem], index, work: Path) -> tuple[set[str], dict[str, list[str]]]:
    """(generic concepts, item id -> concepts of its reference answer), cached per graph and corpus."""
    from kg.coverage import concepts_in, generic_concepts

    digest = hashlib.sha256(
        json.dumps([index.digest, sorted((it.id, it.answer) for it in items)]).encode()
    ).hexdigest()[:16]
    path = work / f"reference_concepts-{digest}.json"
    if path.exists():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            return set(cached["generic"]), cached["concepts"]
        except (json.JSONDecodeError, KeyError) as exc:  # a cache broken by a kill mid-write: link again
            log.warning("%s is unreadable (%s); linking the references again", path, exc)
    generic = generic_concepts(index, [it.answer for it in items])
    concepts = {it.id: concepts_in(index, it.answer, generic) for it in items}
    work.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"generic": sorted(generic), "concepts": concepts}), encoding="utf-8")
    tmp.replace(path)
    return generic, concepts
