"""`python -m evaluation.run`: answer eval questions with each system, score, and write a report.

Three steps (`evaluate`): generate (evaluation.answers: every system's answers, resumable from
<out_dir>/predictions/<system>.jsonl), score (evaluation.scoring: metrics, per domain, paired comparisons; with
--judge.kind, G-Eval and its sanity check through evaluation.geval) and report (evaluation.report:
predictions.jsonl, metrics.json with config, metric versions and git hash, report.md, report.html). With a
judge, the judgement cache is <out_dir>/geval_cache and the planted sanity rows geval_sanity.jsonl.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from data.loaders import read_split
from data.schema import QAItem
from evaluation.config import EvalConfig
from data.cli import ArgumentParser

log = logging.getLogger(__name__)
DEFAULT_EVAL_FILE = Path("artifacts/data/eval.jsonl")
PLAIN_OUT_DIR = Path("runs/eval-plain")


@dataclass
class EvalResult:
    out_dir: Path
    metrics: dict
    table: str
    n_items: int


def sample_items(items: list[QAItem], n: int | None, seed: int) -> list[QAItem]:
    if n is None or n >= len(items):
        return items
    from data.split import carve_stratified

    return carve_stratified(items, n, seed)[1]


def open_concept_index(cfg: EvalConfig, run):
    """The concept graph's index for concept scores (the run's graph settings), or None with a note saying why."""
    from evaluation.concepts import open_concept_index as open_index
    from evaluation.metrics import NOTES
    from kg.config import KGConfig
    from kg.store import StoreConfig, StoreUnavailableError

    try:
        return open_index(run.kg if run else KGConfig(), run.store if run else StoreConfig())
    except (StoreUnavailableError, ValueError, OSError) as exc:
        note = f"concept scores left out: {exc}"
        log.warning(note)
        if note not in NOTES:
            NOTES.append(note)
        return None


def evaluate(cfg: EvalConfig, progress: bool = True) -> EvalResult:
    from data.provenance import run_info
    from evaluation import answers
    from evaluation.metrics import configure, metric_versions
    from evaluation.report import report_markdown, write_reports
    from evaluation.scoring import score
    from model.modes import PLAIN
    from model.rundir import RunDir, find_system_runs, refuse_file
    from prompting.templates import stop_strings

    configure(bertscore_model=cfg.bertscore_model)
    run = RunDir.open(cfg.run_dir) if cfg.run_dir else None
    style = cfg.prompt_style or (run.prompt_style if run else "study")
    eval_file = Path(cfg.eval_file) if cfg.eval_file else (run.eval_file if run else DEFAULT_EVAL_FILE)
    if not eval_file.exists():
        raise FileNotFoundError(f"eval file {eval_file} does not exist; run `python -m data.prepare` or pass "
                                "--eval_file")
    out_dir = refuse_file(cfg.out_dir or (run.path / "eval" if run else PLAIN_OUT_DIR), "an output folder (--out_dir)")
    all_items = read_split(eval_file)
    items = sample_items(all_items, cfg.sample, cfg.sample_seed)
    settings = cfg.generation_settings()
    runs = find_system_runs(cfg.run_dir, cfg.runs, cfg.systems) if any(s != PLAIN for s in cfg.systems) else {}

    judge = judge_info = None
    if cfg.judge.kind:  # built before any answer is generated, so a missing judge model or key stops the run at once
        from evaluation.geval import build_judge

        judge, judge_info = build_judge(cfg.judge, run.model if run else None)

    # 1. generate
    plans = answers.plan(cfg.systems, items, runs, run, out_dir)  # checks every system's trained files
    all_rows = answers.generate(plans, items, style, settings, stop_strings(style), progress)

    # 2. score
    concept_index = open_concept_index(cfg, run) if cfg.concepts else None
    scores = score(all_rows, concept_index, [it.answer for it in all_items])
    if judge is not None:
        from evaluation.geval import run_geval

        # merges per-item scores into the rows
        scores.geval = run_geval(cfg.judge, judge, judge_info, all_rows, all_items, out_dir, progress,
                                 seed=cfg.sample_seed)
        if hasattr(judge, "close"):
            judge.close()

    # 3. report
    table = report_markdown(scores, len(items))
    summary = {"n_items": len(items), "eval_file": str(eval_file), "prompt_style": style,
               "generation": settings.to_dict(), "config": {**asdict(cfg), "judge": cfg.judge.public_dict()},
               "metric_versions": metric_versions(),
               "run": run_info()}
    write_reports(out_dir, all_rows, scores, summary, table)
    return EvalResult(out_dir, scores.metrics, table, len(items))


def build_parser() -> argparse.ArgumentParser:
    from data.cli import add_dataclass_args

    from model.memory import keep_heap_small

    keep_heap_small()
    parser = ArgumentParser(prog="python -m evaluation.run", description=__doc__.splitlines()[0])
    add_dataclass_args(parser, EvalConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    from data.cli import dataclass_from_args, quiet_third_party
    from data.loaders import CorpusError
    from kg.store import StoreUnavailableError
    from model.resolve import ModelNotFoundError
    from model.weight_files import AdapterNotFoundError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_third_party()
    try:
        cfg = dataclass_from_args(EvalConfig, args, where="flags")
        result = evaluate(cfg)
    except (CorpusError, AdapterNotFoundError, ModelNotFoundError, StoreUnavailableError, FileNotFoundError,
            ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.table)
    print(f"predictions, metrics.json, report.md and report.html written to {result.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
