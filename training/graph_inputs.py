"""What a graph-family run adds to plain SFT: each item's numbered evidence and PyG graph, gathered once
before training from the concept graph, plus the learning-rate groups of the modules that are not LoRA's."""
from __future__ import annotations

from dataclasses import dataclass, field

from model.weight_files import ADAPTER_FILES


@dataclass
class GraphInputs:
    """Per-item textual evidence and PyG graphs, the files a checkpoint must hold, and the learning rates of
    parameter groups that are not LoRA's."""

    contexts: dict[str, str | None] = field(default_factory=dict)  # item id -> evidence text (None: plain prompt)
    graphs: dict[str, object] = field(default_factory=dict)  # item id -> PyG Data or None (GraphLLM only)
    node_dim: int | None = None  # node feature width of the graphs (the graph context's embeddings)
    files: tuple[str, ...] = ADAPTER_FILES
    lr_groups: list[tuple[list, float]] = field(default_factory=list)  # (parameters, learning rate)

    @property
    def uses_graphs(self) -> bool:
        return bool(self.graphs)


def graph_inputs(ctx, items, gcfg, files, lr_groups, dropped: frozenset = frozenset()) -> tuple[GraphInputs, dict]:
    """Evidence text and PyG graphs for every item (by id), and a summary of how many fell back. Items in
    `dropped` (evidence dropout) get neither, like a question without a subgraph."""
    prompts = ctx.prompts([it.question for it in items], text=gcfg.uses_text, graph=gcfg.uses_gnn,
                          **gcfg.evidence_limits())
    contexts = {it.id: None if it.id in dropped else p.context for it, p in zip(items, prompts)}
    graphs = {it.id: None if it.id in dropped else p.data for it, p in zip(items, prompts)} if gcfg.uses_gnn else {}
    n = max(len(prompts), 1)
    summary = {"items": len(items), "fallback_plain_prompt": sum(p.fallback for p in prompts),
               "evidence_dropped": len(dropped),
               "mean_evidence_lines": round(sum(len(p.evidence) for p in prompts) / n, 2),
               "mean_nodes": round(sum(len(p.subgraph.nodes) for p in prompts) / n, 2)}
    inputs = GraphInputs(contexts=contexts, graphs=graphs, node_dim=ctx.node_dim, files=files, lr_groups=lr_groups)
    return inputs, summary


def evidence_dropout(items, share: float, seed: int) -> frozenset:
    """The ids of the training items that get the plain prompt (a fixed draw for a given seed)."""
    import random

    if share <= 0:
        return frozenset()
    rng = random.Random(seed)
    ids = sorted(it.id for it in items)
    return frozenset(rng.sample(ids, round(share * len(ids))))
