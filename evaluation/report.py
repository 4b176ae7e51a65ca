"""The evaluation's reports: the Markdown table in the study's layout (with our degeneration and G-Eval
columns), the paired comparisons, the G-Eval section, and `write_reports` (predictions.jsonl, metrics.json,
report.md, report.html)."""
from __future__ import annotations

import json
from pathlib import Path

from evaluation.numbers import DASH, interval, number

STUDY_COLUMNS = [
    ("ROUGE-1", "rouge", "rouge1"),
    ("ROUGE-2", "rouge", "rouge2"),
    ("ROUGE-L", "rouge", "rougeL"),
    ("BLEU-1", "bleu", "bleu1"),
    ("BLEU-2", "bleu", "bleu2"),
    ("BLEU-3", "bleu", "bleu3"),
    ("BLEU-4", "bleu", "bleu4"),
    ("BLEU", "bleu", "bleu"),
    ("METEOR", "meteor", "meteor"),
    ("BERTScore", "bertscore", "bertscore_f1"),
]
DEGENERATION_COLUMNS = [
    ("follow-up Q", "degeneration", "follow_up_count"),
    ("hit limit", "degeneration", "hit_limit_rate"),
    ("repeat 4-gram", "degeneration", "repeat4"),
    ("words", "degeneration", "mean_words"),
]


def geval_contexts(geval: dict | None) -> list[str]:
    """The prompt/method contexts of a metrics.json "geval" section, in its order."""
    if not geval:
        return []
    return [f"{p}/{m}" for p in geval.get("prompts") or [] for m in geval.get("methods") or [] if f"{p}/{m}" in geval]


def flagged(geval: dict, ctx: str) -> bool:
    """True when a warning names this context, or a warning concerns every context (it does not start with one)."""
    contexts = geval_contexts(geval)
    return any(w.startswith(ctx + ":") or not any(w.startswith(c + ":") for c in contexts)
               for w in geval.get("warning") or [])


def markdown_table(metrics: dict[str, dict], n_items: int, geval: dict | None = None) -> str:
    """The study's table; with a G-Eval section, one column per prompt/method, marked † where a warning applies
    (the warnings follow the table, so a reader meets them next to the scores)."""
    cols = STUDY_COLUMNS + DEGENERATION_COLUMNS
    contexts = geval_contexts(geval)
    lines = [
        f"Evaluated on {n_items} items. ROUGE: F1 (rouge-score, stemmed). BLEU-n: sentence BLEU on n-grams of "
        "order n, averaged; BLEU: corpus BLEU-4; nltk smoothing method 1. follow-up Q: answers that started a new "
        "question block (count); hit limit: share of answers cut by max_new_tokens. METEOR and BERTScore: see the "
        "metric versions in metrics.json (backbone, WordNet or not).",
        "",
        "| system | " + " | ".join([c[0] for c in cols] + [f"G-Eval {c}{' †' if flagged(geval, c) else ''}"
                                                           for c in contexts]) + " |",
        "|---|" + "---|" * (len(cols) + len(contexts)),
    ]
    for system, m in metrics.items():
        cells = []
        for _, group, key in cols:
            v = m[group][key]
            cells.append(number(int(v) if key == "follow_up_count" else float(v)))
        for c in contexts:
            mean = ((geval.get(c) or {}).get(system) or {}).get("mean")
            cells.append(DASH if mean is None else f"{number(mean, 3)}{'†' if flagged(geval, c) else ''}")
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    if contexts:
        lines.extend(["", f"G-Eval (1-5): judge {geval.get('judge')}; columns are prompt/method."])
        for w in geval.get("warning") or []:
            lines.extend(["", f"† {w}"])
    from evaluation.metrics import NOTES

    lines.extend(["", *(f"Note: {n}" for n in NOTES)] if NOTES else [])
    return "\n".join(lines) + "\n"


def geval_markdown(geval: dict | None) -> str:
    """The G-Eval part of report.md: scores with intervals, the judge sanity check, agreement, usage."""
    if not geval:
        return ""
    contexts, base = geval_contexts(geval), geval.get("baseline")
    out = ["", "## G-Eval", "", f"Judge: {geval.get('judge')}. Baseline of the differences: {base}.", ""]
    for w in geval.get("warning") or []:
        out += [f"**Warning.** {w}", ""]
    out += ["| prompt/method | system | mean | scored | failed | difference vs baseline | 95% CI | p |",
            "|---|---|---|---|---|---|---|---|"]
    for c in contexts:
        for system, r in geval[c].items():
            if not isinstance(r, dict) or "mean" not in r:
                continue
            d = r.get("vs_baseline") or {}
            ci = interval(d["ci_low"], d["ci_high"], 3) if "ci_low" in d else DASH
            out.append(f"| {c}{' †' if flagged(geval, c) else ''} | {system} | {number(r['mean'], 3)} | "
                       f"{r['n_scored']} | "
                       f"{r['n_failed']} | {number(d.get('diff'), 3, sign=True)} | {ci} | {number(d.get('p_value'))} |")
    sanity = geval.get("sanity")
    if sanity:
        out += ["", "### Judge sanity (planted answers)", "",
                f"{sanity['n_planted']} eval questions, each judged twice: with its reference answer as the answer "
                "(good) "
                f"and with the reference answer of another question (bad). Verdict rule: {sanity['criterion']}.", "",
                "| prompt/method | reference mean | shuffled mean | wins | losses | ties | separation | sign-test p | "
                "verdict |",
                "|---|---|---|---|---|---|---|---|---|"]
        for c in contexts:
            s = sanity.get(c) or {}
            if s:
                out.append(f"| {c} | {number(s['reference_mean'], 3)} | {number(s['shuffled_mean'], 3)} | {s['wins']} "
                           "| "
                           f"{s['losses']} | {s['ties']} | {number(s['separation'], 2)} | {number(s['sign_test_p'])} | "
                           f"{s['verdict']} |")
    agree = geval.get("agreement") or {}
    if agree.get("with_reference_metrics"):
        out += ["", "### Agreement (Spearman rho over items scored by both, all systems pooled)", "",
                "| prompt/method | vs ROUGE-L | vs BERTScore | n |", "|---|---|---|---|"]
        for c, d in agree["with_reference_metrics"].items():
            out.append(f"| {c} | {number(d['rougeL']['rho'], 3)} | {number(d['bertscore_f1']['rho'], 3)} | "
                       f"{d['rougeL']['n']} |")
        between = agree.get("between_contexts") or {}
        if between:
            out += ["", "| between prompt/methods | rho | n |", "|---|---|---|"]
            out += [f"| {pair} | {number(d['rho'], 3)} | {d['n']} |" for pair, d in between.items()]
    total = (geval.get("usage") or {}).get("total") or {}
    if total:
        out += ["", f"Judgements: {total.get('n_items', 0)} ({total.get('n_cached', 0)} from the cache, "
                f"{total.get('n_asked', 0)} asked, {total.get('n_failed', 0)} failed); tokens "
                f"{total['tokens']['total']}, "
                f"cost {number(float(total['cost']['total']), 4, 4)}."]
    return "\n".join(out) + "\n"


def comparison_table(comparisons: dict) -> str:
    if not comparisons:
        return ""
    lines = ["", "Paired differences over the same items (95% bootstrap CI, sign-flip test p):", "",
             "| comparison | metric | baseline | system | difference | 95% CI | p |", "|---|---|---|---|---|---|---|"]
    for name, per_metric in comparisons.items():
        for m, c in per_metric.items():
            lines.append(f"| {name} | {m} | {number(c['mean_a'])} | {number(c['mean_b'])} | "
                         f"{number(c['diff'], sign=True)} "
                         f"| {interval(c['ci_low'], c['ci_high'])} | {number(c['p_value'])} |")
    return "\n".join(lines) + "\n"


CONCEPT_LABELS = {"concept_coverage": "coverage", "concept_support": "support", "retrieval_recall": "retrieval recall",
                  "evidence_use": "evidence use"}


def concepts_markdown(concepts: dict | None) -> str:
    """Concept scores per system (the graph's linker), and where each comparison wins and loses on coverage."""
    if not concepts:
        return ""
    from evaluation.concepts import CONCEPT_METRICS

    lines = ["", "Concepts named, by the concept graph's own linker (coverage: share of the reference's concepts the "
             "answer names; support: share of the answer's concepts found in the reference or the question's "
             "subgraph; retrieval recall: share of the reference's concepts in the subgraph; evidence use: share of "
             f"the subgraph's concepts the answer names). {concepts['generic_concepts_ignored']} generic concepts "
             "(in over 8% of references) are ignored; "
             f"{concepts['items_with_subgraph']} questions had a subgraph.", "",
             "| system | " + " | ".join(CONCEPT_LABELS[m] for m in CONCEPT_METRICS) + " |",
             "|---|" + "---|" * len(CONCEPT_METRICS)]
    for system, means in concepts["means"].items():
        lines.append(f"| {system} | " + " | ".join(
            DASH if means.get(m) is None else f"{number(means[m], 3)} (n={means[f'{m}_n']})" for m in CONCEPT_METRICS)
            + " |")
    for name, b in (concepts.get("breakdown") or {}).items():
        lines.extend(["", f"{name}, concept coverage per question (wins / losses / ties):", "",
                      "| group | wins | losses | ties |", "|---|---|---|---|"])
        for title, groups in (("domain", b["by_domain"]), ("retrieval recall", b["by_retrieval_recall"])):
            for g, c in groups.items():
                lines.append(f"| {title}: {g} | {c['wins']} | {c['losses']} | {c['ties']} |")
    return "\n".join(lines) + "\n"


def report_markdown(scores, n_items: int) -> str:
    """report.md's body (also what the entry points print): the table, comparisons, fallbacks, G-Eval."""
    table = markdown_table(scores.metrics, n_items, scores.geval) + comparison_table(scores.comparisons)
    for s, n in scores.graph_fallback.items():
        table += (f"\n{s}: {n} of {n_items} questions had no subgraph in the concept graph and were answered from the "
                  "plain prompt.\n")
    return table + concepts_markdown(scores.concepts) + geval_markdown(scores.geval)


def write_reports(out_dir: Path, all_rows: dict[str, list[dict]], scores, summary: dict, table: str) -> None:
    """predictions.jsonl (every system's rows, G-Eval scores merged in), metrics.json (`summary` with the scores),
    report.md (`table`) and report.html (evaluation.html_report, read back from those files)."""
    from evaluation.html_report import write_html_report
    from evaluation.predictions import write_predictions

    out_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(out_dir / "predictions.jsonl", all_rows)
    summary = {**summary, "metrics": scores.metrics, "comparisons": scores.comparisons, "by_domain": scores.by_domain,
               "graph_fallback": scores.graph_fallback}
    if scores.geval is not None:
        summary["geval"] = scores.geval
    if scores.concepts is not None:
        summary["concepts"] = scores.concepts
    from data.fileio import atomic_write_text

    atomic_write_text(out_dir / "metrics.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    atomic_write_text(out_dir / "report.md", "# Evaluation\n\n" + table)
    write_html_report(out_dir)
