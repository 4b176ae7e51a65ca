"""Reference-based metrics and degeneration measures, registered by name with a version.

ROUGE: `rouge-score` (Google's reimplementation of ROUGE-1.5.5), F1, Porter stemming.
BLEU: `nltk`. BLEU-n is the sentence-level score with all weight on n-grams of order n (as the
study reported BLEU-1..4), averaged over answers; "BLEU" is corpus-level cumulative BLEU-4. Both use
Chen & Cherry's smoothing method 1 (epsilon 0.1 for zero counts). Tokens: lowercased words and
punctuation from a regex, so no tokenizer data needs downloading.
Degeneration: invented follow-up question blocks, answers that hit the token limit, repeated 4-grams.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from prompting.templates import FOLLOW_UP_MARKERS

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Metric:
    name: str
    version: str
    fn: Callable[[list[dict]], dict[str, float]]
    per_item: Callable[[dict], dict[str, float]] | None = None


REGISTRY: dict[str, Metric] = {}


def register(name: str, version: str, per_item=None):
    def wrap(fn):
        REGISTRY[name] = Metric(name, version, fn, per_item)
        return fn

    return wrap


_ROUGE = None


def _rouge_scorer():
    global _ROUGE
    if _ROUGE is None:
        from rouge_score import rouge_scorer

        _ROUGE = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    return _ROUGE


def rouge_item(row: dict) -> dict[str, float]:
    s = _rouge_scorer().score(row["reference"], row["prediction"])
    return {"rouge1": s["rouge1"].fmeasure, "rouge2": s["rouge2"].fmeasure, "rougeL": s["rougeL"].fmeasure}


def _mean(rows: list[dict], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows) if rows else 0.0


@register("rouge", "rouge-score-0.1.2/f1/stem", per_item=rouge_item)
def rouge(rows: list[dict]) -> dict[str, float]:
    scores = [rouge_item(r) for r in rows]
    return {k: _mean(scores, k) for k in ("rouge1", "rouge2", "rougeL")}


def bleu_item(row: dict) -> dict[str, float]:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    ref, hyp = tokenize(row["reference"]), tokenize(row["prediction"])
    smooth = SmoothingFunction().method1
    out = {}
    for n in range(1, 5):
        weights = tuple(1.0 if k == n - 1 else 0.0 for k in range(4))
        out[f"bleu{n}"] = sentence_bleu([ref], hyp, weights=weights, smoothing_function=smooth) if hyp else 0.0
    return out


@register("bleu", "nltk-3.10.4/method1/regex-tokens", per_item=bleu_item)
def bleu(rows: list[dict]) -> dict[str, float]:
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

    scores = [bleu_item(r) for r in rows]
    out = {f"bleu{n}": _mean(scores, f"bleu{n}") for n in range(1, 5)}
    refs = [[tokenize(r["reference"])] for r in rows]
    hyps = [tokenize(r["prediction"]) for r in rows]
    out["bleu"] = corpus_bleu(refs, hyps, smoothing_function=SmoothingFunction().method1) if rows else 0.0
    return out


def repeated_ngram_fraction(text: str, n: int = 4) -> float:
    toks = tokenize(text)
    grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def invented_follow_up(row: dict) -> bool:
    """The model started a new question or turn of its own (the study's failure), stop string or not."""
    raw = row.get("raw_prediction", row["prediction"])
    return row.get("stop_reason") == "stop_string" or any(m in raw for m in FOLLOW_UP_MARKERS)


def degeneration_item(row: dict) -> dict[str, float]:
    return {
        "follow_up": float(invented_follow_up(row)),
        "hit_limit": float(row.get("stop_reason") == "length"),
        "repeat4": repeated_ngram_fraction(row.get("raw_prediction", row["prediction"])),
        "words": float(len(row["prediction"].split())),
    }


@register("degeneration", "1", per_item=degeneration_item)
def degeneration(rows: list[dict]) -> dict[str, float]:
    scores = [degeneration_item(r) for r in rows]
    return {
        "follow_up_rate": _mean(scores, "follow_up"),
        "follow_up_count": sum(s["follow_up"] for s in scores),
        "hit_limit_rate": _mean(scores, "hit_limit"),
        "repeat4": _mean(scores, "repeat4"),
        "mean_words": _mean(scores, "words"),
    }


def compute_metrics(rows: list[dict], names: list[str] | None = None) -> dict[str, dict]:
    """Every registered metric (or the named ones) over rows with keys reference and prediction."""
    names = names or list(REGISTRY)
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; registered: {', '.join(REGISTRY)}")
    return {n: REGISTRY[n].fn(rows) for n in names}


def metric_versions(names: list[str] | None = None) -> dict[str, str]:
    return {n: REGISTRY[n].version for n in (names or REGISTRY)}
