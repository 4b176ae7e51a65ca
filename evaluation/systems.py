"""The systems an evaluation compares, each loaded from the run directory whose mode trained it.

A system answers questions: its model (the base for plain, otherwise what its mode's loader rebuilds from the
run's adapter/: model.modes), its prompts (plain, or with numbered graph evidence) and, for the GNN systems,
each question's PyG graph. A question the graph knows nothing about is answered from the plain prompt and
marked `graph_fallback`. A prompt that does not fit the model's context is refused before generating.
"""
from __future__ import annotations

import logging

from model.modes import PLAIN
from model.rundir import RunDir, find_system_runs

log = logging.getLogger(__name__)
__all__ = ["SystemRunner", "check_trained", "find_system_runs"]


def check_trained(system: str, run: RunDir | None) -> None:
    """A trained system's files, complete and readable, before any model is loaded (AdapterNotFoundError)."""
    if system != PLAIN and run is not None:
        run.check_weights()


class SystemRunner:
    """One system, loaded: `answer(items)` gives Generation objects and per-item graph details."""

    def __init__(self, system: str, run: RunDir | None, style: str, settings, stops: list[str], model_cfg=None):
        """model_cfg: the base model's settings when not the run's (the study app's full-precision plain model)."""
        self.system, self.run, self.model_cfg = system, run, model_cfg
        self.style, self.settings, self.stops = style, settings, stops
        self.model = self.tok = self.ctx = None
        self.gcfg = run.graph if run is not None and system != PLAIN else None

    def load(self) -> "SystemRunner":
        from model.config import ModelConfig
        from model.load import load_model

        check_trained(self.system, self.run)
        cfg = self.model_cfg or (self.run.model if self.run is not None else ModelConfig())
        self.model, self.tok = load_model(cfg)
        if self.gcfg is not None:
            self.model = self.run.load_trained(self.model, self.tok)
            if self.gcfg.uses_graph:
                from prompting.graph_prompt import GraphContext

                self.ctx = GraphContext(self.run.kg, self.run.store).open()
        return self

    def graph_prompts(self, questions: list[str]):
        if self.ctx is None:
            return None
        g = self.gcfg
        return self.ctx.prompts(questions, text=g.uses_text, graph=g.uses_gnn, **g.evidence_limits())

    def encode(self, items, contexts) -> list[list[int]]:
        """Token ids of each item's prompt; PromptTooLongError when one leaves no room for the answer."""
        from model.generate import check_fits
        from prompting.templates import build_prompt, encode_prompt

        ids = [encode_prompt(build_prompt(it.question, self.tok, self.style, c), self.tok)
               for it, c in zip(items, contexts)]
        check_fits(self.model, ids, self.settings.max_new_tokens, [str(it.id) for it in items])
        return ids

    def answer(self, items, progress_desc: str | None = None):
        """[(Generation, extras)] for the items; extras carry evidence, fallback and subgraph for graph systems."""
        from model.generate import generate_answers

        if self.ctx is not None:  # a question too long on its own is refused before its subgraph is retrieved
            self.encode(items, [None] * len(items))
        gps = self.graph_prompts([it.question for it in items])
        contexts = [gp.context for gp in gps] if gps else [None] * len(items)
        prompts = self.encode(items, contexts)
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
