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


def compare_systems(all_rows: dict[str, list[dict]]) -> dict:
    """Every system against the first (the baseline), and every other system against `finetuned` as well when both
    are there: a mode that adds something to the fine-tuned model (graph evidence, soft tokens) shows its own
    effect as X vs finetuned, not X vs plain. Per-item scores; CI of the difference and p."""
    from evaluation.metrics import per_item_scores
    from evaluation.significance import paired_bootstrap
    from model.modes import BASELINE, get

    systems = list(all_rows)
    if len(systems) < 2:
        return {}
    finetuned = get(BASELINE).system
    per_item = {s: per_item_scores(rows) for s, rows in all_rows.items()}
    base = systems[0]
    pairs = [(other, base) for other in systems[1:]]
    if finetuned in systems and base != finetuned:
        pairs += [(other, finetuned) for other in systems if other not in (base, finetuned)]
    out = {}
    for other, ref in pairs:
        out[f"{other} vs {ref}"] = {
            m: paired_bootstrap([x[m] for x in per_item[ref]], [x[m] for x in per_item[other]]) for m in PAIRED_METRICS
        }
    return out


def score(all_rows: dict[str, list[dict]]) -> Scores:
    """Metrics of every system overall and per domain, paired comparisons, and graph fallbacks."""
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
    return Scores(metrics, compare_systems(all_rows), by_domain, fallback)
