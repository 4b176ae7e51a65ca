"""RunDir: a training run's directory, read one way by every reader (evaluation, ask, serve, the ablation
grid, `training.run --resume`).

A run directory holds config.json (the resolved config of every stage), run_info.json, checkpoints/, the
chosen checkpoint's trainable weights in adapter/ (files per mode: model.modes), logs/, dev_scores.json,
train_summary.json, eval/ (predictions, metrics, reports) and, for a graph-family run, its LoRA baseline's
own run directory in systems/finetuned. `RunDir.open` reads config.json into the typed configs of the stages
below training (data, model, graph, kg, store); the train and eval sections stay validated dicts (their
config classes live in training/ and evaluation/, above this package) that the caller may type with
`typed(name, cls)`.

It also knows what a run's state is before anything is written to it (`run_state`): empty, started (a
config or checkpoints, not finished) or finished (train_summary.json, or adapter/ with eval/metrics.json).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from data.cli import dataclass_from_args
from data.config import DataConfig
from kg.config import KGConfig
from kg.store import StoreConfig
from model.config import ModelConfig
from model.graph_config import GraphPromptConfig
from model.weight_files import check_weights

CONFIG = "config.json"
RUN_INFO = "run_info.json"
TRAIN_SUMMARY = "train_summary.json"
DEV_SCORES = "dev_scores.json"
ADAPTER_DIR = "adapter"
CHECKPOINTS = "checkpoints"
LOGS = "logs"
EVAL_DIR = "eval"
METRICS = "metrics.json"
SYSTEMS_DIR = "systems"
# everything training.run writes into a run directory (what --overwrite clears; other files are left alone)
OUTPUTS = (CONFIG, RUN_INFO, TRAIN_SUMMARY, DEV_SCORES, ADAPTER_DIR, "adapter.tmp", CHECKPOINTS, LOGS, EVAL_DIR,
           SYSTEMS_DIR)
TYPED_SECTIONS = (("data", DataConfig), ("model", ModelConfig), ("graph", GraphPromptConfig), ("kg", KGConfig),
                  ("store", StoreConfig))


class RunDirError(ValueError):
    """A run directory that cannot be read or used as asked: missing, a file, a broken config.json."""


def refuse_file(path: str | Path, what: str = "a run directory") -> Path:
    """`path` as a Path; RunDirError when something other than a folder is there."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise RunDirError(f"{p} is a file, not {what}: give a folder (it is created when missing), or move the file "
                          "aside.")
    return p


def run_state(path: str | Path) -> str:
    """"empty" (nothing of a run yet), "started" (a config or checkpoints, not finished) or "finished"."""
    p = refuse_file(path)
    if (p / TRAIN_SUMMARY).exists() or ((p / ADAPTER_DIR).is_dir() and (p / EVAL_DIR / METRICS).exists()):
        return "finished"
    if (p / CONFIG).exists() or any((p / CHECKPOINTS).glob("checkpoint-*")) or (p / ADAPTER_DIR).exists():
        return "started"
    return "empty"


def has_checkpoints(path: str | Path) -> bool:
    return any((Path(path) / CHECKPOINTS).glob("checkpoint-*"))


def clear_outputs(path: str | Path) -> list[str]:
    """Remove what training.run wrote into `path` (OUTPUTS), nothing else; returns what was removed."""
    p = Path(path)
    removed = []
    for name in OUTPUTS:
        target = p / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        else:
            continue
        removed.append(name)
    return removed


def read_config(path: str | Path) -> dict:
    """A run's config.json as a dict of sections (RunDirError when missing, corrupt or not a run's)."""
    run = refuse_file(path)
    file = run / CONFIG
    if not run.exists():
        raise RunDirError(f"{run} does not exist: it is not a training run directory.")
    if not file.exists():
        raise RunDirError(f"{file} does not exist: {run} is not a training run directory.")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{file} is corrupt (line {exc.lineno}, column {exc.colno}: {exc.msg}).") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{file} cannot be read ({exc}).") from None
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise RunDirError(f"{file} has no model section; was it written by training.run?")
    bad = [k for k, v in config.items() if not isinstance(v, dict)]
    if bad:
        raise RunDirError(f"{file}: the section(s) {bad} are not mappings; was it written by training.run?")
    return config


@dataclass
class RunDir:
    path: Path
    config: dict = field(repr=False)
    data: DataConfig
    model: ModelConfig
    graph: GraphPromptConfig
    kg: KGConfig
    store: StoreConfig

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        config = read_config(path)
        typed = {}
        for name, section_cls in TYPED_SECTIONS:
            try:
                typed[name] = dataclass_from_args(section_cls, None, base=config.get(name) or {}, where=name)
            except ValueError as exc:
                raise RunDirError(f"{Path(path) / CONFIG}: {exc}") from None
        if not isinstance(config.get("train", {}).get("prompt_style", "study"), str):
            raise RunDirError(f"{Path(path) / CONFIG}: train.prompt_style must be a string")
        return cls(Path(path), config, **typed)

    def typed(self, name: str, cls: type, **overrides):
        """A section as `cls` (e.g. training's TrainConfig), overrides applied; errors name the file."""
        base = {**(self.config.get(name) or {}), **overrides}
        try:
            return dataclass_from_args(cls, None, base=base, where=name)
        except ValueError as exc:
            raise RunDirError(f"{self.path / CONFIG}: {exc}") from None

    # --- what the run is --------------------------------------------------------------------------------
    @property
    def train(self) -> dict:
        return dict(self.config.get("train") or {})

    @property
    def eval(self) -> dict:
        return dict(self.config.get("eval") or {})

    @property
    def mode(self):
        """The run's entry in the mode table (model.modes.Mode)."""
        return self.graph.spec

    @property
    def system(self) -> str:
        return self.mode.system

    @property
    def prompt_style(self) -> str:
        return self.train.get("prompt_style", "study")

    @property
    def eval_file(self) -> Path:
        """The run's own eval split (written by data.prepare into data.out_dir)."""
        return Path(self.data.out_dir) / "eval.jsonl"

    @property
    def adapter_dir(self) -> Path:
        return self.path / ADAPTER_DIR

    @property
    def finished(self) -> bool:
        return run_state(self.path) == "finished"

    # --- the systems it provides ----------------------------------------------------------------------------
    def children(self) -> list["RunDir"]:
        """The run directories inside this one (systems/<system>: a graph run's LoRA baseline)."""
        folder = self.path / SYSTEMS_DIR
        if not folder.is_dir():
            return []
        return [RunDir.open(p) for p in sorted(folder.iterdir()) if (p / CONFIG).exists()]

    def system_runs(self) -> dict[str, "RunDir"]:
        """system -> the run providing it: this run first, then its children."""
        found: dict[str, RunDir] = {}
        for run in [self, *self.children()]:
            found.setdefault(run.system, run)
        return found

    # --- its trained weights --------------------------------------------------------------------------------
    def check_weights(self) -> None:
        """AdapterNotFoundError naming every missing or damaged file of adapter/, before any model is loaded."""
        check_weights(self.adapter_dir, self.mode.files(self.graph))

    def load_trained(self, base, tokenizer):
        """The trained system on a freshly loaded base model (the mode's own loader), ready to generate."""
        self.check_weights()
        return self.mode.load(base, tokenizer, self.adapter_dir, self.graph)


def find_system_runs(run_dir: str | Path | None, extra: list[str] | tuple[str, ...], wanted: list[str]) -> dict:
    """system -> the RunDir that provides it: run_dir first, then `extra` runs, then run_dir's children.
    RunDirError naming every wanted system no run provides, and how to train it."""
    from model.modes import PLAIN, train_command

    runs: list[RunDir] = []
    if run_dir:
        main = RunDir.open(run_dir)
        runs.append(main)
    runs += [RunDir.open(r) for r in extra]
    if run_dir:
        runs += main.children()
    found: dict[str, RunDir] = {}
    for run in runs:
        found.setdefault(run.system, run)
    missing = [s for s in wanted if s != PLAIN and s not in found]
    if missing:
        searched = ", ".join(str(r.path) for r in runs) or "(no run directory given)"
        hints = "; ".join(f"`{train_command(s)}` for {s}" for s in missing)
        raise RunDirError(f"no run provides the system(s) {missing}; searched {searched}. Train one ({hints}) or pass "
                          "--runs.")
    return found
