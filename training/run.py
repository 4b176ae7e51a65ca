"""`python -m training.run`: prepare data, fine-tune with QLoRA (or a graph mode), pick a checkpoint, evaluate.

Modes: the study's LoRA (default); --graph-prompt (soft graph tokens + textual evidence, with LoRA);
--graph-text-only; --adapter (graph-conditioned adapter, base frozen); --prompt-tuning. A graph-family
run also trains the plain LoRA baseline on the same items, so the closing table shows plain vs
fine-tuned vs the mode. Configuration: a YAML preset (--preset cpu | study_llama2_7b | PATH) overridden
by flags named --<section>.<field> (sections data, model, graph, kg, store, train, eval).
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

    p = argparse.ArgumentParser(prog="python -m training.run", description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu", help="preset name in training/presets or a YAML path (default: cpu)")
    p.add_argument("--resume", action="store_true", help="continue --train.run_dir (or --run_dir) from its last checkpoint")
    p.add_argument("--run_dir", help="shorthand for --train.run_dir")
    p.add_argument("--no_eval", action="store_true", help="train only; skip the closing evaluation")
    modes = p.add_mutually_exclusive_group()
    modes.add_argument("--graph-prompt", dest="mode", action="store_const", const="graph",
                       help="graph prompting: GNN soft tokens after BOS + numbered evidence, with LoRA (--graph.mode graph)")
    modes.add_argument("--graph-text-only", dest="mode", action="store_const", const="graph-text",
                       help="numbered graph evidence in the prompt, LoRA, no GNN (--graph.mode graph-text)")
    modes.add_argument("--adapter", dest="mode", action="store_const", const="adapter",
                       help="graph-conditioned zero-gated adapter in the top layers, base frozen (--graph.mode adapter)")
    modes.add_argument("--prompt-tuning", dest="mode", action="store_const", const="prompt-tuning",
                       help="peft prompt tuning, base frozen (--graph.mode prompt-tuning)")
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


def build_configs(args: argparse.Namespace):
    """{section: config} (eval as a dict) from the preset (or a resumed run's config) and flags."""
    from data.cli import dataclass_from_args, load_preset

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
    if getattr(args, "mode", None):
        base.setdefault("graph", {})["mode"] = args.mode
    mode = (base.get("graph") or {}).get("mode", "lora")
    for section, values in ((base.pop("mode_overrides", None) or {}).get(mode) or {}).items():
        base.setdefault(section, {}).update(values)  # a preset's settings for one mode (keeps a CPU run short)
    cfgs = {name: dataclass_from_args(cls, args, name, base.get(name)) for name, cls in config_sections() if name != "eval"}
    eval_section = dict(base.get("eval") or {})
    eval_section.update({k.split(".", 1)[1]: v for k, v in vars(args).items() if k.startswith("eval.")})
    cfgs["eval"] = eval_section
    return cfgs


def is_main_process() -> bool:
    """False in the other processes of a distributed launch (accelerate launch, torchrun)."""
    import os

    return os.environ.get("RANK", "0") == "0"


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
    from model.resolve import resolve_model

    cfgs = build_configs(args)
    model_cfg, train_cfg, gcfg = cfgs["model"], cfgs["train"], cfgs["graph"]
    run_dir = Path(train_cfg.run_dir or f"runs/{time.strftime('%Y%m%d-%H%M%S')}")
    train_cfg.run_dir = str(run_dir)
    with_baseline = gcfg.mode == "lora" or gcfg.train_baseline
    systems = list(dict.fromkeys(["plain"] + (["finetuned"] if with_baseline else []) + [gcfg.system]))
    eval_section = {"systems": systems, **cfgs["eval"], "run_dir": str(run_dir)}
    eval_cfg = EvalConfig(**eval_section)
    from dataclasses import replace

    # dev answers are decoded as the evaluation will decode them, within the dev budget
    dev_settings = replace(eval_cfg.generation_settings(), max_new_tokens=train_cfg.dev_max_new_tokens,
                           batch_size=train_cfg.dev_batch_size)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {name: asdict(c) for name, c in cfgs.items() if name != "eval"} | {"eval": asdict(eval_cfg)}
    config["store"]["password"] = None  # never written to disk; taken from the flag or $NEO4J_PASSWORD again
    config_path = run_dir / "config.json"
    if not train_cfg.resume or not config_path.exists():
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (run_dir / "run_info.json").write_text(json.dumps(run_info() | {"seed": train_cfg.seed}, indent=2) + "\n")

    if train_cfg.num_threads:
        torch.set_num_threads(train_cfg.num_threads)

    t0 = time.time()
    resolve_model(model_cfg.name, model_cfg.cache_dir)  # fail fast on a model that is not here
    prepared = prepare(cfgs["data"])
    train_items = prepared.splits.train
    if train_cfg.train_limit and train_cfg.train_limit < len(train_items):
        train_items = carve_stratified(train_items, train_cfg.train_limit, train_cfg.seed)[1]
    print(f"data: {len(train_items)} training items, {len(prepared.splits.dev)} dev, {len(prepared.splits.eval)} eval ({prepared.out_dir})")
    print(f"mode: {gcfg.mode} ({MODE_HELP[gcfg.mode]})")

    if gcfg.mode != "lora" and gcfg.train_baseline:
        base_dir = run_dir / "systems" / "finetuned"
        if (base_dir / "adapter" / "adapter_model.safetensors").exists():
            print(f"baseline LoRA run already trained: {base_dir}")
        else:
            print(f"training the plain LoRA baseline (the finetuned system) in {base_dir}")
            from model.graph_config import GraphPromptConfig

            base_train = replace(train_cfg, run_dir=str(base_dir), resume=train_cfg.resume and base_dir.exists())
            base_cfgs = dict(cfgs) | {"train": base_train, "graph": GraphPromptConfig(mode="lora")}
            base_dir.mkdir(parents=True, exist_ok=True)
            (base_dir / "config.json").write_text(json.dumps(
                {n: asdict(c) for n, c in base_cfgs.items() if n != "eval"} | {"eval": asdict(eval_cfg)} | {"store": config["store"]},
                indent=2, sort_keys=True) + "\n")
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
    print(f"evaluation: {result.out_dir} (predictions.jsonl, metrics.json, report.md, report.html); total {time.time() - t0:.0f}s")
    return 0


MODE_HELP = {
    "lora": "the study's QLoRA", "graph": "soft graph tokens + textual evidence", "graph-text": "textual graph evidence + LoRA",
    "adapter": "graph-conditioned adapter, base frozen", "prompt-tuning": "prompt tuning, base frozen",
}


def train_one(cfgs: dict, train_items, dev_items, run_dir: Path, dev_settings=None) -> dict:
    """Load the base model, make it what the mode trains, gather graph inputs, train, and save."""
    import torch

    from model.graph_adapter import llama2_7b_report
    from model.load import load_model, trainable_report
    from model.memory import release_memory
    from training.modes import build_for_mode, evidence_dropout, graph_inputs
    from training.sft import GraphInputs, train_sft

    model_cfg, train_cfg, gcfg = cfgs["model"], cfgs["train"], cfgs["graph"]
    torch.manual_seed(train_cfg.seed)
    graph, ctx = None, None
    if gcfg.uses_graph:
        from prompting.graph_prompt import GraphContext

        ctx = GraphContext(cfgs["kg"], cfgs["store"]).open()
        print(f"concept graph: {len(ctx.index.ids)} concepts, {len(ctx.index.edge_src)} triples")
    model, tok = load_model(model_cfg)
    model, lr_groups, files = build_for_mode(model, tok, model_cfg, gcfg, ctx.node_dim if ctx else 384)
    print(trainable_report(model))
    if gcfg.mode in ("graph", "adapter"):
        print(llama2_7b_report(gcfg))
    if ctx is not None:
        dropped = evidence_dropout(train_items, gcfg.evidence_dropout, train_cfg.seed)
        graph, info = graph_inputs(ctx, list(train_items) + list(dev_items[: train_cfg.dev_limit]), gcfg, files,
                                   lr_groups, dropped)
        print(f"graph inputs: {info['items']} questions, {info['fallback_plain_prompt']} without a subgraph (plain prompt), "
              f"{info['evidence_dropped']} training items given the plain prompt (evidence dropout), "
              f"{info['mean_nodes']} nodes and {info['mean_evidence_lines']} evidence lines on average")
    elif lr_groups:
        graph = GraphInputs(files=files, lr_groups=lr_groups)
    summary = train_sft(model, tok, train_items, dev_items, train_cfg, run_dir, graph=graph, dev_settings=dev_settings)
    if not summary.get("main_process", True):  # another DDP rank: the main process saves and reports
        del model, tok, graph, ctx
        release_memory()
        return summary
    (run_dir / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"trained {summary['global_step']} steps in {summary['train_seconds']:.0f}s "
        f"({summary['tokens_seen'] / max(summary['train_seconds'], 1e-9):.0f} tokens/s); chosen {summary['chosen_checkpoint']}"
    )
    del model, tok, graph, ctx
    release_memory()  # the next phase (the graph model, the evaluation) starts from the memory of a fresh process
    return summary


if __name__ == "__main__":
    sys.exit(main())
