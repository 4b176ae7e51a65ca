"""GraphPrompt: what the model gets from the concept graph for one question (numbered textual evidence
and/or a PyG graph for the GNN), and GraphContext, which opens (or first builds) the graph, keeps an
in-memory retrieval index, and caches every question's subgraph and PyG tensors on disk.

A question the graph knows nothing about gets an empty GraphPrompt: no evidence, no graph, the plain
prompt, and `fallback` says so; nothing is ever invented for it.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from kg.config import KGConfig
from kg.schema import EVIDENCE_DEFINITIONS, EVIDENCE_PATHS, EVIDENCE_TRIPLES, Subgraph, SubgraphEdge, SubgraphNode
from kg.store import StoreConfig

log = logging.getLogger(__name__)
RETRIEVAL_FIELDS = ("hops", "seed_top_k", "seed_min_similarity", "max_neighbourhood", "pcst", "pcst_node_topk",
                    "pcst_edge_topk", "pcst_edge_cost", "max_nodes", "min_nodes")


@dataclass
class GraphPrompt:
    question: str
    subgraph: Subgraph
    evidence: list[str]  # numbered lines; empty when text evidence is off or the subgraph is empty
    data: object | None = None  # torch_geometric Data for the GNN, None when unused or empty

    @property
    def fallback(self) -> bool:
        """True when the graph had nothing for this question (the plain prompt is used)."""
        return self.subgraph.empty

    @property
    def context(self) -> str | None:
        from kg.textualize import evidence_block

        return evidence_block(self.evidence) or None


def subgraph_from_dict(d: dict) -> Subgraph:
    return Subgraph(
        question=d["question"], nodes=[SubgraphNode(**n) for n in d["nodes"]],
        edges=[SubgraphEdge(**e) for e in d["edges"]],
        seeds=list(d["seeds"]), hops=d["hops"], pcst=d["pcst"], paths=[list(p) for p in d.get("paths", [])],
    )


class GraphContext:
    """The concept graph as prompts need it. Open it once (`open()`),
    then `prompts(questions)`; the store itself is closed again as soon as the index is loaded."""

    def __init__(self, kg_cfg: KGConfig | None = None, store_cfg: StoreConfig | None = None,
                 build_if_missing: bool = True,
                 progress: bool = True):
        self.kg_cfg = kg_cfg or KGConfig()
        self.store_cfg = store_cfg or StoreConfig()
        self.build_if_missing = build_if_missing
        self.progress = progress
        self.index = None
        self.domains: dict[str, str] = {}  # concept id -> cs | stats | ai (for pages)
        self._embedder = None
        self._known: dict | None = None  # text -> vector, from the index
        self._cache: dict[str, dict] = {}
        self._cache_path: Path | None = None

    def open(self) -> "GraphContext":
        if self.index is not None:
            return self
        from kg.index import load_index
        from kg.store import counts, open_store

        with open_store(self.store_cfg) as store:
            if counts(store)["concepts"] == 0:
                if not self.build_if_missing:
                    raise ValueError(f"the graph store ({store.name}) is empty: run `python -m kg.build` first")
                from kg.builder import build_graph_data, write_graph

                log.info("the concept graph is empty: building it (python -m kg.build does the same)")
                write_graph(store, build_graph_data(self.kg_cfg, progress=self.progress), progress=self.progress)
            self.index = load_index(store, self.kg_cfg.work_dir)
            from kg import cypher

            self.domains = {r["id"]: r.get("domain") for r in store.run(cypher.ALL_CONCEPTS)}
        settings = {k: getattr(self.kg_cfg, k) for k in RETRIEVAL_FIELDS}
        key = hashlib.sha256(json.dumps([self.index.digest, settings], sort_keys=True).encode()).hexdigest()[:16]
        self._cache_path = Path(self.kg_cfg.work_dir) / "subgraphs" / f"{key}.jsonl"
        if self._cache_path.exists():
            for line in self._cache_path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line half-written by a killed run
                    continue
                self._cache[row["question"]] = row["subgraph"]
        log.info("concept graph: %d concepts, %d triples; %d cached subgraphs", len(self.index.ids),
                 len(self.index.edge_src), len(self._cache))
        return self

    @property
    def embedder(self):
        if self._embedder is None:
            from data.embedding import get_embedder

            self._embedder = get_embedder()
        return self._embedder

    def embed(self, texts: list[str]):
        """MiniLM vectors for node, edge and question texts. Node and edge texts come from the index's
        own embeddings (the same encoder on the same texts), so only the question is encoded anew."""
        import numpy as np

        if self._known is None:
            idx = self.index
            self._known = {idx.node_text(i): idx.node_emb[i] for i in range(len(idx.ids))}
            if idx.edge_emb is not None:
                self._known.update({idx.edge_text(e): idx.edge_emb[e] for e in range(len(idx.edge_src))})
        missing = [t for t in dict.fromkeys(texts) if t not in self._known]
        fresh = dict(zip(missing, self.embedder.encode(missing))) if missing else {}
        return np.stack([self._known[t] if t in self._known else fresh[t] for t in texts]).astype(np.float32)

    def subgraphs(self, questions: list[str]) -> list[Subgraph]:
        """Each question's subgraph, from the on-disk cache or retrieved (and then cached)."""
        from kg.retrieval import retrieve_subgraph

        self.open()
        todo = [q for q in dict.fromkeys(questions) if q not in self._cache]
        if todo:
            vecs = self.embedder.encode(todo)
            new_rows = []
            for q, v in zip(todo, vecs):
                sg = retrieve_subgraph(self.index, q, self.kg_cfg, q_vec=v)
                self._cache[q] = sg.to_dict()
                new_rows.append({"question": q, "subgraph": self._cache[q]})
            self._cache_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self._cache_path, "a", encoding="utf-8") as fh:
                for row in new_rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        return [subgraph_from_dict(self._cache[q]) for q in questions]

    def prompts(self, questions: list[str], text: bool, graph: bool, max_triples: int = EVIDENCE_TRIPLES,
                max_definitions: int = EVIDENCE_DEFINITIONS, max_paths: int = EVIDENCE_PATHS) -> list[GraphPrompt]:
        """GraphPrompts for the questions: evidence lines when `text`, PyG Data when `graph`."""
        from kg.textualize import evidence_lines, to_pyg

        out = []
        for sg in self.subgraphs(questions):
            evidence = evidence_lines(sg, max_triples, max_definitions, max_paths) if text else []
            data = None
            if graph and not sg.empty:
                data = to_pyg(sg, self.embed, Path(self.kg_cfg.work_dir) / "pyg", self.index.digest)
            out.append(GraphPrompt(sg.question, sg, evidence, data))
        return out

    @property
    def node_dim(self) -> int:
        self.open()
        return int(self.index.node_emb.shape[1])
