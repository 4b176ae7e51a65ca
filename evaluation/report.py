"""The Markdown table in the study's layout, with our degeneration and G-Eval columns, and the G-Eval section."""
from __future__ import annotations

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


def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"


def geval_contexts(geval: dict | None) -> list[str]:
    """The prompt/method contexts of a metrics.json "geval" section, in its order."""
    if not geval:
        return []
    return [f"{p}/{m}" for p in geval.get("prompts") or [] for m in geval.get("methods") or [] if f"{p}/{m}" in geval]


def flagged(geval: dict, ctx: str) -> bool:
    """True when a warning names this context, or a warning concerns every context (it does not start with one)."""
    contexts = geval_contexts(geval)
    return any(w.startswith(ctx + ":") or not any(w.startswith(c + ":") for c in contexts) for w in geval.get("warning") or [])


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
        "| system | " + " | ".join([c[0] for c in cols] + [f"G-Eval {c}{' †' if flagged(geval, c) else ''}" for c in contexts]) + " |",
        "|---|" + "---|" * (len(cols) + len(contexts)),
    ]
    for system, m in metrics.items():
        cells = []
        for _, group, key in cols:
            v = m[group][key]
            cells.append(str(int(v)) if key == "follow_up_count" else _fmt(v))
        for c in contexts:
            mean = ((geval.get(c) or {}).get(system) or {}).get("mean")
            cells.append("–" if mean is None else f"{mean:.3f}{'†' if flagged(geval, c) else ''}")
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    if contexts:
        lines.extend(["", f"G-Eval (1-5): judge {geval.get('judge')}; columns are prompt/method."])
        for w in geval.get("warning") or []:
            lines.extend(["", f"† {w}"])
    from evaluation.metrics import NOTES

    lines.extend(["", *(f"Note: {n}" for n in NOTES)] if NOTES else [])
    return "\n".join(lines) + "\n"


def _num(v, spec: str = ".3f") -> str:
    return "–" if v is None else format(v, spec)


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
            ci = f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" if "ci_low" in d else "–"
            out.append(f"| {c}{' †' if flagged(geval, c) else ''} | {system} | {_num(r['mean'])} | {r['n_scored']} | "
                       f"{r['n_failed']} | {_num(d.get('diff'), '+.3f')} | {ci} | {_num(d.get('p_value'), '.4f')} |")
    sanity = geval.get("sanity")
    if sanity:
        out += ["", "### Judge sanity (planted answers)", "",
                f"{sanity['n_planted']} eval questions, each judged twice: with its reference answer as the answer (good) "
                f"and with the reference answer of another question (bad). Verdict rule: {sanity['criterion']}.", "",
                "| prompt/method | reference mean | shuffled mean | wins | losses | ties | separation | sign-test p | verdict |",
                "|---|---|---|---|---|---|---|---|---|"]
        for c in contexts:
            s = sanity.get(c) or {}
            if s:
                out.append(f"| {c} | {_num(s['reference_mean'])} | {_num(s['shuffled_mean'])} | {s['wins']} | {s['losses']} | "
                           f"{s['ties']} | {_num(s['separation'], '.2f')} | {_num(s['sign_test_p'], '.4f')} | {s['verdict']} |")
    agree = geval.get("agreement") or {}
    if agree.get("with_reference_metrics"):
        out += ["", "### Agreement (Spearman rho over items scored by both, all systems pooled)", "",
                "| prompt/method | vs ROUGE-L | vs BERTScore | n |", "|---|---|---|---|"]
        for c, d in agree["with_reference_metrics"].items():
            out.append(f"| {c} | {_num(d['rougeL']['rho'])} | {_num(d['bertscore_f1']['rho'])} | {d['rougeL']['n']} |")
        between = agree.get("between_contexts") or {}
        if between:
            out += ["", "| between prompt/methods | rho | n |", "|---|---|---|"]
            out += [f"| {pair} | {_num(d['rho'])} | {d['n']} |" for pair, d in between.items()]
    total = (geval.get("usage") or {}).get("total") or {}
    if total:
        out += ["", f"Judgements: {total.get('n_items', 0)} ({total.get('n_cached', 0)} from the cache, "
                f"{total.get('n_asked', 0)} asked, {total.get('n_failed', 0)} failed); tokens {total['tokens']['total']}, "
                f"cost {total['cost']['total']:.4f}."]
    return "\n".join(out) + "\n"
