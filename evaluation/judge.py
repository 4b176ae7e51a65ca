"""`python -m evaluation.judge --predictions predictions.jsonl`: G-Eval over a predictions file on its own,
through any OpenAI-compatible endpoint (the judge, cache and runner are evaluation.geval's).

Every JudgeConfig setting is a flag (--model, --prompts, --methods, --top_logprobs, --message_role, ...);
the key comes from --api_key or $OPENAI_API_KEY and is never written anywhere. Writes geval_scores.jsonl
(one row per prediction) and geval_summary.json next to the predictions (or in --out).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from data.cli import ArgumentParser

# evaluation.run's settings that mean nothing for a file judged on its own through an endpoint
NOT_HERE = ("kind", "sanity", "quantization")


def build_parser() -> argparse.ArgumentParser:
    from data.cli import add_dataclass_args
    from evaluation.geval.config import JudgeConfig

    parser = ArgumentParser(prog="python -m evaluation.judge", description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", required=True,
                        help="JSONL rows with id, question, prediction, reference (e.g. an evaluation's "
                             "predictions.jsonl)")
    parser.add_argument("--out", help="where to write geval_scores.jsonl and geval_summary.json (default: next to "
                                      "--predictions)")
    parser.add_argument("--api_key", help="API key (default $OPENAI_API_KEY); never written to results")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    add_dataclass_args(parser, JudgeConfig, exclude=NOT_HERE)
    return parser


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not a JSON line ({exc.msg})") from None
    return rows


def main(argv: list[str] | None = None) -> int:
    """Score a predictions JSONL file; exit 0 when every item was scored, 3 when some failed, 2 on bad input."""
    from data.cli import dataclass_from_args
    from evaluation.geval import JudgeConfig, OpenAIJudge, judge_rows, open_cache

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        cfg = dataclass_from_args(JudgeConfig, args, base={"kind": "openai"})
        judge = OpenAIJudge(cfg, api_key=args.api_key)
        path = Path(args.predictions)
        rows = read_rows(path)
        cache = open_cache(cfg.cache_dir)
        merged = [{"id": r.get("id"), "system": r.get("system")} for r in rows]
        summaries = []
        for method in cfg.methods:
            scores, summary = judge_rows(rows, judge, cfg.prompts, method, progress=not args.no_progress, cache=cache)
            for m, s in zip(merged, scores):
                m.update(s)
            summaries.append(summary)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else path.parent
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "geval_scores.jsonl", "w", encoding="utf-8") as fh:
        for m in merged:
            fh.write(json.dumps(m, ensure_ascii=False, sort_keys=True) + "\n")
    summary_file = out / "geval_summary.json"
    summary_file.write_text(json.dumps({"config": cfg.public_dict(), "runs": summaries}, indent=2) + "\n")
    failed = 0
    for s in summaries:
        failed += s["n_failed"]
        means = ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} n/a" for k, v in s["mean"].items())
        print(f"{s['method']}: {s['n_scored']}/{s['n_items']} scored ({s['n_cached']} cached, {s['n_failed']} failed); "
              f"{means}; tokens {s['tokens']['total']}, cost {s['cost']['total']:.4f}")
        for f in s["failures"][:10]:
            print(f"  failed: {f['id']} ({f['system']}, {f['prompt']}): {f['error']}: {f['message'][:120]}")
    print(f"scores in {out / 'geval_scores.jsonl'}, summary in {summary_file}")
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
