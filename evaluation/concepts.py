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
    """Per-item scores and the concept sets behind them (for the report's question browser). Coverage is
    kg.coverage's, the study app grader's measure."""
    from kg.coverage import coverage_of

    said = list(link(answer)) if answer.strip() else []
    cov = coverage_of(list(link(reference)), said)
    ref, ans, sub = set(cov.reference), set(said), set(subgraph_concepts)
    return {
        "concept_coverage": cov.coverage,
        "concept_support": _share(ref | sub, ans),
        "retrieval_recall": _share(sub, ref),
        "evidence_use": _share(ans, sub),
        "concepts": {"reference": sorted(ref), "answer": sorted(ans), "named": sorted(cov.named),
                     "missed": sorted(cov.missed)},
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


def open_concept_index(kg_cfg, store_cfg):
    """The concept graph's index for linking (no edge embeddings); ValueError when the graph is empty,
    StoreUnavailableError when its store cannot be reached."""
    from kg.index import load_index
    from kg.store import counts, open_store

    with open_store(store_cfg) as store:
        if counts(store)["concepts"] == 0:
            raise ValueError(f"the concept graph in {store.name} is empty (python -m kg.build builds it)")
        return load_index(store, kg_cfg.work_dir, with_edge_embeddings=False)


def item_subgraphs(all_rows: dict[str, list[dict]], ignore: set[str]) -> dict[str, list[str]]:
    """item id -> the concept ids of the subgraph a graph system was given for it (one retrieval per question,
    the same for every graph system); empty when no system read the graph."""
    out: dict[str, list[str]] = {}
    for rows in all_rows.values():
        for r in rows:
            sg = r.get("subgraph")
            if sg and r["id"] not in out and not r.get("graph_fallback"):
                out[r["id"]] = [n["id"] for n in sg.get("nodes", []) if n["id"] not in ignore]
    return out


def score_concepts(all_rows: dict[str, list[dict]], index, references: list[str]) -> dict:
    """Concept scores of every answer, written into its row (`concept_coverage`, ..., `concepts`), and each
    system's means. Concepts that more than 8% of the references name (kg.coverage.generic_concepts) are left
    out: "model" or "data" in an answer says nothing about whether it is right. Without any graph system the
    subgraph-based scores (retrieval recall, evidence use) are None and support is judged against the
    reference alone."""
    from kg.coverage import concepts_in, generic_concepts

    ignore = generic_concepts(index, references)
    subgraphs = item_subgraphs(all_rows, ignore)
    with_graph = bool(subgraphs)

    def link(text: str) -> list[str]:
        return concepts_in(index, text, ignore)

    means = {}
    for system, rows in all_rows.items():
        for r in rows:
            sc = concept_scores(r["prediction"], r["reference"], subgraphs.get(r["id"], []), link)
            if not with_graph:
                sc["retrieval_recall"] = sc["evidence_use"] = None
            elif r["id"] not in subgraphs:  # the question had no subgraph: nothing was retrieved for it
                sc["evidence_use"] = None
            r.update(sc)
        means[system] = mean_scores(rows)
    return {"means": means, "generic_concepts_ignored": len(ignore), "items_with_subgraph": len(subgraphs),
            "linker": "kg.index.GraphIndex.lexical_matches (names, aliases, plural/singular; longest match)"}


def paired_concepts(rows_a: list[dict], rows_b: list[dict]) -> dict:
    """Paired bootstrap of b - a on each concept metric, over the items where both are defined."""
    from evaluation.significance import paired_bootstrap

    out = {}
    for m in CONCEPT_METRICS:
        pairs = [(a[m], b[m]) for a, b in zip(rows_a, rows_b) if a.get(m) is not None and b.get(m) is not None]
        if m == "retrieval_recall" or len(pairs) < 2:  # recall is the same for every system: nothing to compare
            continue
        res = paired_bootstrap([p[0] for p in pairs], [p[1] for p in pairs])
        out[m] = {**res, "n": len(pairs)}
    return out


def breakdown(rows_a: list[dict], rows_b: list[dict], metric: str = "concept_coverage") -> dict:
    """Where b wins and loses against a: by domain and by the retrieval recall of the question's subgraph."""
    return {"metric": metric,
            "by_domain": wins_and_losses(rows_a, rows_b, metric, key=lambda r: r.get("domain", "?")),
            "by_retrieval_recall": wins_and_losses(rows_a, rows_b, metric,
                                                   key=lambda r: recall_bin(r.get("retrieval_recall")))}
