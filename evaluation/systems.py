"""The systems an evaluation compares, each loaded from the run directory whose mode trained it.

A system answers questions: its model (base, base + PEFT adapter, or a GraphLLM), its prompts (plain,
or with numbered graph evidence) and, for the GNN systems, each question's PyG graph. A question the
graph knows nothing about is answered from the plain prompt and marked `graph_fallback`.
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)
GRAPH_SYSTEMS = ("graph", "graph-text", "adapter")


def run_mode(run_cfg: dict) -> str:
    return (run_cfg.get("graph") or {}).get("mode", "lora")


def system_of(run_cfg: dict) -> str:
    mode = run_mode(run_cfg)
    return "finetuned" if mode == "lora" else mode


def find_system_runs(run_dir: str | None, extra: list[str], wanted: list[str]) -> dict[str, Path]:
    """system -> the run directory that provides it (run_dir first, then `extra`, then run_dir/systems/*)."""
    from evaluation.run import RunConfigError, read_run_config

    candidates: list[Path] = []
    if run_dir:
        candidates.append(Path(run_dir))
    candidates += [Path(r) for r in extra]
    if run_dir and (Path(run_dir) / "systems").is_dir():
        candidates += sorted(p for p in (Path(run_dir) / "systems").iterdir() if (p / "config.json").exists())
    found: dict[str, Path] = {}
    for d in candidates:
        found.setdefault(system_of(read_run_config(d)), d)
    missing = [s for s in wanted if s != "plain" and s not in found]
    if missing:
        searched = ", ".join(str(c) for c in candidates) or "(no run directory given)"
        raise RunConfigError(f"no run provides the system(s) {missing}; searched {searched}. Train one with "
                             f"`python -m training.run --{'graph-prompt' if 'graph' in missing else missing[0]}` or pass --runs.")
    return found


class SystemRunner:
    """One system, loaded: `answer(items)` gives Generation objects and per-item graph details."""

    def __init__(self, system: str, run_dir: Path | None, run_cfg: dict | None, style: str, settings, stops: list[str]):
        self.system, self.run_dir, self.run_cfg = system, run_dir, run_cfg
        self.style, self.settings, self.stops = style, settings, stops
        self.model = self.tok = self.ctx = None
        self.gcfg = None

    def load(self) -> "SystemRunner":
        from model.config import ModelConfig
        from model.graph_config import GraphPromptConfig
        from model.load import load_adapter, load_model

        model_cfg = ModelConfig(**self.run_cfg["model"]) if self.run_cfg else ModelConfig()
        self.model, self.tok = load_model(model_cfg)
        self.gcfg = GraphPromptConfig(**(self.run_cfg.get("graph") or {})) if self.run_cfg else GraphPromptConfig()
        adapter_dir = Path(self.run_dir) / "adapter" if self.run_dir else None
        if self.system in ("finetuned", "graph-text", "prompt-tuning"):
            self.model = load_adapter(self.model, adapter_dir)
        elif self.system in ("graph", "adapter"):
            from model.graph_model import load_graph_llm

            self.model = load_graph_llm(self.model, self.tok, adapter_dir)
        if self.system in GRAPH_SYSTEMS:
            from kg.config import KGConfig
            from kg.store import StoreConfig
            from prompting.graph_prompt import GraphContext

            self.ctx = GraphContext(KGConfig(**self.run_cfg["kg"]), StoreConfig(**self.run_cfg["store"])).open()
        return self

    def graph_prompts(self, questions: list[str]):
        if self.ctx is None:
            return None
        g = self.gcfg
        return self.ctx.prompts(questions, text=g.uses_text, graph=g.uses_gnn, **g.evidence_limits())

    def answer(self, items, progress_desc: str | None = None):
        """[(Generation, extras)] for the items; extras carry evidence, fallback and subgraph for graph systems."""
        from model.generate import generate_answers
        from prompting.templates import build_prompt, encode_prompt

        gps = self.graph_prompts([it.question for it in items])
        contexts = [gp.context for gp in gps] if gps else [None] * len(items)
        prompts = [encode_prompt(build_prompt(it.question, self.tok, self.style, c), self.tok) for it, c in zip(items, contexts)]
        graphs = [gp.data for gp in gps] if gps and self.gcfg.uses_gnn else None
        gens = generate_answers(self.model, self.tok, prompts, self.settings, self.stops, graphs=graphs)
        extras = []
        for k in range(len(items)):
            if gps is None:
                extras.append({})
                continue
            gp = gps[k]
            extras.append({"evidence": gp.evidence, "graph_fallback": gp.fallback, "subgraph": gp.subgraph.to_dict()})
        if gps:
            n_fb = sum(gp.fallback for gp in gps)
            if n_fb:
                log.info("%s: %d of %d questions had no subgraph and got the plain prompt", self.system, n_fb, len(gps))
        return list(zip(gens, extras))

    def close(self) -> None:
        self.model = None
