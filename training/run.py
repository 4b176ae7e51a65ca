"""`python -m training.run`: prepare data, fine-tune with QLoRA, pick a checkpoint, evaluate.

Configuration: a YAML preset (--preset cpu | study_llama2_7b | PATH) overridden by flags named
--<section>.<field> (sections data, model, train, eval); `--help` lists every field.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

PRESET_DIR = Path(__file__).resolve().parent / "presets"


def resolve_preset(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        return path
    return PRESET_DIR / f"{name}.yaml"


def build_parser() -> argparse.ArgumentParser:
    from data.cli import add_dataclass_args
    from data.config import DataConfig
    from evaluation.config import EvalConfig
    from model.config import ModelConfig
    from training.config import TrainConfig

    p = argparse.ArgumentParser(prog="python -m training.run", description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu", help="preset name in training/presets or a YAML path (default: cpu)")
    p.add_argument("--resume", action="store_true", help="continue --train.run_dir (or --run_dir) from its last checkpoint")
    p.add_argument("--run_dir", help="shorthand for --train.run_dir")
    p.add_argument("--no_eval", action="store_true", help="train only; skip the closing evaluation")
    for prefix, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig), ("eval", EvalConfig)):
        add_dataclass_args(p, cls, prefix)
    return p


def build_configs(args: argparse.Namespace):
    """(data, model, train, eval-section dict) from the preset (or a resumed run's config) and flags."""
    from data.cli import dataclass_from_args, load_preset
    from data.config import DataConfig
    from model.config import ModelConfig
    from training.config import TrainConfig

    run_dir = args.run_dir or getattr(args, "train.run_dir", None)
    if args.resume:
        if not run_dir:
            raise ValueError("--resume needs --run_dir naming the run to continue")
        from evaluation.run import read_run_config

        base = read_run_config(run_dir)
        base["train"]["resume"] = True
    else:
        base = load_preset(resolve_preset(args.preset))
    base.setdefault("train", {})
    if run_dir:
        base["train"]["run_dir"] = run_dir
    data_cfg = dataclass_from_args(DataConfig, args, "data", base.get("data"))
    model_cfg = dataclass_from_args(ModelConfig, args, "model", base.get("model"))
    train_cfg = dataclass_from_args(TrainConfig, args, "train", base.get("train"))
    eval_section = dict(base.get("eval") or {})
    eval_section.update({k.split(".", 1)[1]: v for k, v in vars(args).items() if k.startswith("eval.")})
    return data_cfg, model_cfg, train_cfg, eval_section


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "datasets", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from data.cli import quiet_third_party

    quiet_third_party()
    from data.loaders import CorpusError
    from evaluation.run import RunConfigError
    from model.load import AdapterNotFoundError
    from model.resolve import ModelNotFoundError

    try:
        return run(args)
    except (CorpusError, RunConfigError, AdapterNotFoundError, ModelNotFoundError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    import torch

    from data.prepare import prepare
    from data.provenance import run_info
    from data.split import carve_stratified
    from evaluation.config import EvalConfig
    from evaluation.run import evaluate
    from model.load import attach_lora, load_model, trainable_report
    from model.resolve import resolve_model
    from training.sft import train_sft

    data_cfg, model_cfg, train_cfg, eval_section = build_configs(args)
    run_dir = Path(train_cfg.run_dir or f"runs/{time.strftime('%Y%m%d-%H%M%S')}")
    train_cfg.run_dir = str(run_dir)
    eval_cfg = EvalConfig(**{**eval_section, "run_dir": str(run_dir)})
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"data": asdict(data_cfg), "model": asdict(model_cfg), "train": asdict(train_cfg), "eval": asdict(eval_cfg)}
    config_path = run_dir / "config.json"
    if not train_cfg.resume or not config_path.exists():
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (run_dir / "run_info.json").write_text(json.dumps(run_info() | {"seed": train_cfg.seed}, indent=2) + "\n")

    if train_cfg.num_threads:
        torch.set_num_threads(train_cfg.num_threads)
    torch.manual_seed(train_cfg.seed)

    t0 = time.time()
    resolve_model(model_cfg.name, model_cfg.cache_dir)  # fail fast on a model that is not here
    prepared = prepare(data_cfg)
    train_items = prepared.splits.train
    if train_cfg.train_limit and train_cfg.train_limit < len(train_items):
        train_items = carve_stratified(train_items, train_cfg.train_limit, train_cfg.seed)[1]
    print(f"data: {len(train_items)} training items, {len(prepared.splits.dev)} dev, {len(prepared.splits.eval)} eval ({prepared.out_dir})")

    model, tok = load_model(model_cfg)
    model = attach_lora(model, model_cfg)
    print(trainable_report(model))
    summary = train_sft(model, tok, train_items, prepared.splits.dev, train_cfg, run_dir)
    (run_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"trained {summary['global_step']} steps in {summary['train_seconds']:.0f}s "
        f"({summary['tokens_seen'] / max(summary['train_seconds'], 1e-9):.0f} tokens/s); chosen {summary['chosen_checkpoint']}"
    )
    del model

    if args.no_eval:
        print(f"run directory: {run_dir}")
        return 0
    result = evaluate(eval_cfg)
    print()
    print(result.table)
    print(f"run directory: {run_dir} (adapter/, checkpoints/, logs/, config.json)")
    print(f"evaluation: {result.out_dir} (predictions.jsonl, metrics.json, report.md); total {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
