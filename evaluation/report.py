"""The Markdown table in the study's layout, with our degeneration columns."""
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


def markdown_table(metrics: dict[str, dict], n_items: int) -> str:
    cols = STUDY_COLUMNS + DEGENERATION_COLUMNS
    lines = [
        f"Evaluated on {n_items} items. ROUGE: F1 (rouge-score, stemmed). BLEU-n: sentence BLEU on n-grams of "
        "order n, averaged; BLEU: corpus BLEU-4; nltk smoothing method 1. follow-up Q: answers that started a new "
        "question block (count); hit limit: share of answers cut by max_new_tokens. METEOR and BERTScore: see the "
        "metric versions in metrics.json (backbone, WordNet or not).",
        "",
        "| system | " + " | ".join(c[0] for c in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for system, m in metrics.items():
        cells = []
        for _, group, key in cols:
            v = m[group][key]
            cells.append(str(int(v)) if key == "follow_up_count" else _fmt(v))
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    from evaluation.metrics import NOTES

    lines.extend(["", *(f"Note: {n}" for n in NOTES)] if NOTES else [])
    return "\n".join(lines) + "\n"
