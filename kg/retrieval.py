"""A question's subgraph: link seed concepts, expand k hops, prune with PCST (as G-Retriever does),
add MindMap-style paths between the seeds, and say why every node is there."""
from __future__ import annotations

import logging

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import shortest_path

from kg.config import KGConfig
from kg.index import RELATION_LIST, GraphIndex
from kg.schema import Subgraph, SubgraphEdge, SubgraphNode

log = logging.getLogger(__name__)
SEED_NEIGHBOUR_BONUS = 0.15


def pcst_prizes(node_sims: np.ndarray, edge_sims: np.ndarray, cfg: KGConfig, forced: np.ndarray | None = None):
    """G-Retriever's prizes: top-k nodes get k, k-1, ..., 1; top-k edges get graded prizes."""
    n_prizes = np.zeros(len(node_sims), dtype=np.float64)
    k = min(cfg.pcst_node_topk, len(node_sims))
    if k:
        top = np.argsort(-node_sims, kind="stable")[:k]
        n_prizes[top] = np.arange(k, 0, -1, dtype=np.float64)
    if forced is not None:
        n_prizes[forced] = np.maximum(n_prizes[forced], float(cfg.pcst_node_topk))
    e_prizes = np.zeros(len(edge_sims), dtype=np.float64)
    ke = min(cfg.pcst_edge_topk, len(np.unique(edge_sims))) if len(edge_sims) else 0
    c = 0.01  # G-Retriever's decay between prize levels
    if ke:
        values = np.sort(np.unique(edge_sims))[::-1][:ke]
        last = float(ke)
        for rank, v in enumerate(values):
            hit = edge_sims == v
            value = min((ke - rank) / hit.sum(), last - c)
            e_prizes[hit] = value
            last = value * (1 - c)
    # as G-Retriever does, lower the edge cost below the best edge prize so at least one edge is kept
    cost = min(cfg.pcst_edge_cost, e_prizes.max() * (1 - c / 2)) if ke else cfg.pcst_edge_cost
    return n_prizes, e_prizes, cost


def run_pcst(n_nodes: int, edges: np.ndarray, n_prizes: np.ndarray, e_prizes: np.ndarray, cost: float):
    """PCST with edge prizes turned into virtual nodes (G-Retriever); returns (node idx, edge idx) selected."""
    import pcst_fast

    if len(edges) == 0:
        return np.nonzero(n_prizes > 0)[0], np.zeros(0, dtype=np.int64)
    costs, new_edges, virtual_prizes, virtual_map, real_map = [], [], [], [], []
    next_virtual = n_nodes
    for e, (u, v) in enumerate(edges):
        p = e_prizes[e]
        if p <= cost:
            new_edges.append((u, v))
            costs.append(cost - p)
            real_map.append(e)
        else:
            # an edge worth more than it costs becomes a node (prize - cost) joined by two free edges
            new_edges.append((u, next_virtual))
            new_edges.append((next_virtual, v))
            costs.extend([0.0, 0.0])
            real_map.extend([-1, -1])
            virtual_prizes.append(p - cost)
            virtual_map.append(e)
            next_virtual += 1
    prizes = np.concatenate([n_prizes, np.array(virtual_prizes, dtype=np.float64)])
    vertices, chosen = pcst_fast.pcst_fast(np.asarray(new_edges, dtype=np.int64), prizes,
                                           np.asarray(costs, dtype=np.float64), -1, 1, "gw", 0)
    real_edges = [real_map[i] for i in chosen if real_map[i] >= 0]
    virtual = [virtual_map[v - n_nodes] for v in vertices if v >= n_nodes]
    edge_sel = np.unique(np.asarray(real_edges + virtual, dtype=np.int64))
    nodes = set(int(v) for v in vertices if v < n_nodes)
    for e in edge_sel:
        nodes.update(int(x) for x in edges[e])
    return np.array(sorted(nodes), dtype=np.int64), edge_sel


def expand(index: GraphIndex, seeds: list[int], hops: int) -> np.ndarray:
    frontier = np.array(sorted(set(seeds)), dtype=np.int64)
    seen = set(frontier.tolist())
    indptr, indices = index.adj.indptr, index.adj.indices
    for _ in range(hops):
        if not len(frontier):
            break
        nxt = np.unique(np.concatenate([indices[indptr[i] : indptr[i + 1]] for i in frontier]))
        nxt = np.array([x for x in nxt.tolist() if x not in seen], dtype=np.int64)
        seen.update(nxt.tolist())
        frontier = nxt
    return np.array(sorted(seen), dtype=np.int64)


def seed_paths(sub_adj: sparse.csr_matrix, seed_local: list[int], max_len: int) -> list[list[int]]:
    """Shortest paths (local indices) between every pair of seeds, up to max_len edges."""
    if len(seed_local) < 2:
        return []
    dist, pred = shortest_path(sub_adj, directed=False, unweighted=True, indices=seed_local, return_predecessors=True)
    paths = []
    for a_i, a in enumerate(seed_local):
        for b in seed_local[a_i + 1 :]:
            if not np.isfinite(dist[a_i, b]) or dist[a_i, b] > max_len or dist[a_i, b] < 1:
                continue
            path, cur = [b], b
            while cur != a:
                cur = pred[a_i, cur]
                path.append(int(cur))
            paths.append(path[::-1])
    return paths


def retrieve_subgraph(index: GraphIndex, question: str, cfg: KGConfig, q_vec: np.ndarray | None = None) -> Subgraph:
    """The question's subgraph; empty (with no evidence) when the graph knows nothing about it."""
    if q_vec is None:
        from data.embedding import get_embedder

        q_vec = get_embedder().encode([question])[0]
    # in the index's dtype: a float64 query would make numpy upcast the whole (n, d) matrix on every call
    # (numpy 2 promotes float32 @ float64 to float64), 20x slower at 100,000 concepts
    q_vec = np.asarray(q_vec, dtype=index.node_emb.dtype)
    lexical = [index.pos[c] for c in index.lexical_matches(question)]
    sims = index.node_emb @ q_vec
    emb_seeds = []
    if cfg.seed_top_k:
        # when the question names concepts, embedding seeds must be clearly relevant to join them
        bar = cfg.seed_min_similarity + (0.1 if lexical else 0.0)
        top = np.argpartition(-sims, min(cfg.seed_top_k, len(sims) - 1))[: cfg.seed_top_k]
        emb_seeds = [int(i) for i in top[np.argsort(-sims[top])] if sims[i] >= bar]
    seeds = list(dict.fromkeys(lexical + emb_seeds))
    pcst_info = (
        {"node_topk": cfg.pcst_node_topk, "edge_topk": cfg.pcst_edge_topk, "edge_cost": cfg.pcst_edge_cost,
         "clusters": 1, "pruning": "gw"}
        if cfg.pcst else None
    )
    if not seeds:
        return Subgraph(question, [], [], [], cfg.hops, pcst_info)

    hood = expand(index, seeds, cfg.hops)
    if len(hood) > cfg.max_neighbourhood:
        keep = set(seeds)
        for i in hood[np.argsort(-sims[hood], kind="stable")]:
            if len(keep) >= cfg.max_neighbourhood:
                break
            keep.add(int(i))
        hood = np.array(sorted(keep), dtype=np.int64)
    local = {int(g): k for k, g in enumerate(hood)}
    sub_adj = index.adj[hood][:, hood].tocsr()
    coo = sub_adj.tocoo()
    mask = coo.row < coo.col  # each connected pair once
    order = np.lexsort((coo.col[mask], coo.row[mask]))
    local_edges = np.stack([coo.row[mask][order], coo.col[mask][order]], axis=1).astype(np.int64)
    # the edges (possibly several relations) behind each connected pair
    pair_ids = [index.pair_edges[(int(hood[u]), int(hood[v]))] for u, v in local_edges.tolist()]
    seed_local = [local[s] for s in seeds]

    if cfg.pcst:
        if index.edge_emb is not None and pair_ids:
            e_sims = np.array([float((index.edge_emb[ids] @ q_vec).max()) for ids in pair_ids])
        else:
            e_sims = np.zeros(len(pair_ids))
        n_prizes, e_prizes, cost = pcst_prizes(sims[hood], e_sims, cfg, np.array(seed_local))
        chosen_nodes, _ = run_pcst(len(hood), local_edges, n_prizes, e_prizes, cost)
        chosen = set(chosen_nodes.tolist()) | set(seed_local)
    else:
        chosen = set(seed_local)
        for k in np.argsort(-sims[hood], kind="stable"):
            if len(chosen) >= cfg.max_nodes:
                break
            chosen.add(int(k))

    # MindMap's neighbour-based evidence: grow the selection by its most question-similar neighbours
    neighbours_added: set[int] = set()
    # direct neighbours of the seeds come first: they are what the question's concepts are linked to
    score = sims[hood] + SEED_NEIGHBOUR_BONUS * np.isin(np.arange(len(hood)), np.unique(sub_adj[seed_local].indices))
    while len(chosen) < cfg.min_nodes:
        sel = np.array(sorted(chosen))
        frontier = np.setdiff1d(np.unique(sub_adj[sel].indices), sel)
        if not len(frontier):
            break
        best = int(frontier[np.argmax(score[frontier])])
        chosen.add(best)
        neighbours_added.add(best)

    paths = seed_paths(sub_adj, seed_local, max_len=max(2, 2 * cfg.hops))
    on_path = {k for p in paths for k in p}
    if len(chosen | on_path) > cfg.max_nodes:
        # keep seeds, then path nodes, then the most question-similar
        ranked = sorted(chosen | on_path, key=lambda k: (k not in seed_local, k not in on_path, -sims[hood[k]], k))
        chosen = set(ranked[: cfg.max_nodes])
        paths = [p for p in paths if set(p) <= chosen]
    else:
        chosen |= on_path

    lexical_set, emb_set = set(lexical), set(emb_seeds)
    order_nodes = sorted(chosen, key=lambda k: (k not in seed_local, -sims[hood[k]], k))
    new_pos = {k: i for i, k in enumerate(order_nodes)}
    nodes = []
    for k in order_nodes:
        g = int(hood[k])
        if g in lexical_set:
            reason = "seed: named in the question"
        elif g in emb_set:
            reason = f"seed: similar to the question (cosine {sims[g]:.2f})"
        elif k in on_path:
            reason = "on a path between seed concepts"
        elif k in neighbours_added:
            reason = f"neighbour of the selection, similar to the question (cosine {sims[g]:.2f})"
        else:
            reason = "kept by PCST (connects or scores high)" if cfg.pcst else "top similarity in the neighbourhood"
        nodes.append(SubgraphNode(index.ids[g], index.names[g], index.node_text(g), round(float(sims[g]), 4), reason))
    edges = []
    for (u, v), ids in zip(local_edges.tolist(), pair_ids):
        if u not in new_pos or v not in new_pos:
            continue
        for e in ids:
            head, tail = int(index.edge_src[e]), int(index.edge_dst[e])
            edges.append(SubgraphEdge(new_pos[local[head]], RELATION_LIST[index.edge_rel[e]], new_pos[local[tail]],
                                      index.edge_text(e), round(float(index.edge_conf[e]), 4)))
    edges.sort(key=lambda ed: (ed.relation == "RELATED_TO", -ed.confidence, ed.head, ed.tail))
    return Subgraph(
        question=question, nodes=nodes, edges=edges, seeds=[index.ids[s] for s in seeds], hops=cfg.hops, pcst=pcst_info,
        paths=[[index.ids[int(hood[k])] for k in p] for p in paths],
    )
