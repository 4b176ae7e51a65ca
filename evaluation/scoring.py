"""Scoring an evaluation's answers: every registered metric per system and per domain, and the paired
comparisons between systems (bootstrap interval of the difference, sign-flip p)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

PAIRED_METRICS = ("rouge1", "rouge2", "rougeL", "bleu1", "bleu4", "meteor", "bertscore_f1")
"""The per-item metrics every paired comparison (reports, the ablation summary) is made on."""
DOMAIN_METRICS = ["rouge", "bleu", "meteor"]


@dataclass
class Scores:
    metrics: dict  # system -> metric group -> value
    comparisons: dict  # "A vs B" -> metric -> paired_bootstrap result
    by_domain: dict  # system -> domain -> metric group -> value
    graph_fallback: dict  # graph system -> questions answered from the plain prompt
    geval: dict | None = field(default=None)  # the G-Eval section (evaluation.geval.runner.run_geval), when judged
    concepts: dict | None = field(default=None)  # concept scores (evaluation.concepts.score_concepts), when linked


def comparison_pairs(systems: list[str]) -> list[tuple[str, str]]:
    """(system, reference) pairs: every system against the first, and against finetuned when both are there."""
    from model.modes import BASELINE, get

    if len(systems) < 2:
        return []
    finetuned = get(BASELINE).system
    base = systems[0]
    pairs = [(other, base) for other in systems[1:]]
    if finetuned in systems and base != finetuned:
        pairs += [(other, finetuned) for other in systems if other not in (base, finetuned)]
    return pairs


def compare_systems(all_rows: dict[str, list[dict]]) -> dict:
    """Every system against the first (the baseline), and every other system against `finetuned` as well when both
    are there: a mode that adds something to the fine-tuned model (graph evidence, soft tokens) shows its own
    effect as X vs finetuned, not X vs plain. Per-item scores; CI of the difference and p."""
    from evaluation.metrics import per_item_scores
    from evaluation.significance import paired_bootstrap

    pairs = comparison_pairs(list(all_rows))
    if not pairs:
        return {}
    per_item = {s: per_item_scores(rows) for s, rows in all_rows.items()}
    out = {}
    for other, ref in pairs:
        out[f"{other} vs {ref}"] = {
            m: paired_bootstrap([x[m] for x in per_item[ref]], [x[m] for x in per_item[other]]) for m in PAIRED_METRICS
        }
    return out


def score(all_rows: dict[str, list[dict]], concept_index=None, references: list[str] | None = None) -> Scores:
    """Metrics of every system overall and per domain, paired comparisons, and graph fallbacks; with the concept
    graph's index, the concept scores too (evaluation.concepts), paired like the others."""
    from evaluation.metrics import compute_metrics

    metrics = {s: compute_metrics(rows) for s, rows in all_rows.items()}
    by_domain = {}
    for s, rows in all_rows.items():
        groups = defaultdict(list)
        for r in rows:
            groups[r["domain"]].append(r)
        by_domain[s] = {d: compute_metrics(g, DOMAIN_METRICS) for d, g in sorted(groups.items())}
    fallback = {s: sum(bool(r.get("graph_fallback")) for r in rows) for s, rows in all_rows.items()
                if any("graph_fallback" in r for r in rows)}
    scores = Scores(metrics, compare_systems(all_rows), by_domain, fallback)
    if concept_index is not None:
        from evaluation.concepts import breakdown, paired_concepts, score_concepts

        refs = references if references is not None else [r["reference"] for r in next(iter(all_rows.values()))]
        scores.concepts = score_concepts(all_rows, concept_index, refs)
        scores.concepts["breakdown"] = {}
        for other, ref in comparison_pairs(list(all_rows)):
            name = f"{other} vs {ref}"
            scores.comparisons.setdefault(name, {}).update(paired_concepts(all_rows[ref], all_rows[other]))
            scores.concepts["breakdown"][name] = breakdown(all_rows[ref], all_rows[other])
    return scores
