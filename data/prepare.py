"""`python -m data.prepare`: load, validate, de-duplicate, curate and split the QA corpus.

Writes train.jsonl, dev.jsonl, eval.jsonl, duplicates.jsonl and summary.json under --out-dir and
prints a summary table (or JSON with --json).
"""
from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.cli import add_dataclass_args, dataclass_from_args
from data.config import DataConfig
from data.fileio import atomic_write, atomic_write_text
from data.loaders import CorpusError, load_items, write_jsonl
from data.schema import DIFFICULTIES, DOMAINS, QAItem
from data.split import Splits, make_splits
from data.cli import ArgumentParser

log = logging.getLogger(__name__)
COLUMNS = (*DIFFICULTIES, "unrated", "total")


@dataclass
class PreparedData:
    splits: Splits
    summary: dict
    out_dir: Path


def _percentiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values)
    return {f"p{q}": float(np.percentile(arr, q)) for q in (5, 25, 50, 75, 95)} | {"max": int(arr.max())}


def cross_split_near_duplicates(splits: Splits, embeddings: dict[str, np.ndarray], threshold: float) -> int:
    """Pairs (train or dev item, eval item) whose questions are at least `threshold` similar."""
    fit = splits.train + splits.dev
    if not fit or not splits.eval:
        return 0
    a = np.stack([embeddings[it.id] for it in fit])
    b = np.stack([embeddings[it.id] for it in splits.eval])
    return int(((a @ b.T) >= threshold).sum())


@dataclass
class SplitResult:
    items: list[QAItem]  # every valid item read
    kept: list[QAItem]  # after de-duplication
    pairs: list  # the duplicate pairs merged
    splits: Splits
    embeddings: dict[str, np.ndarray]  # question embeddings by item id


def split_corpus(cfg: DataConfig) -> SplitResult:
    """Load, validate, de-duplicate, curate and split, without writing the split files (the concept graph
    uses this to leave the eval split's answers out); deterministic for a given corpus and config."""
    from data.dedup import deduplicate
    from data.embedding import embed_cached

    origins: dict[str, str] = {}
    items, _ = load_items(cfg.corpus, cfg.field_map, cfg.default_domain, cfg.max_question_chars, cfg.max_answer_chars,
                          origins=origins)
    log.info("loaded %d valid items", len(items))
    # question embeddings serve dedup (method "embedding"), curation's diversity term and the leak check
    vecs = embed_cached([it.question for it in items], Path(cfg.out_dir) / "question_embeddings.npz")
    embeddings = {it.id: v for it, v in zip(items, vecs)}
    answer_embeddings = None
    if cfg.dedup_method == "embedding" and cfg.paraphrase_threshold is not None:
        answer_vecs = embed_cached([it.answer for it in items], Path(cfg.out_dir) / "answer_embeddings.npz")
        answer_embeddings = {it.id: v for it, v in zip(items, answer_vecs)}
    kept, pairs = deduplicate(
        items, cfg.near_dup_threshold, cfg.dedup_method, embeddings,
        paraphrase_threshold=cfg.paraphrase_threshold,
        answer_embeddings=answer_embeddings, groups=origins,
    )
    if len(kept) <= cfg.train_size:
        raise ValueError(
            f"only {len(kept)} unique items after de-duplication; need more than train_size={cfg.train_size}"
        )
    splits = make_splits(kept, cfg.train_size, cfg.dev_size, cfg.eval_size, cfg.seed, embeddings)
    return SplitResult(items, kept, pairs, splits, embeddings)


def prepare(cfg: DataConfig) -> PreparedData:
    """Run the whole data stage and write the split files; deterministic for a given corpus and config."""
    result = split_corpus(cfg)
    items, kept, pairs, splits, embeddings = result.items, result.kept, result.pairs, result.splits, result.embeddings

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(splits.train, out / "train.jsonl")
    write_jsonl(splits.dev, out / "dev.jsonl")
    write_jsonl(splits.eval, out / "eval.jsonl")
    with atomic_write(out / "duplicates.jsonl") as fh:
        for p in pairs:
            fh.write(json.dumps(p.to_dict(), sort_keys=True) + "\n")

    summary = summarize(items, kept, pairs, splits)
    summary["cross_split_near_duplicates"] = cross_split_near_duplicates(splits, embeddings, cfg.near_dup_threshold)
    summary["near_dup_threshold"] = cfg.near_dup_threshold
    summary["paraphrase_threshold"] = cfg.paraphrase_threshold
    # the pairs merged as paraphrases across source files, each with the similarities behind its score
    summary["paraphrase_pairs"] = [p.to_dict() for p in pairs if p.kind == "paraphrase"]
    summary["files"] = {k: str(out / f"{k}.jsonl") for k in ("train", "dev", "eval", "duplicates")}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return PreparedData(splits, summary, out)


def summarize(items: list[QAItem], kept: list[QAItem], pairs, splits: Splits) -> dict:
    table = {d: {k: 0 for k in COLUMNS} for d in DOMAINS}
    for it in kept:
        table[it.domain][it.difficulty or "unrated"] += 1
        table[it.domain]["total"] += 1
    split_domains = {
        name: dict(Counter(it.domain for it in part))
        for name, part in (("train", splits.train), ("dev", splits.dev), ("eval", splits.eval))
    }
    return {
        "items_read": len(items),
        "valid_items": len(kept),
        "duplicates_dropped": {kind: sum(p.kind == kind for p in pairs) for kind in ("exact", "near", "paraphrase")},
        "by_domain_difficulty": table,
        "splits": splits.sizes(),
        "split_domains": split_domains,
        "topics": len({it.topic for it in kept}),
        "question_words": _percentiles([len(it.question.split()) for it in kept]),
        "answer_words": _percentiles([len(it.answer.split()) for it in kept]),
    }


def print_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title="QA corpus")
    t.add_column("domain")
    for d in COLUMNS:
        t.add_column(d, justify="right")
    for dom, row in summary["by_domain_difficulty"].items():
        t.add_row(dom, *(str(row[d]) for d in COLUMNS))
    console.print(t)
    s = summary["splits"]
    dropped = summary["duplicates_dropped"]
    console.print(
        f"items read {summary['items_read']}, valid unique {summary['valid_items']}; duplicates dropped: "
        f"{dropped['exact']} exact, {dropped['near']} near, {dropped['paraphrase']} paraphrases across source files"
    )
    for p in summary["paraphrase_pairs"]:
        console.print(f"  paraphrase: kept {p['kept']}, dropped {p['dropped']} (score {p['score']})")
    console.print(
        f"splits: curated train {s['train_curated']} (fit {s['train']} + dev {s['dev']}), eval {s['eval']}; "
        f"near-duplicate pairs across train/eval: {summary['cross_split_near_duplicates']}"
    )
    for key in ("question_words", "answer_words"):
        p = summary[key]
        console.print(f"{key}: " + ", ".join(f"{k} {v:g}" for k, v in p.items()))
    console.print(f"files: {summary['files']['train']} (and dev, eval, duplicates beside it)")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m data.prepare", description=__doc__.splitlines()[0])
    add_dataclass_args(parser, DataConfig)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = dataclass_from_args(DataConfig, args)
        result = prepare(cfg)
    except (CorpusError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.summary, indent=2, sort_keys=True))
    else:
        print_table(result.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
