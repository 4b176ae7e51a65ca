"""Reference-based metrics and degeneration measures, registered by name with a version.

ROUGE: `rouge-score` (Google's reimplementation of ROUGE-1.5.5), F1, Porter stemming.
BLEU: `nltk`. BLEU-n is the sentence-level score with all weight on n-grams of order n (as the
study reported BLEU-1..4), averaged over answers; "BLEU" is corpus-level cumulative BLEU-4. Both use
Chen & Cherry's smoothing method 1 (epsilon 0.1 for zero counts). Tokens: lowercased words and
punctuation from a regex, so no tokenizer data needs downloading.
METEOR: `nltk` (alpha 0.9, beta 3, gamma 0.5) with WordNet synonyms when nltk's WordNet data is on
this machine; otherwise exact and stem matches only, and every report says so (nothing is downloaded).
BERTScore: `bert-score` F1 on the bundled all-MiniLM-L6-v2 (last layer, no baseline rescaling) by
default, any HF model by `configure(bertscore_model=...)`; the report names the backbone.
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


def installed_version(package: str) -> str:
    """The installed version of a distribution, as pip sees it."""
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not-installed"


@dataclass(frozen=True)
class Metric:
    name: str
    method: str  # what is computed (e.g. "f1/stem"); changing it changes the scores
    fn: Callable[[list[dict]], dict[str, float]]
    per_item: Callable[[dict], dict[str, float]] | None = None
    package: str | None = None  # the distribution that computes it: its installed version is part of the version

    @property
    def version(self) -> str:
        """`package-x.y.z/method`, read from the installed package so that an upgrade shows in every report."""
        return f"{self.package}-{installed_version(self.package)}/{self.method}" if self.package else self.method


REGISTRY: dict[str, Metric] = {}


def register(name: str, method: str, package: str | None = None, per_item=None):
    def wrap(fn):
        REGISTRY[name] = Metric(name, method, fn, per_item, package)
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


@register("rouge", "f1/stem", "rouge-score", per_item=rouge_item)
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


@register("bleu", "method1/regex-tokens", "nltk", per_item=bleu_item)
def bleu(rows: list[dict]) -> dict[str, float]:
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

    scores = [bleu_item(r) for r in rows]
    out = {f"bleu{n}": _mean(scores, f"bleu{n}") for n in range(1, 5)}
    refs = [[tokenize(r["reference"])] for r in rows]
    hyps = [tokenize(r["prediction"]) for r in rows]
    out["bleu"] = corpus_bleu(refs, hyps, smoothing_function=SmoothingFunction().method1) if rows else 0.0
    return out


_WORDNET = None
NOTES: list[str] = []  # caveats a report must repeat next to the scores
_SETTINGS = {"bertscore_model": None}


def configure(bertscore_model: str | None = None) -> None:
    _SETTINGS["bertscore_model"] = bertscore_model


class _NoWordNet:
    """Stands in for WordNet when its data is absent: METEOR then matches exact words and stems only."""

    def synsets(self, *args, **kwargs):
        return []


def _wordnet():
    global _WORDNET
    if _WORDNET is None:
        from evaluation.wordnet import ensure_on_path

        ensure_on_path()  # Debian's WordNet 3.0, installed by scripts/setup.sh into the project's nltk folder
        try:
            from nltk.corpus import wordnet

            wordnet.ensure_loaded()
            _WORDNET = wordnet
        except (LookupError, OSError):
            _WORDNET = _NoWordNet()
            note = ("METEOR: WordNet is not installed (bash scripts/setup.sh installs Debian's wordnet-base), so "
                    "METEOR matched exact words and stems only (no synonyms); scores are lower than WordNet METEOR "
                    "and not comparable with published ones.")
            if note not in NOTES:
                NOTES.append(note)
    return _WORDNET


def meteor_version() -> str:
    mode = "wordnet" if not isinstance(_wordnet(), _NoWordNet) else "exact+stem (no WordNet)"
    return f"{REGISTRY['meteor'].version}/{mode}"


def meteor_item(row: dict) -> dict[str, float]:
    from nltk.translate.meteor_score import meteor_score

    hyp = tokenize(row["prediction"])
    return {"meteor": meteor_score([tokenize(row["reference"])], hyp, wordnet=_wordnet()) if hyp else 0.0}


@register("meteor", "meteor", "nltk", per_item=meteor_item)
def meteor(rows: list[dict]) -> dict[str, float]:
    return {"meteor": _mean([meteor_item(r) for r in rows], "meteor")}


_BERTSCORERS: dict = {}
_BERT_MEMO: dict = {}  # (backbone, predictions, references) -> F1 list: the table and the paired tests share one pass


def bertscore_backbone() -> str:
    if _SETTINGS["bertscore_model"]:
        return _SETTINGS["bertscore_model"]
    from data.embedding import bundled_minilm_path

    return str(bundled_minilm_path())


def bertscore_items(rows: list[dict]) -> list[float]:
    """BERTScore F1 per row, computed in batches."""
    if not rows:
        return []
    backbone = bertscore_backbone()
    key = (backbone, tuple(r["prediction"] for r in rows), tuple(r["reference"] for r in rows))
    if key in _BERT_MEMO:
        return _BERT_MEMO[key]
    if backbone not in _BERTSCORERS:
        from bert_score import BERTScorer
        from transformers import AutoConfig

        layers = AutoConfig.from_pretrained(backbone).num_hidden_layers
        _BERTSCORERS[backbone] = BERTScorer(model_type=backbone, num_layers=layers, lang="en", batch_size=32)
    _, _, f1 = _BERTSCORERS[backbone].score([r["prediction"] or "." for r in rows], [r["reference"] for r in rows])
    _BERT_MEMO[key] = [float(x) if r["prediction"] else 0.0 for x, r in zip(f1.tolist(), rows)]
    return _BERT_MEMO[key]


@register("bertscore", "f1/last-layer/no-rescale", "bert-score")
def bertscore(rows: list[dict]) -> dict[str, float]:
    scores = bertscore_items(rows)
    return {"bertscore_f1": sum(scores) / len(scores) if scores else 0.0}


def per_item_scores(rows: list[dict]) -> list[dict[str, float]]:
    """Item-level scores of every metric that has them (for paired comparisons)."""
    berts = bertscore_items(rows)
    return [rouge_item(r) | bleu_item(r) | meteor_item(r) | {"bertscore_f1": b} for r, b in zip(rows, berts)]


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
    versions = {n: REGISTRY[n].version for n in (names or REGISTRY)}
    if "meteor" in versions:
        versions["meteor"] = meteor_version()
    if "bertscore" in versions:
        versions["bertscore"] += f"/backbone={bertscore_backbone()}"
    return versions
