"""`python -m training.run`: prepare data, fine-tune with QLoRA (or another mode), pick a checkpoint, evaluate.

Modes (model.modes, one flag each): the study's LoRA (default), --graph-prompt, --graph-text-only, --adapter,
--prompt-tuning. A run of any other mode also trains the plain LoRA baseline on the same items, so the closing
table shows plain vs fine-tuned vs the mode. Configuration: a YAML preset (--preset cpu | study_llama2_7b | PATH)
overridden by flags named --<section>.<field> (sections data, model, graph, kg, store, train, eval).

Nothing is written to the run directory before every config is valid and the model is found, and a finished
run (or one with checkpoints) is never overwritten without --resume or --overwrite.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from data.cli import ArgumentParser

PRESET_DIR = Path(__file__).resolve().parent / "presets"
SECTIONS = ("data", "model", "graph", "kg", "store", "train", "eval")


def resolve_preset(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        return path
    return PRESET_DIR / f"{name}.yaml"


def build_parser() -> argparse.ArgumentParser:
    from data.cli import add_dataclass_args
    from model.modes import MODES

    p = ArgumentParser(prog="python -m training.run", description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu", help="preset name in training/presets or a YAML path (default: cpu)")
    p.add_argument("--resume", action="store_true",
                   help="continue --run_dir from its last checkpoint (its saved config; flags override it)")
    p.add_argument("--overwrite", action="store_true",
                   help="train again from scratch in a --run_dir that holds a finished or started run (removes what "
                        "training.run wrote there)")
    p.add_argument("--run_dir", help="shorthand for --train.run_dir")
    p.add_argument("--no_eval", action="store_true", help="train only; skip the closing evaluation")
    modes = p.add_argument_group("modes (model.modes; default: the study's LoRA)").add_mutually_exclusive_group()
    for m in MODES.values():
        if m.flag:
            modes.add_argument(m.flag, dest="mode", action="store_const", const=m.name,
                               help=f"{m.trains} (--graph.mode {m.name}; system {m.system})")
    for prefix, cls in config_sections():
        add_dataclass_args(p, cls, prefix)
    return p


def config_sections():
    from data.config import DataConfig
    from evaluation.config import EvalConfig
    from kg.config import KGConfig
    from kg.store import StoreConfig
    from model.config import ModelConfig
    from model.graph_config import GraphPromptConfig
    from training.config import TrainConfig

    return (("data", DataConfig), ("model", ModelConfig), ("graph", GraphPromptConfig), ("kg", KGConfig),
            ("store", StoreConfig), ("train", TrainConfig), ("eval", EvalConfig))


def base_sections(args: argparse.Namespace, run_dir: str | None) -> tuple[dict, str]:
    """(sections, where they came from): the preset's, or with --resume the run's saved config."""
    from data.cli import load_preset

    if args.resume:
        from model.rundir import RunDir

        if not run_dir:
            raise ValueError("--resume needs --run_dir naming the run to continue")
        run = RunDir.open(run_dir)
        base = copy.deepcopy(run.config)
        base.setdefault("train", {})["resume"] = True
        return base, str(run.path / "config.json")
    path = resolve_preset(args.preset)
    base = load_preset(path)
    unknown = sorted(set(base) - set(SECTIONS) - {"mode_overrides"})
    if unknown:
        raise ValueError(f"preset {path}: unknown section(s) {unknown}; sections: {', '.join(SECTIONS)}, "
                         "mode_overrides")
    return copy.deepcopy(base), f"preset {path}"


def build_configs(args: argparse.Namespace) -> dict:
    """{section: config}, every one typed and validated, from the preset (or a resumed run's config) and flags.
    The eval section's run_dir is the training run's, and its systems default to plain, the LoRA baseline's and
    the mode's."""
    from data.cli import dataclass_from_args
    from evaluation.config import EvalConfig, upgrade_eval_section
    from model.modes import BASELINE, PLAIN, get

    run_dir = args.run_dir or getattr(args, "train.run_dir", None)
    base, source = base_sections(args, run_dir)
    run_dir = run_dir or base.get("train", {}).get("run_dir") or f"runs/{time.strftime('%Y%m%d-%H%M%S')}"
    base.setdefault("train", {})["run_dir"] = run_dir
    if getattr(args, "mode", None):
        base.setdefault("graph", {})["mode"] = args.mode
    mode = getattr(args, "graph.mode", None) or (base.get("graph") or {}).get("mode", BASELINE)
    overrides = (base.pop("mode_overrides", None) or {}).get(mode) or {}
    for section, values in overrides.items():
        base.setdefault(section, {}).update(values)  # a preset's settings for one mode (keeps a CPU run short)
    cfgs, problems = {}, []
    for name, cls in config_sections():
        if name == "eval":
            continue
        try:
            cfgs[name] = dataclass_from_args(cls, args, name, base.get(name), where=name)
        except ValueError as exc:
            problems.append(str(exc))
    eval_section = upgrade_eval_section(base.get("eval") or {})
    gcfg = cfgs.get("graph")
    if gcfg is not None:  # the mode's own settings decide the systems (e.g. --graph.train_baseline false)
        with_baseline = gcfg.mode == BASELINE or gcfg.train_baseline
        systems = [PLAIN] + ([get(BASELINE).system] if with_baseline else []) + [gcfg.system]
        eval_section.setdefault("systems", list(dict.fromkeys(systems)))
    eval_section["run_dir"] = run_dir
    try:
        cfgs["eval"] = dataclass_from_args(EvalConfig, args, "eval", eval_section, where="eval")
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ValueError(f"invalid configuration ({source} and flags):\n" + "\n".join(problems))
    return cfgs


def is_main_process() -> bool:
    """False in the other processes of a distributed launch (accelerate launch, torchrun)."""
    import os

    return os.environ.get("RANK", "0") == "0"


def check_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse, before anything is written, a run directory that is a file, and a finished run (or one with
    checkpoints) that neither --resume nor --overwrite names."""
    from model.rundir import RunDirError, has_checkpoints, run_state

    if resume and overwrite:
        raise ValueError("--resume and --overwrite contradict each other: continue the run, or start it again")
    state = run_state(run_dir)  # RunDirError when run_dir is a file
    if resume or overwrite:
        return
    if state == "finished":
        raise RunDirError(
            f"{run_dir} holds a finished run (train_summary.json, or adapter/ with eval/metrics.json); nothing was "
            "changed. Pass --resume to continue it (its saved config, your flags on top), --overwrite to train it "
            "again from scratch, or another --run_dir.")
    if has_checkpoints(run_dir):
        raise RunDirError(
            f"{run_dir} holds checkpoints of an unfinished run; nothing was changed. Pass --resume to continue it "
            "from its last checkpoint, --overwrite to start again from scratch, or another --run_dir.")


def main(argv: list[str] | None = None) -> int:
    from model.memory import keep_heap_small

    keep_heap_small()  # before any tensor exists: activations go back to the system when freed
    args = build_parser().parse_args(argv)
    if not is_main_process():  # one process speaks for a distributed run: the others only train
        import os

        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (for the life of the process)
    logging.basicConfig(level=logging.INFO if is_main_process() else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "datasets", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from data.cli import quiet_third_party

    quiet_third_party()
    from data.loaders import CorpusError
    from kg.store import StoreUnavailableError
    from model.resolve import ModelNotFoundError
    from model.weight_files import AdapterNotFoundError

    try:
        return run(args)
    except (CorpusError, AdapterNotFoundError, ModelNotFoundError, StoreUnavailableError, FileNotFoundError,
            ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    import torch

    from data.prepare import prepare
    from data.provenance import run_info
    from data.split import carve_stratified
    from evaluation.run import evaluate
    from model.graph_config import GraphPromptConfig
    from model.modes import BASELINE, get
    from model.resolve import resolve_model
    from model.rundir import CONFIG, RUN_INFO, SYSTEMS_DIR, clear_outputs, run_state

    # everything that can be wrong with the command is found before the run directory is touched
    cfgs = build_configs(args)
    model_cfg, train_cfg, gcfg, eval_cfg = cfgs["model"], cfgs["train"], cfgs["graph"], cfgs["eval"]
    run_dir = Path(train_cfg.run_dir)
    check_run_dir(run_dir, train_cfg.resume, args.overwrite)
    resolve_model(model_cfg.name, model_cfg.cache_dir)
    if args.overwrite and run_state(run_dir) != "empty":
        print(f"--overwrite: removed {', '.join(clear_outputs(run_dir))} from {run_dir}")

    # dev answers are decoded as the evaluation will decode them, within the dev budget
    dev_settings = replace(eval_cfg.generation_settings(), max_new_tokens=train_cfg.dev_max_new_tokens,
                           batch_size=train_cfg.dev_batch_size)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {name: asdict(c) for name, c in cfgs.items()}
    config["store"]["password"] = None  # never written to disk; taken from the flag or $NEO4J_PASSWORD again
    config_path = run_dir / CONFIG
    if not train_cfg.resume or not config_path.exists():
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (run_dir / RUN_INFO).write_text(json.dumps(run_info() | {"seed": train_cfg.seed}, indent=2) + "\n")

    if train_cfg.num_threads:
        torch.set_num_threads(train_cfg.num_threads)

    t0 = time.time()
    prepared = prepare(cfgs["data"])
    train_items = prepared.splits.train
    if train_cfg.train_limit and train_cfg.train_limit < len(train_items):
        train_items = carve_stratified(train_items, train_cfg.train_limit, train_cfg.seed)[1]
    print(f"data: {len(train_items)} training items, {len(prepared.splits.dev)} dev, {len(prepared.splits.eval)} eval "
          f"({prepared.out_dir})")
    print(f"mode: {gcfg.mode} ({gcfg.spec.summary})")

    if gcfg.mode != BASELINE and gcfg.train_baseline:
        base_dir = run_dir / SYSTEMS_DIR / get(BASELINE).system
        if run_state(base_dir) == "finished":
            print(f"baseline LoRA run already trained: {base_dir}")
        else:
            print(f"training the plain LoRA baseline (the {get(BASELINE).system} system) in {base_dir}")
            base_train = replace(train_cfg, run_dir=str(base_dir), resume=train_cfg.resume and base_dir.exists())
            base_cfgs = dict(cfgs) | {"train": base_train, "graph": GraphPromptConfig(mode=BASELINE)}
            base_dir.mkdir(parents=True, exist_ok=True)
            base_config = {n: asdict(c) for n, c in base_cfgs.items()} | {"store": config["store"]}
            (base_dir / CONFIG).write_text(json.dumps(base_config, indent=2, sort_keys=True) + "\n")
            train_one(base_cfgs, train_items, prepared.splits.dev, base_dir, dev_settings)

    train_one(cfgs, train_items, prepared.splits.dev, run_dir, dev_settings)
    if not is_main_process():
        return 0  # under a distributed launch only the main process evaluates
    if args.no_eval:
        print(f"run directory: {run_dir}")
        return 0
    result = evaluate(eval_cfg)
    print()
    print(result.table)
    print(f"run directory: {run_dir} (adapter/, checkpoints/, logs/, config.json)")
    print(f"evaluation: {result.out_dir} (predictions.jsonl, metrics.json, report.md, report.html); "
          f"total {time.time() - t0:.0f}s")
    return 0


def train_one(cfgs: dict, train_items, dev_items, run_dir: Path, dev_settings=None) -> dict:
    """Load the base model, make it what the mode trains (its model function, model.modes), gather graph inputs,
    train, and save."""
    import torch

    from model.graph_adapter import llama2_7b_report
    from model.load import load_model, trainable_report
    from model.memory import release_memory
    from model.rundir import TRAIN_SUMMARY
    from training.graph_inputs import GraphInputs, evidence_dropout, graph_inputs
    from training.sft import train_sft

    model_cfg, train_cfg, gcfg = cfgs["model"], cfgs["train"], cfgs["graph"]
    spec = gcfg.spec
    torch.manual_seed(train_cfg.seed)
    ctx = None
    if gcfg.uses_graph:
        from prompting.graph_prompt import GraphContext

        ctx = GraphContext(cfgs["kg"], cfgs["store"]).open()
        print(f"concept graph: {len(ctx.index.ids)} concepts, {len(ctx.index.edge_src)} triples")
    model, tok = load_model(model_cfg)
    model, lr_groups = spec.build(model, tok, model_cfg, gcfg, ctx.node_dim if ctx else None)
    files = spec.files(gcfg)
    print(trainable_report(model))
    if gcfg.uses_gnn:
        print(llama2_7b_report(gcfg, model_cfg))
    if ctx is not None:
        dropped = evidence_dropout(train_items, gcfg.evidence_dropout, train_cfg.seed)
        graph, info = graph_inputs(ctx, list(train_items) + list(dev_items[: train_cfg.dev_limit]), gcfg, files,
                                   lr_groups, dropped)
        print(f"graph inputs: {info['items']} questions, {info['fallback_plain_prompt']} without a subgraph (plain "
              f"prompt), {info['evidence_dropped']} training items given the plain prompt (evidence dropout), "
              f"{info['mean_nodes']} nodes and {info['mean_evidence_lines']} evidence lines on average")
    else:
        graph = GraphInputs(files=files, lr_groups=lr_groups)
    summary = train_sft(model, tok, train_items, dev_items, train_cfg, run_dir, graph=graph, dev_settings=dev_settings)
    if not summary.get("main_process", True):  # another DDP rank: the main process saves and reports
        del model, tok, graph, ctx
        release_memory()
        return summary
    from data.fileio import atomic_write_text

    atomic_write_text(run_dir / TRAIN_SUMMARY, json.dumps(summary, indent=2) + "\n")
    print(
        f"trained {summary['global_step']} steps in {summary['train_seconds']:.0f}s "
        f"({summary['tokens_seen'] / max(summary['train_seconds'], 1e-9):.0f} tokens/s); "
        f"chosen {summary['chosen_checkpoint']}"
    )
    del model, tok, graph, ctx
    release_memory()  # the next phase (the graph model, the evaluation) starts from the memory of a fresh process
    return summary


if __name__ == "__main__":
    sys.exit(main())
