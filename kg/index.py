"""An in-memory snapshot of the concept graph for fast retrieval (CSR adjacency + embeddings).

Loaded once from the store (or built directly from arrays, as the benchmark's synthetic graph is), so a
question's k-hop expansion and PCST run in milliseconds instead of one Cypher round trip per hop.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

from kg.schema import RELATIONS, relation_text

log = logging.getLogger(__name__)
RELATION_LIST = list(RELATIONS)


@dataclass
class GraphIndex:
    ids: list[str]
    names: list[str]
    definitions: list[str]
    aliases: list[list[str]]
    node_emb: np.ndarray  # (n, d), unit rows
    edge_src: np.ndarray  # (m,) int
    edge_dst: np.ndarray
    edge_rel: np.ndarray  # (m,) index into RELATION_LIST
    edge_conf: np.ndarray
    edge_emb: np.ndarray | None = None  # (m, d) unit rows of the edge texts
    digest: str = ""
    alias_context: list[dict[str, list[str]]] = field(default_factory=list)  # per node: alias -> cue words
    pos: dict[str, int] = field(default_factory=dict)
    adj: sparse.csr_matrix | None = None  # undirected structure, one entry per connected pair
    pair_edges: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # (low, high) -> edge ids
    _matcher: object = None

    def __post_init__(self) -> None:
        self.pos = {cid: i for i, cid in enumerate(self.ids)}
        n = len(self.ids)
        lo = np.minimum(self.edge_src, self.edge_dst)
        hi = np.maximum(self.edge_src, self.edge_dst)
        self.pair_edges = {}
        for e, (a, b) in enumerate(zip(lo.tolist(), hi.tolist())):
            self.pair_edges.setdefault((a, b), []).append(e)
        pairs = np.array(list(self.pair_edges), dtype=np.int64).reshape(-1, 2)
        rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
        cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
        self.adj = sparse.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))

    def edge_text(self, e: int) -> str:
        return relation_text(self.names[self.edge_src[e]], RELATION_LIST[self.edge_rel[e]],
                             self.names[self.edge_dst[e]])

    def node_text(self, i: int) -> str:
        return f"{self.names[i]}: {self.definitions[i]}" if self.definitions[i] else self.names[i]

    def lexical_matches(self, text: str) -> list[str]:
        """Concept ids written in the text (names, aliases and their variants; longest match wins)."""
        if self._matcher is None:
            from kg.extract import ConceptExtractor
            from kg.schema import Concept

            rules = self.alias_context or [{} for _ in self.ids]
            concepts = {cid: Concept(cid, self.names[i], "", list(self.aliases[i]), alias_context=dict(rules[i]))
                        for i, cid in enumerate(self.ids)}
            self._matcher = ConceptExtractor(concepts)
        doc = self._matcher.nlp.make_doc(text)
        found = []
        for m in self._matcher.mentions(doc):
            span = doc.char_span(m.start, m.end)
            if span is not None and _used_as_verb(span):
                continue
            found.append(m.concept)
        return list(dict.fromkeys(found))


_VERB_LIKE = {"mean", "means", "model", "models", "test", "tests", "sample", "samples", "train", "map", "process",
              "cache", "set"}
_AUXILIARIES = {"does", "do", "did", "to", "will", "would", "can", "could", "should", "you", "we", "i", "they"}


def _used_as_verb(span) -> bool:
    """"What does a p-value mean?": a one-word concept name used as a verb is not a mention."""
    if len(span) != 1 or span.text.lower() not in _VERB_LIKE:
        return False
    doc = span.doc
    nxt = doc[span.end].text if span.end < len(doc) else ""
    prev = doc[span.start - 1].text.lower() if span.start > 0 else ""
    return prev in _AUXILIARIES or (
        nxt in ("?", ".", "") and any(t.lower_ in ("does", "do", "did") for t in doc[: span.start])
    )


def load_index(store, work_dir: str | Path, with_edge_embeddings: bool = True) -> GraphIndex:
    """Snapshot the store's concepts and triples, with (cached) MiniLM embeddings of nodes and edges."""
    from kg import cypher
    from kg.builder import embed_cached
    from kg.store import get_meta

    concepts = store.run(cypher.ALL_CONCEPTS)
    triples = store.run(cypher.ALL_TRIPLES)
    if not concepts:
        raise ValueError("the graph store holds no concepts: run `python -m kg.build` first")
    work = Path(work_dir)
    ids = [c["id"] for c in concepts]
    pos = {cid: i for i, cid in enumerate(ids)}
    names = [c["name"] for c in concepts]
    defs = [c.get("definition") or "" for c in concepts]
    texts = [f"{n}: {d}" if d else n for n, d in zip(names, defs)]
    node_emb = embed_cached(texts, work / "embeddings.npz")
    triples = [t for t in triples if t["relation"] in RELATIONS and t["head"] in pos and t["tail"] in pos]
    idx = GraphIndex(
        ids=ids, names=names, definitions=defs, aliases=[list(c.get("aliases") or []) for c in concepts],
        alias_context=[json.loads(c.get("alias_context") or "{}") for c in concepts],
        node_emb=node_emb,
        edge_src=np.array([pos[t["head"]] for t in triples], dtype=np.int64),
        edge_dst=np.array([pos[t["tail"]] for t in triples], dtype=np.int64),
        edge_rel=np.array([RELATION_LIST.index(t["relation"]) for t in triples], dtype=np.int64),
        edge_conf=np.array([float(t.get("confidence") or 1.0) for t in triples], dtype=np.float32),
        digest=get_meta(store, "graph_digest") or "",
    )
    if with_edge_embeddings and len(triples):
        idx.edge_emb = embed_cached([idx.edge_text(e) for e in range(len(triples))], work / "edge_embeddings.npz")
    return idx
