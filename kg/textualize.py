"""Subgraph -> numbered textual evidence (triples, definitions, MindMap-style paths) and -> PyG Data."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from kg.index import RELATION_LIST
from kg.schema import Subgraph, relation_text


SYMMETRIC = ("CONTRASTS_WITH", "RELATED_TO")  # "a contrasts with b" and "b contrasts with a" say one thing


def ranked_edges(sg: Subgraph) -> list:
    """The subgraph's edges, most relevant to the question first: an edge touching a seed concept before one
    that does not, then by the summed question similarity of its two concepts; typed relations before
    RELATED_TO; a symmetric pair stated once."""
    seeds = set(sg.seeds)
    seen: set[tuple] = set()
    out = []
    for e in sg.edges:
        key = (e.relation, *sorted((e.head, e.tail))) if e.relation in SYMMETRIC else (e.relation, e.head, e.tail)
        if key in seen:
            continue
        seen.add(key)
        out.append(e)

    def relevance(e):
        h, t = sg.nodes[e.head], sg.nodes[e.tail]
        touches_seed = h.id in seeds or t.id in seeds
        return (not touches_seed, e.relation == "RELATED_TO", -(h.score + t.score), e.head, e.tail)

    return sorted(out, key=relevance)


def evidence_lines(sg: Subgraph, max_triples: int = 12, max_definitions: int = 3, max_paths: int = 3) -> list[str]:
    """Numbered evidence the answer can cite, most relevant first; empty when the subgraph is empty (never
    invented). Definitions of the seed concepts, paths between them, then the ranked triples."""
    if sg.empty:
        return []
    lines: list[str] = []
    by_id = {n.id: n for n in sg.nodes}
    for cid in sg.seeds[:max_definitions]:
        node = by_id.get(cid)
        if node and ": " in node.text:
            lines.append(node.text)
    for path in sg.paths[:max_paths]:
        if len(path) > 2:
            lines.append("path: " + " - ".join(by_id[c].name for c in path if c in by_id))
    for e in ranked_edges(sg)[:max_triples]:
        lines.append(relation_text(sg.nodes[e.head].name, e.relation, sg.nodes[e.tail].name))
    return [f"[{i}] {line}" for i, line in enumerate(lines, 1)]


def evidence_block(lines: list[str]) -> str:
    """Numbered evidence lines as the prompt shows them; empty when there are none."""
    return "Evidence from the concept graph:\n" + "\n".join(lines) if lines else ""


def evidence_text(sg: Subgraph, **kw) -> str:
    return evidence_block(evidence_lines(sg, **kw))


def to_pyg(sg: Subgraph, embed, cache_dir: str | Path | None = None, graph_digest: str = ""):
    """PyG Data with node text embeddings (x), edge text embeddings (edge_attr), relation ids (edge_type)
    and the question embedding; cached per (question, graph, subgraph) when cache_dir is given."""
    import torch
    from torch_geometric.data import Data

    key = hashlib.sha256(json.dumps([graph_digest, sg.to_dict()], sort_keys=True).encode()).hexdigest()[:24]
    path = Path(cache_dir) / f"{key}.pt" if cache_dir else None
    if path is not None and path.exists():
        return torch.load(path, weights_only=False)
    texts = [n.text for n in sg.nodes] or [""]
    x = torch.from_numpy(np.asarray(embed(texts), dtype=np.float32))
    if sg.edges:
        edge_index = torch.tensor([[e.head for e in sg.edges], [e.tail for e in sg.edges]], dtype=torch.long)
        edge_attr = torch.from_numpy(np.asarray(embed([e.text for e in sg.edges]), dtype=np.float32))
        edge_type = torch.tensor([RELATION_LIST.index(e.relation) for e in sg.edges], dtype=torch.long)
    else:
        edge_index = torch.zeros((2, 0), dtype=torch.long)
        edge_attr = torch.zeros((0, x.shape[1]))
        edge_type = torch.zeros((0,), dtype=torch.long)
    data = Data(x=x, edge_index=edge_index, edge_attr=edge_attr, edge_type=edge_type,
                question=torch.from_numpy(np.asarray(embed([sg.question]), dtype=np.float32)), num_nodes=len(texts))
    if path is not None:
        from data.fileio import temp_path

        tmp = temp_path(path)
        torch.save(data, tmp)
        tmp.replace(path)
    return data
