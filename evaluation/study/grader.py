"""Grade a learner's answer against the study guide's reference answer, without a judge.

What the grade says, and how:
- concepts: the reference's concepts (the graph's linker, `kg.coverage`) that the answer names and misses,
  each missed one with its definition from the graph; concepts nearly every answer names are left out;
- key points: the reference's sentences. Each is matched to the answer sentence closest to it (MiniLM
  cosine); a key point is covered at cosine >= COVERED, and earns credit rising linearly from nothing at
  CREDIT_LOW to full at CREDIT_HIGH, so a near paraphrase counts and a sentence on another topic does not;
- similarity: MiniLM cosine of the two answers (each the normalised mean of its sentence vectors, so a long
  answer is not cut at the encoder's 128 tokens) and ROUGE-L F1 (evaluation.metrics, stemmed);
- prerequisites to review: PREREQUISITE_OF edges into the missed concepts; questions to practise next:
  the nearest questions, those whose answers use a missed concept first.

The score (0-1) weighs key points 0.5, concepts 0.3 and ROUGE-L 0.2 (weights renormalised when the
reference names no concept), and maps to an FSRS rating. scripts/grader_validity.py measures whether the
score ranks a reference answer above a wrong, a truncated and a generated one.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np

from data.schema import QAItem

log = logging.getLogger(__name__)

GRADER_VERSION = "1"
MAX_ANSWER_CHARS = 10_000  # the longest reference is under 8,000; longer is pasted text, not an answer
COVERED = 0.6
CREDIT_LOW, CREDIT_HIGH = 0.3, 0.7
WEIGHTS = {"key_points": 0.5, "concepts": 0.3, "rouge_l": 0.2}
# score thresholds of the FSRS ratings, lowest first: below 0.3 Again, then Hard, Good, and Easy from 0.8
RATING_THRESHOLDS = ((0.8, "easy"), (0.55, "good"), (0.3, "hard"))
RATINGS = ("again", "hard", "good", "easy")


class AnswerError(ValueError):
    """An answer the grader refuses (empty, too long); nothing is saved for it."""


@dataclass
class KeyPoint:
    text: str
    covered: bool
    match: float  # cosine of the closest answer sentence
    matched_sentence: str | None


@dataclass
class Grade:
    question_id: str
    score: float
    rating: str
    concepts_named: list[dict]
    concepts_missed: list[dict]  # each with its definition
    concept_coverage: float | None
    similarity: dict  # minilm_cosine, rouge_l
    key_points: list[KeyPoint]
    prerequisites: list[dict]  # {id, name, definition, for: [concept names]}
    practise_next: list[dict]  # {id, question, domain, topic, similarity}
    reference_answer: str
    parts: dict = field(default_factory=dict)  # the score's components
    grader_version: str = GRADER_VERSION

    def to_dict(self) -> dict:
        return asdict(self)


def rating_for(score: float) -> str:
    for threshold, name in RATING_THRESHOLDS:
        if score >= threshold:
            return name
    return "again"


def check_answer(answer) -> str:
    """The answer as it will be graded, or AnswerError saying what is wrong with it."""
    if not isinstance(answer, str):
        raise AnswerError(f"the answer must be text, got {type(answer).__name__}")
    text = answer.strip()
    if not text:
        raise AnswerError("the answer is empty: type an answer first")
    if len(text) > MAX_ANSWER_CHARS:
        raise AnswerError(
            f"the answer is {len(text):,} characters long, over the {MAX_ANSWER_CHARS:,}-character limit "
            "(the longest reference answer is under 8,000); shorten it"
        )
    return text


_NLP = None


def split_sentences(text: str) -> list[str]:
    """Sentences of a text (spaCy's rule-based sentencizer, which knows "e.g." and "3.5" are no ends)."""
    global _NLP
    if _NLP is None:
        import spacy

        _NLP = spacy.blank("en")
        _NLP.add_pipe("sentencizer")
    out = []
    for part in text.split("\n"):
        out += [s.text.strip() for s in _NLP(part).sents if any(ch.isalnum() for ch in s.text)]
    return out


def _unit_mean(vecs: np.ndarray) -> np.ndarray:
    v = vecs.mean(axis=0)
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


@dataclass
class _Reference:
    sentences: list[str]
    vecs: np.ndarray
    doc_vec: np.ndarray


class Grader:
    """Grades answers to the study guide's questions; thread-safe."""

    def __init__(self, guide, cache_size: int = 512):
        self.guide = guide
        self._refs: OrderedDict[str, _Reference] = OrderedDict()
        self._lock = threading.Lock()
        self.cache_size = cache_size

    def _reference(self, item: QAItem) -> _Reference:
        with self._lock:
            if item.id in self._refs:
                self._refs.move_to_end(item.id)
                return self._refs[item.id]
        sents = split_sentences(item.answer) or [item.answer.strip()]
        vecs = self.guide.embed(sents)
        ref = _Reference(sents, vecs, _unit_mean(vecs))
        with self._lock:
            self._refs[item.id] = ref
            while len(self._refs) > self.cache_size:
                self._refs.popitem(last=False)
        return ref

    def grade(self, item: QAItem, answer: str, practise: int = 3) -> Grade:
        from evaluation.metrics import rouge_item
        from kg.coverage import concepts_in, coverage_of, prerequisites

        text = check_answer(answer)
        ref = self._reference(item)
        sents = split_sentences(text) or [text]
        vecs = self.guide.embed(sents)
        sims = ref.vecs @ vecs.T  # key point x answer sentence
        best = sims.argmax(axis=1)
        match = sims[np.arange(len(ref.sentences)), best]
        credit = np.clip((match - CREDIT_LOW) / (CREDIT_HIGH - CREDIT_LOW), 0.0, 1.0)
        key_points = [
            KeyPoint(s, bool(m >= COVERED), round(float(m), 4), sents[int(b)] if m >= COVERED else None)
            for s, m, b in zip(ref.sentences, match, best)
        ]

        guide = self.guide
        cov = coverage_of(guide.reference_concepts.get(item.id, []), concepts_in(guide.index, text, guide.generic))
        cosine = float(np.clip(ref.doc_vec @ _unit_mean(vecs), -1.0, 1.0))
        rouge_l = float(rouge_item({"reference": item.answer, "prediction": text})["rougeL"])
        parts = {"key_points": float(credit.mean()), "concepts": cov.coverage, "rouge_l": rouge_l}
        used = {k: w for k, w in WEIGHTS.items() if parts[k] is not None}
        score = sum(w * parts[k] for k, w in used.items()) / sum(used.values())

        missed_names = {c: guide.concept(c)["name"] for c in cov.missed}
        prereqs: dict[str, dict] = {}
        for head, tail in prerequisites(guide.index, cov.missed):
            if head in cov.named or head in cov.missed:
                continue  # already named, or listed as missed itself
            entry = prereqs.setdefault(head, {**guide.concept(head), "for": []})
            entry["for"].append(missed_names[tail])
        nexts = guide.practise_next(item, cov.missed, k=practise)
        return Grade(
            question_id=item.id,
            score=round(score, 4),
            rating=rating_for(score),
            concepts_named=[guide.concept(c) for c in cov.named],
            concepts_missed=[guide.concept(c) for c in cov.missed],
            concept_coverage=cov.coverage,
            similarity={"minilm_cosine": round(cosine, 4), "rouge_l": round(rouge_l, 4)},
            key_points=key_points,
            prerequisites=list(prereqs.values())[:8],
            practise_next=[
                {
                    "id": n.item.id,
                    "question": n.item.question,
                    "domain": n.item.domain,
                    "topic": n.item.topic,
                    "difficulty": n.item.difficulty,
                    "similarity": round(n.similarity, 4),
                }
                for n in nexts
            ],
            reference_answer=item.answer,
            parts={k: (round(v, 4) if v is not None else None) for k, v in parts.items()},
        )
