"""Is the study app's grader valid? Planted answers on the eval split, as the judge's sanity check does.

For every eval question the grader scores its reference answer against four worse answers: the reference of
another question (a derangement, as evaluation.judge_sanity plants them), the reference of the most similar
other question (harder: same topic, different point), the reference cut to its first sentence, and the plain
bundled model's answer (generated here for a sample, or read from a run's predictions). A pair is won when
the reference grades strictly higher; a tie is not a win. The grader passes when it wins at least 90% of the
pairs of each of the three kinds the issue names (other question, first sentence, plain model). It also
reports how often the first sentence, a short right answer, beats another question's whole reference.

    python scripts/grader_validity.py                       # eval split of artifacts/data, 48 plain answers
    python scripts/grader_validity.py --predictions runs/X/eval/predictions.jsonl   # a run's plain answers

Prints JSON (also written to <out_dir>/grader_validity.json).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PASS_RATE = 0.9


class CachingEmbedder:
    """MiniLM with a text -> vector memo, filled in large batches up front (the grader encodes sentence by answer)."""

    def __init__(self, inner):
        self.inner, self.memo = inner, {}

    def prefill(self, texts: list[str]) -> None:
        todo = list(dict.fromkeys(t for t in texts if t not in self.memo))
        if todo:
            self.memo.update(zip(todo, self.inner.encode(todo, show_progress=True)))

    def encode(self, texts: list[str]):
        import numpy as np

        self.prefill(texts)
        return np.stack([self.memo[t] for t in texts])


def pairs(ref_scores: list[float], other_scores: list[float]) -> dict:
    wins = sum(r > o for r, o in zip(ref_scores, other_scores))
    ties = sum(r == o for r, o in zip(ref_scores, other_scores))
    n = len(ref_scores)
    return {
        "n_pairs": n,
        "wins": wins,
        "ties": ties,
        "losses": n - wins - ties,
        "rate": wins / n if n else None,
        "reference_mean": sum(ref_scores) / n if n else None,
        "other_mean": sum(other_scores) / n if n else None,
    }


def plain_answers(items, args) -> tuple[dict[str, str], str]:
    """id -> the plain model's answer, from --predictions or generated (and cached) here."""
    from evaluation.predictions import append_rows, read_cached

    if args.predictions:
        rows = [
            json.loads(line) for line in Path(args.predictions).read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        got = {r["id"]: r["prediction"] for r in rows if r.get("system") == "plain" and r.get("prediction", "").strip()}
        return got, f"plain answers read from {args.predictions}"
    from data.split import carve_stratified
    from evaluation.systems import SystemRunner
    from model.generate import GenerationSettings
    from prompting.templates import stop_strings

    sample = carve_stratified(items, min(args.sample, len(items)), args.seed)[1]
    cache_path = Path(args.out_dir) / f"plain-{args.max_new_tokens}.jsonl"
    cached = read_cached(cache_path)
    todo = [it for it in sample if it.id not in cached]
    if todo:
        settings = GenerationSettings(max_new_tokens=args.max_new_tokens, batch_size=8)
        run_cfg = {"model": {"name": "bundled", "quantization": "none"}}
        runner = SystemRunner("plain", None, run_cfg, "study", settings, stop_strings("study")).load()
        from tqdm.auto import tqdm

        for start in tqdm(range(0, len(todo), 8), desc="plain answers", unit="batch"):
            chunk = todo[start : start + 8]
            rows = [
                {"id": it.id, "system": "plain", "prediction": g.text, "stop_reason": g.stop_reason}
                for it, (g, _) in zip(chunk, runner.answer(chunk))
            ]
            append_rows(cache_path, rows)
            cached.update({r["id"]: r for r in rows})
    got = {it.id: cached[it.id]["prediction"] for it in sample if cached[it.id]["prediction"].strip()}
    return got, (
        f"plain bundled model (SmolLM2-135M-Instruct, full precision, study prompt, greedy, "
        f"max_new_tokens {args.max_new_tokens}) on a stratified sample of {len(sample)} eval questions"
    )


def main(argv: list[str] | None = None) -> int:
    from data.cli import ArgumentParser

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--eval_file", default="artifacts/data/eval.jsonl")
    p.add_argument("--predictions", help="a run's predictions.jsonl: its plain answers are used instead of generating")
    p.add_argument("--sample", type=int, default=48, help="eval questions the plain model answers here (default 48)")
    p.add_argument("--max_new_tokens", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="grade a stratified sample of this many eval questions (drawn from those "
                   "with a plain answer when there are any) instead of all of them")
    p.add_argument("--out_dir", default="artifacts/study/validity")
    p.add_argument("--kg_work_dir", default="artifacts/kg")
    p.add_argument("--store_data_dir", default="artifacts/kg/falkordb")
    p.add_argument("--question_cache", default="artifacts/data/question_embeddings.npz")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from data.cli import quiet_third_party

    quiet_third_party()
    if not Path(args.eval_file).exists():
        print(f"error: {args.eval_file} does not exist; run `python -m data.prepare` first", file=sys.stderr)
        return 2

    from data.embedding import get_embedder
    from data.loaders import read_split
    from evaluation.geval.sanity import planted_rows
    from evaluation.study.grader import Grader, split_sentences
    from evaluation.study.guide import StudyGuide
    from kg.config import KGConfig
    from kg.store import StoreConfig
    from prompting.graph_prompt import GraphContext

    started = time.perf_counter()
    items = read_split(args.eval_file)
    ctx = GraphContext(KGConfig(work_dir=args.kg_work_dir), StoreConfig(data_dir=args.store_data_dir)).open()
    guide = StudyGuide.load(KGConfig().corpus, ctx.index, args.out_dir, args.question_cache)
    embedder = CachingEmbedder(get_embedder())
    guide._embedder = embedder
    grader = Grader(guide, cache_size=len(items) + 1)
    eval_items = [guide.by_id[it.id] for it in items if it.id in guide.by_id]
    plain, plain_source = plain_answers(eval_items, args)
    if args.limit and args.limit < len(eval_items):
        from data.split import carve_stratified

        # questions with a plain answer first, so all four comparisons are made on the same questions
        pool = [it for it in eval_items if it.id in plain] or eval_items
        keep = {it.id for it in carve_stratified(pool, min(args.limit, len(pool)), args.seed)[1]}
        eval_items = [it for it in eval_items if it.id in keep]
        plain = {k: v for k, v in plain.items() if k in keep}

    good, bad = planted_rows(eval_items, len(eval_items), args.seed)
    other = {g["id"]: b["prediction"] for g, b in zip(good, bad)}
    nearest = {
        it.id: guide.nearest(guide.question_vecs[guide.row[it.id]], 1, exclude={it.id})[0].item.answer
        for it in eval_items
    }
    first = {it.id: (split_sentences(it.answer) or [it.answer])[0] for it in eval_items}
    embedder.prefill(
        [s for it in eval_items for s in split_sentences(it.answer)]
        + [s for a in plain.values() for s in split_sentences(a)]
    )

    score = lambda it, answer: grader.grade(it, answer).score  # noqa: E731
    from tqdm.auto import tqdm

    ref, s_other, s_near, s_first = [], [], [], []
    for it in tqdm(eval_items, desc="grading", unit="question"):
        ref.append(score(it, it.answer))
        s_other.append(score(it, other[it.id]))
        s_near.append(score(it, nearest[it.id]))
        s_first.append(score(it, first[it.id]))
    plain_items = [it for it in eval_items if it.id in plain]
    ref_by_id = dict(zip((it.id for it in eval_items), ref))
    s_plain = [score(it, plain[it.id]) for it in plain_items]

    result = {
        "eval_file": args.eval_file,
        "n_questions": len(eval_items),
        "sample": f"stratified sample of {len(eval_items)}" if args.limit else "the whole split",
        "criterion": f"reference wins >= {PASS_RATE:.0%} of pairs",
        "other_question": pairs(ref, s_other),
        "first_sentence": pairs(ref, s_first),
        "plain_model": {**pairs([ref_by_id[it.id] for it in plain_items], s_plain), "source": plain_source},
        "nearest_question": pairs(ref, s_near),
        "first_sentence_above_other_question": pairs(s_first, s_other),
        "seconds": round(time.perf_counter() - started, 1),
    }
    result["passes"] = {
        k: result[k]["rate"] is not None and result[k]["rate"] >= PASS_RATE
        for k in ("other_question", "first_sentence", "plain_model")
    }
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "grader_validity.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if all(result["passes"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
