"""The study's future-work ablations, as config overrides of `python -m training.run` (never forked code).

Each cell of a grid is one run directory, runs/ablate-<grid>/<cell>, made by running `python -m
training.run` in a subprocess with the cell's flags and `--graph.train_baseline false` (the LoRA
baseline is a cell of its own). The plain cell trains nothing: it is `python -m evaluation.run
--systems plain` on a finished cell's run (its model and data settings). Every cell is evaluated with the
same settings (the preset's eval section and --set eval.*), and every training cell gets the same
training settings: the preset's `mode_overrides` for the graph mode are passed to all cells as flags, so
the lora cell trains on the same items with the same schedule as the graph cells.

Axes (vary one at a time from the graph default, or --cross for the product of the chosen axes):
  prompt         graph prompt none / text / soft / both: lora, graph-text, graph with
                 --graph.text_evidence false, graph
  hops           --kg.hops 1 / 2 / 3
  pcst           --kg.pcst true / false
  gnn            --graph.gnn gat / transformer / gcn
  pooling        --graph.pooling attention / mean
  adapter        --adapter vs LoRA
  lora_r         --model.lora_r 8 / 16 / 32 / 64 with lora_alpha = 2r, varied on the lora cell (the study's
                 LoRA; its cells differ from the lora cell in rank only)
  prompt_tuning  --prompt-tuning
The baseline cells plain and lora are in every grid (--no-baselines drops them); paired differences
in the summary are against the lora cell.

Resumable: a cell whose eval/metrics.json exists is skipped; a cell with checkpoints (or a trained
adapter) but no metrics is continued with `--resume --run_dir`; a failed cell is recorded (the tail of its
stderr in <cell>/ablate_error.txt) and the grid goes on; running the same command again retries it.
A cell directory made with other flags is refused, not mixed in. The plain answers are the same in every
cell (same model, prompt and decoding), so once one cell has generated them the others start from a copy
of them (the evaluation's own prediction cache; --no-share-plain generates them in every cell).
At the end: runs/ablate-<grid>/summary.{md,csv,json,html} (evaluation.ablation).

    .venv/bin/python scripts/ablate.py --dry-run                      # the cells and their exact commands
    .venv/bin/python scripts/ablate.py                                # the future-work grid, one factor at a time
    .venv/bin/python scripts/ablate.py --axes hops,pcst --cross       # 3 x 2 retrieval cells (+ plain, lora)
    .venv/bin/python scripts/ablate.py --grid prompt --set train.train_limit=64 --set eval.sample=12
    .venv/bin/python scripts/ablate.py --summary-only                 # rebuild the summary from the cells on disk
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from evaluation.ablation import ERROR_FILE, STDERR_LOG, STDOUT_LOG  # noqa: E402
from model.modes import MODES, PLAIN  # noqa: E402
from model.rundir import ADAPTER_DIR, CONFIG, EVAL_DIR, METRICS, has_checkpoints  # noqa: E402

log = logging.getLogger("ablate")

CELL_FILE = "ablate_cell.json"
# from the mode table (model.modes): a cell's mode is a mode name, or "plain" (the untrained base model)
MODE_FLAGS = {m.name: [m.flag] if m.flag else [] for m in MODES.values()}
SYSTEM_OF = {PLAIN: PLAIN} | {m.name: m.system for m in MODES.values()}
ALL_MODES = tuple(MODES)
GRAPH_MODES = tuple(m.name for m in MODES.values() if m.reads_graph)
GNN_MODES = tuple(m.name for m in MODES.values() if m.gnn is not None)
SOFT_TOKEN_MODES = tuple(m.name for m in MODES.values() if m.soft_tokens)
LORA_MODES = tuple(m.name for m in MODES.values() if m.lora is not None)
# eval fields that name where things are, not how answers are made: never set per grid
EVAL_PLACE_FIELDS = ("run_dir", "runs", "systems", "out_dir")
ERROR_TAIL_CHARS = 6000


@dataclass(frozen=True)
class Setting:
    """One value of an axis: a token for cell names, the mode it selects (None: keep the base's) and overrides."""

    token: str
    mode: str | None = None
    overrides: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class Axis:
    name: str
    help: str
    settings: tuple[Setting, ...]
    applies: tuple[str, ...]
    """Modes in which the axis means something (in --cross it is dropped elsewhere: hops of a lora run)."""
    base: str = "graph"
    """The cell a one-factor variation starts from."""

    @property
    def sets_mode(self) -> bool:
        return any(s.mode for s in self.settings)


def _values(key: str, values, token) -> tuple[Setting, ...]:
    return tuple(Setting(token(v), None, ((key, v),)) for v in values)


AXES: dict[str, Axis] = {a.name: a for a in (
    Axis("prompt", "graph prompt none / text / soft / both",
         (Setting("lora", "lora"), Setting("graph-text", "graph-text"),
          Setting("graph-soft", "graph", (("graph.text_evidence", False),)), Setting("graph", "graph")), ALL_MODES),
    Axis("hops", "neighbourhood radius --kg.hops 1-3",
         _values("kg.hops", (1, 2, 3), lambda v: f"hops-{v}"), GRAPH_MODES),
    Axis("pcst", "PCST pruning on / off (--kg.pcst)",
         _values("kg.pcst", (True, False), lambda v: "pcst-on" if v else "pcst-off"), GRAPH_MODES),
    Axis("gnn", "GNN type --graph.gnn gat / transformer / gcn",
         _values("graph.gnn", ("gat", "transformer", "gcn"), lambda v: f"gnn-{v}"), GNN_MODES),
    Axis("pooling", "soft-token pooling --graph.pooling attention / mean",
         _values("graph.pooling", ("attention", "mean"), lambda v: f"pooling-{v}"), SOFT_TOKEN_MODES),
    Axis("adapter", "graph-conditioned adapter vs LoRA (--adapter)",
         (Setting("lora", "lora"), Setting("adapter", "adapter")),
         ALL_MODES),
    Axis("lora_r", "LoRA rank --model.lora_r 8/16/32/64, lora_alpha = 2r",
         tuple(Setting(f"lora-r{r}", None,
                       (("model.lora_r", r), ("model.lora_alpha", 2 * r))) for r in (8, 16, 32, 64)),
         LORA_MODES, base="lora"),
    Axis("prompt_tuning", "peft prompt tuning (--prompt-tuning)",
         (Setting("prompt-tuning", "prompt-tuning"),), ALL_MODES),
)}
GRIDS = {
    "future-work": ("prompt", "hops", "pcst", "gnn", "pooling", "adapter", "lora_r", "prompt_tuning"),
    "prompt": ("prompt",),
    "retrieval": ("hops", "pcst"),
    "encoder": ("gnn", "pooling"),
    "efficiency": ("adapter", "lora_r", "prompt_tuning"),
}


@dataclass
class Cell:
    name: str
    mode: str  # plain, or a mode of model.modes
    overrides: dict = field(default_factory=dict)  # the cell's own settings, "section.field" -> value
    flags: list[str] = field(default_factory=list)  # everything after `-m training.run` but --run_dir / --resume
    dir: Path | None = None

    @property
    def system(self) -> str:
        return SYSTEM_OF[self.mode]

    @property
    def key(self) -> tuple:
        return self.mode, tuple(sorted((k, repr(v)) for k, v in self.overrides.items()))


class GridError(ValueError):
    """The grid's options do not make a valid set of cells."""


def flag_value(value) -> list[str]:
    if value is True or value is False:
        return ["true" if value else "false"]
    if value is None:
        return ["none"]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def flags_of(overrides: dict) -> list[str]:
    out: list[str] = []
    for key, value in overrides.items():
        out += [f"--{key}", *flag_value(value)]
    return out


def parse_sets(pairs: list[str]) -> dict:
    """--set section.field=value (repeatable) -> {"section.field": typed value}, typed and checked by
    training.run's own parser (commas separate the items of a list field)."""
    from training.run import build_parser

    parser = build_parser()
    kinds = {a.dest: a for a in parser._actions if "." in (a.dest or "")}
    tokens, problems, keys = [], [], []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().lstrip("-")
        if not sep:
            problems.append(f"--set {pair!r}: expected section.field=value")
        elif key not in kinds:
            problems.append(f"--set {key}: no such field (sections data, model, graph, kg, store, train, eval; "
                            "see `python -m training.run --help`)")
        elif key.startswith("eval.") and key.split(".", 1)[1] in EVAL_PLACE_FIELDS:
            problems.append(f"--set {key}: the grid decides where each cell's evaluation lives")
        elif key in ("graph.mode", "train.run_dir", "train.resume", "graph.train_baseline"):
            problems.append(f"--set {key}: the grid sets this for each cell")
        else:
            keys.append(key)
            tokens += [f"--{key}", *(raw.split(",") if kinds[key].nargs == "+" else [raw])]
    if problems:
        raise GridError("\n  - ".join(["invalid --set:"] + problems))
    try:
        args = parser.parse_args(tokens)
    except SystemExit:
        raise GridError(f"invalid --set value in {' '.join(pairs)} (see the message above)") from None
    return {k: getattr(args, k) for k in keys}


def resolve_settings(preset: str, flags: list[str]) -> dict:
    """Every field ("section.field" -> value) of the configs training.run would build from these flags."""
    from training.run import build_configs, build_parser

    args = build_parser().parse_args(["--preset", preset, *flags])
    cfgs = build_configs(args)

    def flat(prefix: str, d: dict) -> dict:
        out = {}
        for k, v in d.items():
            out.update(flat(f"{prefix}.{k}", v) if isinstance(v, dict) and k == "judge" else {f"{prefix}.{k}": v})
        return out

    return {k: v for sec, cfg in cfgs.items() for k, v in flat(sec, asdict(cfg)).items()}


def preset_data(preset: str) -> dict:
    from data.cli import load_preset
    from training.run import resolve_preset

    return load_preset(resolve_preset(preset))


def common_overrides(preset: str, sets: dict) -> dict:
    """Settings every training cell gets: the preset's mode_overrides for graph (the grid's centre), then --set."""
    centre = (preset_data(preset).get("mode_overrides") or {}).get("graph") or {}
    out = {f"{sec}.{k}": v for sec, values in centre.items() for k, v in (values or {}).items()}
    return out | sets


def eval_settings(preset: str, sets: dict) -> dict:
    """The evaluation settings shared by every cell (preset eval section, then --set eval.*)."""
    from evaluation.config import upgrade_eval_section

    section = upgrade_eval_section(preset_data(preset).get("eval") or {})
    section |= {f"judge.{k}": v for k, v in (section.pop("judge", None) or {}).items()}  # evaluation.run's flags
    section.update({k.split(".", 1)[1]: v for k, v in sets.items() if k.startswith("eval.")})
    return {k: v for k, v in section.items() if k not in EVAL_PLACE_FIELDS}


def expand(axes: list[str], cross: bool = False, baselines: bool = True, defaults: dict | None = None) -> list[Cell]:
    """The grid's cells (name, mode, non-default overrides), deduplicated: a variation equal to another cell
    (hops 2 when the default is 2; rank 32 with alpha 64 on the lora cell) is that cell."""
    defaults = defaults or {}
    unknown = [a for a in axes if a not in AXES]
    if unknown:
        raise GridError(f"unknown axis(es) {unknown}; known: {', '.join(AXES)}")
    if cross and sum(AXES[a].sets_mode for a in axes) > 1:
        raise GridError(f"--cross cannot combine {[a for a in axes if AXES[a].sets_mode]}: each of them chooses the "
                        "mode")
    cells: list[Cell] = []
    seen: dict[tuple, str] = {}

    def add(name: str, mode: str, overrides: dict) -> None:
        kept = {k: v for k, v in overrides.items() if not (k in defaults and defaults[k] == v)}
        cell = Cell(name, mode, kept)
        if cell.key in seen:
            return
        if any(c.name == name for c in cells):
            raise GridError(f"two different cells would both be named {name!r}")
        seen[cell.key] = name
        cells.append(cell)

    if baselines:
        add("lora", "lora", {})
    if cross:
        for combo in itertools.product(*(AXES[a].settings for a in axes)):
            mode = next((s.mode for s in combo if s.mode), "graph")
            used = [(a, s) for a, s in zip(axes, combo) if mode in AXES[a].applies]
            overrides = {k: v for _, s in used for k, v in s.overrides}
            add("_".join(s.token for _, s in used), mode, overrides)
    else:
        add("graph", "graph", {})
        for a in axes:
            axis = AXES[a]
            for s in axis.settings:
                mode = s.mode or axis.base
                add(s.token, mode, dict(s.overrides))
    if baselines:
        cells.append(Cell("plain", "plain", {}))
    return cells


@dataclass
class Grid:
    name: str
    out: Path
    preset: str
    cells: list[Cell]
    fixed: dict  # overrides every training cell gets
    eval: dict  # evaluation settings of every cell
    python: str = sys.executable

    def training_flags(self, cell: Cell) -> list[str]:
        overrides = self.fixed | cell.overrides | {"graph.train_baseline": False}
        return ["--preset", self.preset, *MODE_FLAGS[cell.mode], *flags_of(overrides)]

    def plain_flags(self) -> list[str]:
        return ["--systems", "plain", *flags_of(self.eval)]

    def command(self, cell: Cell, resume: bool = False, source: Path | None = None) -> list[str]:
        if cell.mode == "plain":
            src = source or Path("<a finished training cell>")
            return [self.python, "-m", "evaluation.run", "--run_dir", str(src), *cell.flags, "--out_dir",
                    str(cell.dir / EVAL_DIR)]
        return [self.python, "-m", "training.run", *cell.flags, "--run_dir", str(cell.dir),
                *(["--resume"] if resume else [])]


def build_grid(grid: str, axes: list[str] | None, cross: bool, sets: list[str], preset: str, out: str | None,
               cells: list[str] | None = None, baselines: bool = True) -> Grid:
    if grid not in GRIDS:
        raise GridError(f"unknown grid {grid!r}; known: {', '.join(GRIDS)}")
    typed = parse_sets(sets)
    fixed = common_overrides(preset, typed)
    base_mode = (preset_data(preset).get("graph") or {}).get("mode", "lora")
    if base_mode != "lora":
        raise GridError(f"preset {preset} sets graph.mode {base_mode!r}; a grid needs a preset whose mode is lora (the "
                        "default)")
    defaults = resolve_settings(preset, ["--graph-prompt", *flags_of(fixed)])
    expanded = expand(list(axes or GRIDS[grid]), cross, baselines, defaults)
    if cells:
        names = {c.name for c in expanded}
        missing = [c for c in cells if c not in names]
        if missing:
            raise GridError(f"--cells {missing} not in the grid; its cells: {', '.join(c.name for c in expanded)}")
        expanded = [c for c in expanded if c.name in cells]
    g = Grid(grid, Path(out or f"runs/ablate-{grid}"), preset, expanded, fixed, eval_settings(preset, typed))
    problems = []
    for c in g.cells:
        c.dir = g.out / c.name
        c.flags = g.plain_flags() if c.mode == "plain" else g.training_flags(c)
        if c.mode != "plain":
            try:  # the configs training.run will build, checked now rather than after hours of other cells
                resolve_settings(preset, c.flags[2:])
            except (ValueError, SystemExit) as exc:
                problems.append(f"{c.name}: {exc}")
    if problems:
        raise GridError("cells with invalid settings:\n  - " + "\n  - ".join(problems))
    return g


# ---- running -------------------------------------------------------------------------------------------

def has_metrics(cell: Cell) -> bool:
    return (cell.dir / EVAL_DIR / METRICS).exists()


def has_training_state(cell: Cell) -> bool:
    return has_checkpoints(cell.dir) or (cell.dir / ADAPTER_DIR).is_dir()


def recorded_flags(cell: Cell) -> list[str] | None:
    path = cell.dir / CELL_FILE
    try:
        return json.loads(path.read_text()).get("flags")
    except (OSError, json.JSONDecodeError):
        return None


def check_cell_dirs(grid: Grid) -> None:
    """A cell directory made with other flags (another preset, other --set) would be skipped or resumed as if it
    were this cell: refuse before running anything."""
    clashes = []
    for c in grid.cells:
        before = recorded_flags(c)
        if before is not None and before != c.flags:
            clashes.append(f"{c.dir}: made with {shlex.join(before)}\n      now     {shlex.join(c.flags)}")
    if clashes:
        raise GridError("cell directories made with other flags (use another --out, or delete them):\n  - "
                        + "\n  - ".join(clashes))


def plan(cell: Cell) -> str:
    """What running the grid would do with this cell now: skip, resume or run."""
    if has_metrics(cell):
        return "skip"
    if cell.mode != "plain" and has_training_state(cell):
        return "resume"
    return "run"


def plain_source(grid: Grid) -> Path | None:
    """A finished training cell whose saved config gives the plain cell its model, data and prompt style."""
    for c in grid.cells:
        if c.mode != PLAIN and has_metrics(c) and (c.dir / CONFIG).exists():
            return c.dir
    return None


def seed_plain_answers(grid: Grid, cell: Cell) -> Path | None:
    """Copy the plain answers another cell generated into this cell's prediction cache (same model, prompt and
    decoding in every cell, so they are the answers this cell would generate)."""
    target = cell.dir / EVAL_DIR / "predictions" / f"{PLAIN}.jsonl"
    if target.exists():
        return None
    for other in grid.cells:
        src = other.dir / EVAL_DIR / "predictions" / f"{PLAIN}.jsonl"
        if other is not cell and has_metrics(other) and src.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
            log.info("%s: plain answers copied from %s", cell.name, other.name)
            return src
    return None


def write_record(cell: Cell, **extra) -> None:
    path = cell.dir / CELL_FILE
    record = {}
    if path.exists():
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError:
            record = {}
    record.update({"name": cell.name, "mode": cell.mode, "system": cell.system,
                   "overrides": cell.overrides, "flags": cell.flags})
    attempts = record.get("attempts", [])
    if extra:
        attempts.append(extra)
    record["attempts"] = attempts
    cell.dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")


def run_cell(grid: Grid, cell: Cell, share_plain: bool = True, env: dict | None = None) -> dict:
    """Run (or resume) one cell in a subprocess; returns {status, wall_seconds, command}."""
    action = plan(cell)
    if action == "skip":
        log.info("%s: eval/metrics.json exists, skipped", cell.name)
        return {"status": "done", "wall_seconds": None, "command": None}
    cell.dir.mkdir(parents=True, exist_ok=True)
    source = None
    if cell.mode == "plain":
        source = plain_source(grid)
        if source is None:
            msg = ("no finished training cell to take the model, data and prompt settings from (the plain cell runs "
                   "after one)")
            (cell.dir / ERROR_FILE).write_text(f"{msg}\n")
            write_record(cell, status="failed", error=msg, at=time.strftime("%Y-%m-%d %H:%M:%S"))
            log.error("%s: %s", cell.name, msg)
            return {"status": "failed", "wall_seconds": None, "command": None}
    if share_plain:
        seed_plain_answers(grid, cell)
    cmd = grid.command(cell, resume=action == "resume", source=source)
    write_record(cell)  # the flags are on disk before anything else is, so a killed run is checked on its return
    log.info("%s: %s (%s)", cell.name, "resuming" if action == "resume" else "running", shlex.join(cmd))
    child_env = dict(os.environ if env is None else env, PYTHONUNBUFFERED="1")
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), child_env.get("PYTHONPATH")) if p)
    t0 = time.time()
    header = f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(cmd)}\n"
    with open(cell.dir / STDOUT_LOG, "a", encoding="utf-8") as out, open(cell.dir / STDERR_LOG, "a",
                                                                         encoding="utf-8") as err:
        out.write(header)
        err.write(header)
        out.flush()
        err.flush()
        err_start = err.tell()
        rc = subprocess.run(cmd, stdout=out, stderr=err, env=child_env).returncode
    wall = time.time() - t0
    status = ("resumed" if action == "resume" else "trained") if rc == 0 and has_metrics(cell) else "failed"
    if status == "failed":
        with open(cell.dir / STDERR_LOG, "rb") as fh:
            fh.seek(err_start)
            tail = fh.read().decode("utf-8", errors="replace")[-ERROR_TAIL_CHARS:]
        reason = f"exit code {rc}" if rc else "exited 0 but wrote no eval/metrics.json"
        (cell.dir / ERROR_FILE).write_text(f"{reason}: {shlex.join(cmd)}\n--- stderr (tail) ---\n{tail}")
        log.error("%s: failed (%s); stderr tail in %s", cell.name, reason, cell.dir / ERROR_FILE)
    else:
        (cell.dir / ERROR_FILE).unlink(missing_ok=True)
        log.info("%s: %s in %.0fs", cell.name, status, wall)
    write_record(cell, status=status, returncode=rc, wall_seconds=round(wall, 1), command=cmd,
                 at=time.strftime("%Y-%m-%d %H:%M:%S"))
    return {"status": status, "wall_seconds": wall, "command": cmd}


def run_order(cells: list[Cell]) -> list[Cell]:
    """lora first (the reference, and the first to generate the shared plain answers), plain last (it needs a
    finished training cell)."""
    return sorted(cells, key=lambda c: (c.mode == "plain", c.name != "lora"))


def run_grid(grid: Grid, share_plain: bool = True, progress: bool = True, env: dict | None = None) -> dict[str, dict]:
    check_cell_dirs(grid)
    results: dict[str, dict] = {}
    order = run_order(grid.cells)
    if progress:
        from tqdm.auto import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm():
            bar = tqdm(order, desc=f"ablate-{grid.name}", unit="cell")
            for cell in bar:
                bar.set_postfix_str(cell.name)
                results[cell.name] = run_cell(grid, cell, share_plain, env)
    else:
        for cell in order:
            results[cell.name] = run_cell(grid, cell, share_plain, env)
    return results


def summarise(grid: Grid, results: dict[str, dict] | None = None, progress: bool = True) -> dict:
    from evaluation.ablation import build_summary, write_summary

    results = results or {}
    cells = [{"name": c.name, "dir": str(c.dir), "mode": c.mode, "system": c.system, "overrides": c.overrides,
              **{k: results.get(c.name, {}).get(k) for k in ("status", "wall_seconds")}} for c in grid.cells]
    meta = {"grid": grid.name, "preset": grid.preset, "fixed_overrides": grid.fixed, "eval": grid.eval,
            "commands": {c.name: shlex.join(grid.command(c, source=plain_source(grid))) for c in grid.cells}}
    summary = build_summary(cells, reference="lora", meta=meta, progress=progress)
    summary["paths"] = {k: str(v) for k, v in write_summary(summary, grid.out).items()}
    return summary


def build_arg_parser() -> argparse.ArgumentParser:
    from data.cli import ArgumentParser

    p = ArgumentParser(prog="python scripts/ablate.py", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("--grid", default="future-work", help=f"named grid: {', '.join(GRIDS)} (default: future-work)")
    p.add_argument("--axes", help=f"comma-separated axes instead of the grid's: {', '.join(AXES)}")
    p.add_argument("--cross", action="store_true",
                   help="the product of the chosen axes instead of one factor at a time")
    p.add_argument("--cells", help="run only these cells (comma-separated names, as --dry-run lists them)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="a fixed override for every cell, e.g. --set train.train_limit=64 (repeatable)")
    p.add_argument("--preset", default="cpu", help="training.run preset for every cell (default: cpu)")
    p.add_argument("--out", help="grid directory (default: runs/ablate-<grid>)")
    p.add_argument("--no-baselines", action="store_true", help="leave out the plain and lora cells")
    p.add_argument("--no-share-plain", action="store_true", help="generate the plain answers in every cell")
    p.add_argument("--dry-run", action="store_true", help="print the cells and their exact commands; run nothing")
    p.add_argument("--summary-only", action="store_true", help="only rebuild the summary from the cell directories")
    return p


def split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def main(argv: list[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        grid = build_grid(args.grid, split(args.axes), args.cross, args.sets, args.preset, args.out, split(args.cells),
                          not args.no_baselines)
        if args.dry_run:
            check_cell_dirs(grid)
            print(f"grid {grid.name}: {len(grid.cells)} cells in {grid.out} (preset {grid.preset})")
            print(f"every training cell: {' '.join(flags_of(grid.fixed)) or '(preset settings)'} "
                  "--graph.train_baseline false")
            print(f"every evaluation: {' '.join(flags_of(grid.eval)) or '(defaults)'}")
            for c in run_order(grid.cells):
                action = plan(c)
                print(f"\n[{c.name}] mode {c.mode}, overrides: {' '.join(flags_of(c.overrides)) or '(none)'}; would "
                      f"{action}")
                print("  " + shlex.join(grid.command(c, resume=action == "resume", source=plain_source(grid))))
            return 0
        grid.out.mkdir(parents=True, exist_ok=True)
        (grid.out / "grid.json").write_text(json.dumps(
            {"grid": grid.name, "preset": grid.preset, "argv": sys.argv[1:] if argv is None else argv,
             "fixed_overrides": grid.fixed, "eval": grid.eval,
             "cells": {c.name: {"mode": c.mode, "overrides": c.overrides, "flags": c.flags} for c in grid.cells}},
            indent=2, default=str) + "\n")
        results = {} if args.summary_only else run_grid(grid, share_plain=not args.no_share_plain)
    except ValueError as exc:  # GridError, and the configs' own checks (a missing preset, a bad value)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to resume (finished cells are skipped)", file=sys.stderr)
        return 130
    summary = summarise(grid, results)
    print()
    print(Path(summary["paths"]["md"]).read_text())
    print(f"summary: {', '.join(summary['paths'].values())}")
    failed = [r["name"] for r in summary["cells"] if r["status"] not in ("done", "trained", "resumed")]
    if failed:
        print(f"{len(failed)} cell(s) not finished: {', '.join(failed)} (rerun the same command to retry them)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
