"""`python -m evaluation.run`: answer eval questions with each system, score, and write a report.

Writes <out_dir>/predictions/<system>.jsonl (the resumable cache), predictions.jsonl (all systems),
metrics.json (config, metric versions, git hash, scores overall and per domain) and report.md.
With --judge, G-Eval scores every answer and takes a sanity check (evaluation.judging): its "geval" section
in metrics.json, columns and a section in report.md, per-item scores in predictions.jsonl, the judgement
cache in <out_dir>/geval_cache and the planted sanity rows in geval_sanity.jsonl.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from data.loaders import read_split
from data.schema import QAItem
from data.secrets import mask_url
from evaluation.config import EvalConfig
from evaluation.metrics import compute_metrics, metric_versions
from evaluation.predictions import append_rows, read_cached, rewrite_clean
from evaluation.report import geval_markdown, markdown_table

log = logging.getLogger(__name__)


class RunConfigError(ValueError):
    """A run directory's config.json is missing or unreadable."""


@dataclass
class EvalResult:
    out_dir: Path
    metrics: dict
    table: str
    n_items: int


def read_run_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise RunConfigError(f"{path} does not exist: {run_dir} is not a training run directory.")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunConfigError(f"{path} is corrupt (line {exc.lineno}, column {exc.colno}: {exc.msg}).") from None
    missing = [k for k in ("model", "train", "data") if not isinstance(cfg.get(k), dict)]
    if missing:
        raise RunConfigError(f"{path} lacks the section(s) {missing}; was it written by training.run?")
    return cfg


def sample_items(items: list[QAItem], n: int | None, seed: int) -> list[QAItem]:
    if n is None or n >= len(items):
        return items
    from data.split import carve_stratified

    return carve_stratified(items, n, seed)[1]


def evaluate(cfg: EvalConfig, progress: bool = True) -> EvalResult:
    from prompting.templates import stop_strings

    from evaluation.metrics import configure

    configure(bertscore_model=cfg.bertscore_model)
    run_cfg = read_run_config(cfg.run_dir) if cfg.run_dir else None
    style = cfg.prompt_style or (run_cfg["train"]["prompt_style"] if run_cfg else "study")
    eval_file = cfg.eval_file or (Path(run_cfg["data"]["out_dir"]) / "eval.jsonl" if run_cfg else Path("artifacts/data/eval.jsonl"))
    if not Path(eval_file).exists():
        raise FileNotFoundError(f"eval file {eval_file} does not exist; run `python -m data.prepare` or pass --eval.eval_file")
    all_items = read_split(eval_file)
    items = sample_items(all_items, cfg.sample, cfg.sample_seed)
    out_dir = Path(cfg.out_dir or (Path(cfg.run_dir) / "eval" if cfg.run_dir else Path("runs/eval-plain")))
    settings = cfg.generation_settings()
    stops = stop_strings(style)

    from evaluation.systems import SystemRunner, find_system_runs

    system_runs = find_system_runs(cfg.run_dir, cfg.runs, cfg.systems) if any(s != "plain" for s in cfg.systems) else {}
    judge = judge_info = None
    if cfg.judge:  # built before any answer is generated, so a missing judge model or key stops the run at once
        from evaluation.judging import build_judge

        judge, judge_info = build_judge(cfg, run_cfg)
    all_rows: dict[str, list[dict]] = {}
    for system in cfg.systems:
        cache_path = out_dir / "predictions" / f"{system}.jsonl"
        cached = read_cached(cache_path)
        todo = [it for it in items if it.id not in cached]
        log.info("%s: %d cached, %d to generate", system, len(items) - len(todo), len(todo))
        if todo:
            src = system_runs.get(system, Path(cfg.run_dir) if cfg.run_dir else None)
            src_cfg = read_run_config(src) if src else run_cfg
            runner = SystemRunner(system, src, src_cfg, style, settings, stops).load()
            batches = range(0, len(todo), settings.batch_size)
            if progress:
                from tqdm.auto import tqdm

                batches = tqdm(batches, desc=f"answers ({system})", unit="batch")
            for start in batches:
                chunk = todo[start : start + settings.batch_size]
                rows = [
                    {
                        "id": it.id, "system": system, "domain": it.domain, "question": it.question,
                        "reference": it.answer, "prediction": g.text, "raw_prediction": g.raw_text,
                        "stop_reason": g.stop_reason, "new_tokens": g.new_tokens, **extra,
                    }
                    for it, (g, extra) in zip(chunk, runner.answer(chunk))
                ]
                append_rows(cache_path, rows)
                cached.update({r["id"]: r for r in rows})
            runner.close()
            from model.memory import release_memory

            release_memory()
        rewrite_clean(cache_path, list(cached.values()))  # drops any half-written line a kill left behind
        all_rows[system] = [cached[it.id] for it in items]

    metrics = {s: compute_metrics(rows) for s, rows in all_rows.items()}
    comparisons = compare_systems(all_rows)
    by_domain = {}
    for s, rows in all_rows.items():
        groups = defaultdict(list)
        for r in rows:
            groups[r["domain"]].append(r)
        by_domain[s] = {d: compute_metrics(g, ["rouge", "bleu", "meteor"]) for d, g in sorted(groups.items())}
    from data.provenance import run_info

    fallback = {s: sum(bool(r.get("graph_fallback")) for r in rows) for s, rows in all_rows.items() if any("graph_fallback" in r for r in rows)}
    geval = None
    if judge is not None:
        from evaluation.judging import run_geval

        geval = run_geval(cfg, judge, judge_info, all_rows, all_items, out_dir, progress)  # merges per-item scores into the rows
        if hasattr(judge, "close"):
            judge.close()
    table = markdown_table(metrics, len(items), geval) + comparison_table(comparisons)
    for s, n in fallback.items():
        table += f"\n{s}: {n} of {len(items)} questions had no subgraph in the concept graph and were answered from the plain prompt.\n"
    table += geval_markdown(geval)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "predictions.jsonl", "w", encoding="utf-8") as fh:
        for s in all_rows:
            for r in all_rows[s]:
                fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    summary = {
        "n_items": len(items),
        "eval_file": str(eval_file),
        "prompt_style": style,
        "generation": settings.to_dict(),
        "config": {**asdict(cfg), "judge_base_url": mask_url(cfg.judge_base_url)},
        "metric_versions": metric_versions(),
        "metrics": metrics,
        "comparisons": comparisons,
        "by_domain": by_domain,
        "graph_fallback": fallback,
        "run": run_info(),
    }
    if geval is not None:
        summary["geval"] = geval
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    (out_dir / "report.md").write_text("# Evaluation\n\n" + table)
    from evaluation.html_report import write_html_report

    write_html_report(out_dir)
    return EvalResult(out_dir, metrics, table, len(items))


PAIRED_METRICS = ("rouge1", "rouge2", "rougeL", "bleu1", "bleu4", "meteor", "bertscore_f1")


def compare_systems(all_rows: dict[str, list[dict]]) -> dict:
    """Every system against the first (the baseline), and every system that adds something to the fine-tuned
    model (graph, graph-text, adapter, prompt-tuning) against `finetuned` as well: the graph's own effect is
    graph vs finetuned, not graph vs plain. Per-item scores; CI of the difference and p."""
    from evaluation.metrics import per_item_scores
    from evaluation.significance import paired_bootstrap

    systems = list(all_rows)
    if len(systems) < 2:
        return {}
    per_item = {s: per_item_scores(rows) for s, rows in all_rows.items()}
    base = systems[0]
    pairs = [(other, base) for other in systems[1:]]
    if "finetuned" in systems and base != "finetuned":
        pairs += [(other, "finetuned") for other in systems if other not in (base, "finetuned")]
    out = {}
    for other, ref in pairs:
        out[f"{other} vs {ref}"] = {
            m: paired_bootstrap([x[m] for x in per_item[ref]], [x[m] for x in per_item[other]]) for m in PAIRED_METRICS
        }
    return out


def comparison_table(comparisons: dict) -> str:
    if not comparisons:
        return ""
    lines = ["", "Paired differences over the same items (95% bootstrap CI, sign-flip test p):", "",
             "| comparison | metric | baseline | system | difference | 95% CI | p |", "|---|---|---|---|---|---|---|"]
    for name, per_metric in comparisons.items():
        for m, c in per_metric.items():
            lines.append(f"| {name} | {m} | {c['mean_a']:.4f} | {c['mean_b']:.4f} | {c['diff']:+.4f} | "
                         f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | {c['p_value']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from data.cli import add_dataclass_args, dataclass_from_args
    from data.loaders import CorpusError
    from model.load import AdapterNotFoundError
    from model.resolve import ModelNotFoundError

    from model.memory import keep_heap_small

    keep_heap_small()
    parser = argparse.ArgumentParser(prog="python -m evaluation.run", description=__doc__.splitlines()[0])
    add_dataclass_args(parser, EvalConfig)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from data.cli import quiet_third_party

    quiet_third_party()
    try:
        cfg = dataclass_from_args(EvalConfig, args)
        result = evaluate(cfg)
    except (CorpusError, RunConfigError, AdapterNotFoundError, ModelNotFoundError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.table)
    print(f"predictions, metrics.json, report.md and report.html written to {result.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
