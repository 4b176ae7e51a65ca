"""Benchmark: evaluation throughput against the generation batch size, on this machine (prints JSON).

One system (plain, or a trained system of a run directory) answers the same eval items with the decoding
every evaluation uses (greedy, --max_new_tokens, answer-only 4-gram ban, stop strings), once per batch
size, the sizes taking turns in two rounds (the second in reverse order) so drift hits them alike. For each
size: seconds per answer, generated tokens per second, answers at the token limit, and how many answers are
the same text as at batch size 8 (left padding changes the bf16 arithmetic a little, so a few greedy answers
can part ways). An answer's time is its batch's: a batch runs until its longest answer ends.

    .venv/bin/python scripts/bench_generate.py [--run_dir runs/<run> --system finetuned] [--items 24]
        [--batch_sizes 4,8,16,24] [--threads N]
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from data.cli import ArgumentParser

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run_dir", default=None, help="a training run (needed for any system but plain)")
    p.add_argument("--system", default="plain")
    p.add_argument("--items", type=int, default=24, help="a stratified sample of the eval split (seed 0)")
    p.add_argument("--batch_sizes", default="4,8,16,24")
    p.add_argument("--max_new_tokens", type=int, default=None, help="default: the evaluation's")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1:
        p.error(f"--batch_sizes must list positive integers, got {args.batch_sizes!r}")

    import logging

    import torch

    logging.basicConfig(level=logging.WARNING)
    from data.cli import quiet_third_party

    quiet_third_party()
    if args.threads:
        torch.set_num_threads(args.threads)
    from data.loaders import read_split
    from evaluation.config import EvalConfig
    from evaluation.run import DEFAULT_EVAL_FILE, sample_items
    from evaluation.systems import SystemRunner
    from model.modes import PLAIN
    from model.rundir import RunDir, find_system_runs
    from prompting.templates import stop_strings

    cfg = EvalConfig(run_dir=args.run_dir, systems=[args.system])
    if args.max_new_tokens:
        cfg.max_new_tokens = args.max_new_tokens
    run = RunDir.open(args.run_dir) if args.run_dir else None
    system_run = find_system_runs(args.run_dir, [], [args.system])[args.system] if args.system != PLAIN else run
    style = run.prompt_style if run else "study"
    items = sample_items(read_split(run.eval_file if run else DEFAULT_EVAL_FILE), args.items, 0)
    base = cfg.generation_settings()
    runner = SystemRunner(args.system, system_run, style, base, stop_strings(style)).load()
    runner.settings = replace(base, batch_size=min(sizes))
    runner.answer(items[:2])  # warm-up: kernels, allocator, subgraph cache

    seconds = {b: [] for b in sizes}
    texts: dict[int, list[str]] = {}
    gens_of: dict[int, list] = {}
    for order in (sizes, sizes[::-1]):
        for b in order:
            runner.settings = replace(base, batch_size=b)
            t0 = time.perf_counter()
            out = runner.answer(items)
            seconds[b].append(time.perf_counter() - t0)
            gens_of[b] = [g for g, _ in out]
            texts[b] = [g.text for g in gens_of[b]]
    ref = texts.get(8) or texts[sizes[0]]
    rows = {}
    for b in sizes:
        s = statistics.median(seconds[b])
        new_tokens = sum(g.new_tokens for g in gens_of[b])
        rows[str(b)] = {
            "s_per_answer": round(s / len(items), 2),
            "generated_tokens_per_s": round(new_tokens / s, 1),
            "hit_limit": sum(g.stop_reason == "length" for g in gens_of[b]),
            "same_answer_as_reference_batch": sum(a == r for a, r in zip(texts[b], ref)),
            "runs_s": [round(x, 1) for x in seconds[b]],
        }
    fastest = min(sizes, key=lambda b: rows[str(b)]["s_per_answer"])
    print(json.dumps({
        "machine": f"{torch.get_num_threads()} torch threads, CPU",
        "system": args.system, "run_dir": args.run_dir, "items": len(items),
        "max_new_tokens": base.max_new_tokens, "reference_batch": 8 if 8 in texts else sizes[0],
        "by_batch_size": rows, "fastest": fastest,
        "speedup_fastest_vs_8": (round(rows["8"]["s_per_answer"] / rows[str(fastest)]["s_per_answer"], 2)
                                 if "8" in rows else None),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
