"""Which of a reference answer's concepts another text names, by the graph's own linker.

Linking is `GraphIndex.lexical_matches`, the same matcher that seeds retrieval (names, aliases and their
plural and singular forms, longest match wins), so "the concepts of an answer" means the same thing to
retrieval, to the study app's grader and to a concept-coverage metric. Concepts that nearly every answer
mentions ("model", "data", "mean") say nothing about whether an answer is right; `generic_concepts` finds
them from document frequency, and the coverage functions take them as `ignore`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from kg.index import RELATION_LIST, GraphIndex

GENERIC_MAX_DF = 0.08  # as kg.extract: a concept in more than 8% of documents carries no specific meaning


@dataclass
class ConceptCoverage:
    reference: list[str]  # concept ids the reference names, in order of first mention (ignored ones left out)
    named: list[str]  # of those, the ones the answer names too
    missed: list[str]  # the ones it does not
    extra: list[str] = field(default_factory=list)  # concepts the answer names that the reference does not

    @property
    def coverage(self) -> float | None:
        """Share of the reference's concepts the answer names; None when the reference names none."""
        return len(self.named) / len(self.reference) if self.reference else None

    def to_dict(self) -> dict:
        return {
            "reference": self.reference,
            "named": self.named,
            "missed": self.missed,
            "extra": self.extra,
            "coverage": self.coverage,
        }


def concepts_in(index: GraphIndex, text: str, ignore: Iterable[str] = ()) -> list[str]:
    """Concept ids named in the text, in order of first mention, without the ignored ones."""
    skip = set(ignore)
    return [c for c in index.lexical_matches(text) if c not in skip]


def coverage_of(reference_concepts: list[str], answer_concepts: Iterable[str]) -> ConceptCoverage:
    """Coverage from concept lists already linked (so a reference linked once serves many answers)."""
    said = set(answer_concepts)
    ref = list(dict.fromkeys(reference_concepts))
    ref_set = set(ref)
    return ConceptCoverage(
        reference=ref,
        named=[c for c in ref if c in said],
        missed=[c for c in ref if c not in said],
        extra=[c for c in dict.fromkeys(answer_concepts) if c not in ref_set],
    )


def concept_coverage(index: GraphIndex, reference: str, answer: str, ignore: Iterable[str] = ()) -> ConceptCoverage:
    """The reference's concepts that the answer names and misses."""
    ignore = set(ignore)
    return coverage_of(concepts_in(index, reference, ignore), concepts_in(index, answer, ignore))


def generic_concepts(index: GraphIndex, texts: Iterable[str], max_df: float = GENERIC_MAX_DF) -> set[str]:
    """Concepts named in more than `max_df` of the texts (at least 3 of them)."""
    texts = list(texts)
    df = Counter(c for t in texts for c in set(index.lexical_matches(t)))
    limit = max(3, max_df * len(texts))
    return {c for c, n in df.items() if n > limit}


def prerequisites(index: GraphIndex, concept_ids: Iterable[str]) -> list[tuple[str, str]]:
    """(prerequisite, concept) pairs from PREREQUISITE_OF edges into the given concepts, strongest first.
    The edge reads "head is a prerequisite of tail", so a concept's prerequisites are the heads of its
    incoming PREREQUISITE_OF edges."""
    import numpy as np

    rel = RELATION_LIST.index("PREREQUISITE_OF")
    wanted = [index.pos[c] for c in concept_ids if c in index.pos]
    hits = np.nonzero((index.edge_rel == rel) & np.isin(index.edge_dst, wanted))[0]
    pairs = sorted(
        (
            (float(index.edge_conf[e]), index.ids[int(index.edge_src[e])], index.ids[int(index.edge_dst[e])])
            for e in hits
        ),
        key=lambda p: (-p[0], p[2], p[1]),
    )
    return list(dict.fromkeys((head, tail) for _, head, tail in pairs))
