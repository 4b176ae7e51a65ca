"""What the graph adds, measured with the graph's own concept linker.

Reference-overlap metrics say little about whether an answer names the right ideas. With the concepts the
KG's linker finds in a text (names, aliases and their variants: `kg.index.GraphIndex.lexical_matches`):

- concept coverage: the share of the reference answer's concepts that the answer names;
- concept support: the share of the answer's concepts that the reference or the question's subgraph holds
  (the same subgraph for every system, so it is one yardstick; an answer naming unrelated concepts scores low);
- retrieval recall: the share of the reference answer's concepts that the question's subgraph holds, a
  property of retrieval alone (the same for every system);
- evidence use: the share of the subgraph's concepts that the answer names (for a system that did not see the
  evidence, how many it names anyway: the baseline the graph systems are compared with).

An item whose reference names no concept has no coverage or recall (None), and is left out of their means.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

CONCEPT_METRICS = ("concept_coverage", "concept_support", "retrieval_recall", "evidence_use")
Linker = Callable[[str], Iterable[str]]


def _share(part: set[str], whole: set[str]) -> float | None:
    return len(part & whole) / len(whole) if whole else None


def concept_scores(answer: str, reference: str, subgraph_concepts: Iterable[str], link: Linker) -> dict:
    """Per-item scores and the concept sets behind them (for the report's question browser)."""
    ref = set(link(reference))
    ans = set(link(answer)) if answer.strip() else set()
    sub = set(subgraph_concepts)
    return {
        "concept_coverage": _share(ans, ref),
        "concept_support": _share(ref | sub, ans),
        "retrieval_recall": _share(sub, ref),
        "evidence_use": _share(ans, sub),
        "concepts": {"reference": sorted(ref), "answer": sorted(ans), "named": sorted(ans & ref),
                     "missed": sorted(ref - ans)},
    }


def mean_scores(rows: list[dict]) -> dict[str, float | None]:
    """Means over the items where each score is defined, and how many items that was."""
    out: dict[str, float | None] = {}
    for m in CONCEPT_METRICS:
        vals = [r[m] for r in rows if r.get(m) is not None]
        out[m] = sum(vals) / len(vals) if vals else None
        out[f"{m}_n"] = len(vals)
    return out


def recall_bin(recall: float | None) -> str:
    """Buckets of retrieval recall for the per-question view."""
    if recall is None:
        return "no reference concepts"
    if recall == 0:
        return "0"
    if recall < 0.5:
        return "(0, 0.5)"
    if recall < 1:
        return "[0.5, 1)"
    return "1"


def wins_and_losses(rows_a: list[dict], rows_b: list[dict], metric: str, key: Callable[[dict], str],
                    tie: float = 1e-9) -> dict[str, dict[str, int]]:
    """Per group (key of the item), how many items system b beats a on metric, loses, and ties."""
    out: dict[str, dict[str, int]] = {}
    for a, b in zip(rows_a, rows_b):
        if a.get(metric) is None or b.get(metric) is None:
            continue
        g = out.setdefault(key(b), {"wins": 0, "losses": 0, "ties": 0})
        d = b[metric] - a[metric]
        g["wins" if d > tie else "losses" if d < -tie else "ties"] += 1
    return dict(sorted(out.items()))
