"""The modes a run can train, each defined once: its name, the evaluation system it provides, its
`training.run` flag and help, what it trains, how it is built on a loaded base model, how it is loaded
from a run directory, the files it saves, and which parts of the concept graph it reads.

Every entry point reads this table: `training.run` (its mode flags and help), `GraphPromptConfig` (valid
modes and what a config uses), `EvalConfig` (valid systems), `evaluation.systems`, `ask`, `serve`,
`scripts/ablate.py` and `scripts/reproduce_study.sh` (through `python -m model.modes`). Adding a mode is one
`register(Mode(...))` plus its model function (see model.builders for the shipped ones).

Light to import: the model functions import torch, peft and PyG only when called.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable

from model import builders
from model.weight_files import ADAPTER_FILES, GRAPH_FILES

PLAIN = "plain"
"""The system every comparison starts from: the base model on the plain prompt (no mode trains it)."""
BASELINE = "lora"
"""The mode whose system (`finetuned`) a graph-family run also trains in <run_dir>/systems/finetuned."""
EVIDENCE = ("on", "off", "never")


@dataclass(frozen=True)
class Mode:
    name: str
    """`--graph.mode` value and the run's `graph.mode` in config.json."""
    system: str
    """The evaluation system a run of this mode provides (`--systems`, predictions, reports)."""
    flag: str | None
    """`training.run` flag selecting the mode (None: the default mode needs none)."""
    summary: str
    """A few words, printed as `mode: NAME (SUMMARY)` by training.run."""
    trains: str
    """What trains on top of the frozen base (the flag's help)."""
    build: Callable[..., tuple[Any, list]]
    """(base, tokenizer, model_cfg, gcfg, node_dim) -> (TrainableLM, [(parameters, learning rate), ...])."""
    load: Callable[..., Any]
    """(base, tokenizer, weights_dir, gcfg) -> the trained model ready to generate."""
    files: Callable[[Any], tuple[str, ...]]
    """gcfg -> the files a complete checkpoint (and the run's adapter/ folder) holds."""
    evidence: str = "never"
    """Numbered textual evidence in the prompt: "on" by default, "off" by default (`--graph.text_evidence true`
    switches it on), or "never"."""
    gnn: Callable[[Any], bool] | None = None
    """gcfg -> whether the run encodes the question's subgraph with a GNN (None: never)."""
    gnn_input: str = ""
    """How the GNN's output reaches the LLM, in words (`ask` says it)."""
    soft_tokens: bool = False
    """The GNN's output enters as soft tokens (the pooling and projector settings apply)."""
    lora: Callable[[Any], bool] | None = None
    """gcfg -> whether the run trains LoRA (None: never; the LoRA rank axis of an ablation applies otherwise)."""
    check: Callable[[Any], list[str]] | None = None
    """gcfg -> problems with the graph settings for this mode (named with every other problem of the config)."""

    def __post_init__(self) -> None:
        if self.evidence not in EVIDENCE:
            raise ValueError(f"mode {self.name!r}: evidence must be one of {EVIDENCE}, got {self.evidence!r}")

    def uses_text(self, gcfg) -> bool:
        if self.evidence == "never":
            return False
        return self.evidence == "on" if gcfg.text_evidence is None else bool(gcfg.text_evidence)

    def uses_gnn(self, gcfg) -> bool:
        return self.gnn is not None and bool(self.gnn(gcfg))

    def uses_lora(self, gcfg) -> bool:
        return self.lora is not None and bool(self.lora(gcfg))

    @property
    def reads_graph(self) -> bool:
        """Whether some configuration of this mode reads the concept graph (evidence or GNN)."""
        return self.evidence != "never" or self.gnn is not None

    def graph_use(self, gcfg) -> str:
        """How a run with these settings gives the model the graph, in words ("" when it does not)."""
        parts = ([self.gnn_input] if self.uses_gnn(gcfg) and self.gnn_input else []) + (
            ["numbered evidence"] if self.uses_text(gcfg) else [])
        if len(parts) == 2 and parts[0].startswith("as "):
            return f"{parts[0]} and {parts[1]}"
        return " and ".join(p if p.startswith(("as ", "through ")) else f"as {p}" for p in parts)


MODES: dict[str, Mode] = {}


def register(mode: Mode) -> Mode:
    """Add a mode to the table (a name, system or flag already taken is refused)."""
    for other in MODES.values():
        clash = [what for what, a, b in (("name", mode.name, other.name), ("system", mode.system, other.system),
                                         ("flag", mode.flag, other.flag)) if a is not None and a == b]
        if clash:
            raise ValueError(f"mode {mode.name!r}: {', '.join(clash)} already used by mode {other.name!r}")
    if mode.system == PLAIN:
        raise ValueError(f"mode {mode.name!r}: the system name {PLAIN!r} is the untrained base model's")
    MODES[mode.name] = mode
    return mode


def unregister(name: str) -> None:
    MODES.pop(name, None)


def get(name: str) -> Mode:
    try:
        return MODES[name]
    except KeyError:
        raise ValueError(f"unknown mode {name!r}; known: {', '.join(MODES)}") from None


def by_system(system: str) -> Mode:
    for m in MODES.values():
        if m.system == system:
            return m
    raise ValueError(f"no mode provides the system {system!r}; systems: {', '.join(systems())}")


def systems() -> list[str]:
    """Every system an evaluation can compare: plain, then each mode's, in registration order."""
    return [PLAIN] + [m.system for m in MODES.values()]


def train_command(system: str) -> str:
    """The command that trains the run providing `system` (for messages)."""
    flag = by_system(system).flag
    return "python -m training.run" + (f" {flag}" if flag else "")


def _lora_always(gcfg) -> bool:
    return True


def _graph_problems(gcfg) -> list[str]:
    problems = []
    if gcfg.soft_tokens == 0 and gcfg.text_evidence is False:
        problems.append("graph mode with soft_tokens 0 and text_evidence off would use no graph at all")
    if not gcfg.lora and gcfg.soft_tokens == 0:
        problems.append("graph mode without LoRA needs soft tokens (nothing else would train)")
    return problems


def _peft_files(gcfg) -> tuple[str, ...]:
    return ADAPTER_FILES


def _graph_files(gcfg) -> tuple[str, ...]:
    return (ADAPTER_FILES if get(gcfg.mode).uses_lora(gcfg) else ()) + GRAPH_FILES


register(Mode(
    "lora", "finetuned", None, "the study's QLoRA",
    "the study's LoRA (r=32 on q,k,v,o,gate,up,down proj and lm_head by default), plain prompt",
    builders.build_lora, builders.load_peft, _peft_files, lora=_lora_always))
register(Mode(
    "graph", "graph", "--graph-prompt", "soft graph tokens + textual evidence",
    "graph prompting: LoRA + GNN + projector, K soft graph tokens after BOS, and numbered textual evidence in the "
    "prompt", builders.build_graph_llm, builders.load_graph_llm, _graph_files, evidence="on",
    gnn=lambda g: g.soft_tokens > 0, gnn_input="as soft graph tokens", soft_tokens=True, lora=lambda g: g.lora,
    check=_graph_problems))
register(Mode(
    "graph-text", "graph-text", "--graph-text-only", "textual graph evidence + LoRA",
    "LoRA, numbered textual graph evidence in the prompt (no GNN)",
    builders.build_lora, builders.load_peft, _peft_files, evidence="on", lora=_lora_always))
register(Mode(
    "adapter", "adapter", "--adapter", "graph-conditioned adapter, base frozen",
    "GNN + graph-conditioned zero-gated cross-attention in the top decoder layers; base frozen, no LoRA",
    builders.build_graph_llm, builders.load_graph_llm, _graph_files, evidence="off", gnn=lambda g: True,
    gnn_input="through its graph cross-attention"))
register(Mode(
    "prompt-tuning", "prompt-tuning", "--prompt-tuning", "prompt tuning, base frozen",
    "peft prompt tuning: learned virtual tokens before the prompt, initialised from the study's instruction; base "
    "frozen", builders.build_prompt_tuning, builders.load_peft, _peft_files))


def main(argv: list[str] | None = None) -> int:
    """`python -m model.modes [--json]`: the table, one mode a line (name, system, flag; tab-separated), for
    scripts that need it (scripts/reproduce_study.sh)."""
    import json

    argv = sys.argv[1:] if argv is None else argv
    rows = [{"name": m.name, "system": m.system, "flag": m.flag or "", "reads_graph": m.reads_graph, "trains": m.trains}
            for m in MODES.values()]
    if "--json" in argv:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['name']}\t{r['system']}\t{r['flag']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
