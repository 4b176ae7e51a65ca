"""Benchmark the graph store and retrieval. Prints JSON.

1. Ingestion: triples/s written through our store (GraphStore + batched UNWIND MERGE) against the raw
   `falkordb` client sending the same statement with the same rows and batch size, in the same run, on
   the same embedded server (target: ours >= 0.7x raw).
2. Retrieval latency per question (p50/p95, ms): ours (k-hop + PCST + paths on the in-memory index)
   against PyG's G-Retriever retrieval (`retrieval_via_pcst`, PCST over the whole graph), on the real
   graph (eval-split questions) and on a synthetic 100,000-concept graph (target: our p95 <= 50 ms).
   Question embedding is excluded from both (it is the same MiniLM call for both).

    .venv/bin/python scripts/bench_kg.py [--synthetic-nodes 100000] [--pyg-queries 3] [--skip-ingest]
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float]) -> dict:
    a = np.asarray(values) * 1000
    return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p95_ms": round(float(np.percentile(a, 95)), 2), "max_ms": round(float(a.max()), 2)}


def bench_ingest(n_concepts: int, n_triples: int, batch: int) -> dict:
    from kg import cypher
    from kg.falkordb_store import EmbeddedFalkorDB, FalkorStore
    from kg.store import write_batches

    rng = np.random.default_rng(0)
    concepts = [{"id": f"c{i}", "name": f"concept {i}", "domain": "ai", "aliases": [],
                 "definition": "", "source": "bench"} for i in range(n_concepts)]
    heads, tails = rng.integers(0, n_concepts, n_triples), rng.integers(0, n_concepts, n_triples)
    rows = [{"head": f"c{h}", "tail": f"c{t}", "confidence": 0.5, "source": "bench",
             "sentence": "", "provenance": ["q1"]}
            for h, t in zip(heads.tolist(), tails.tolist())]
    tmp = Path(tempfile.mkdtemp(prefix="bench-kg-"))
    server = EmbeddedFalkorDB(tmp / "db")
    server.start()
    out = {}
    try:
        stamp = {"build": "bench"}
        for name in ("ours", "raw", "ours_again", "raw_again"):  # alternate, so neither gets a warmer server
            graph = f"bench_{name}"
            store = FalkorStore(server.socket_path, graph)
            store.ensure_schema()
            write_batches(store, cypher.UPSERT_CONCEPTS, concepts, batch, params=stamp)
            statement = cypher.UPSERT_TRIPLES["RELATED_TO"]
            t0 = time.perf_counter()
            if name.startswith("ours"):
                write_batches(store, statement, rows, batch, params=stamp)
            else:
                import falkordb

                raw = falkordb.FalkorDB(unix_socket_path=str(server.socket_path)).select_graph(graph)
                for i in range(0, len(rows), batch):
                    raw.query(statement, {"build": "bench", "rows": rows[i : i + batch]})
            out[name] = round(n_triples / (time.perf_counter() - t0), 1)
            store.close()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    ours = (out["ours"] + out["ours_again"]) / 2
    raw = (out["raw"] + out["raw_again"]) / 2
    return {"triples": n_triples, "batch": batch, "triples_per_s": out, "ratio_ours_over_raw": round(ours / raw, 3)}


def pyg_inputs(index):
    import pandas as pd
    import torch
    from torch_geometric.data import Data

    data = Data(
        x=torch.from_numpy(index.node_emb), edge_index=torch.from_numpy(np.stack([index.edge_src, index.edge_dst])),
        edge_attr=torch.from_numpy(index.edge_emb), node_idx=np.arange(len(index.ids)),
        edge_idx=np.arange(len(index.edge_src)),
    )
    nodes = pd.DataFrame({"node_id": np.arange(len(index.ids)), "node_attr": index.names})
    edges = pd.DataFrame({"src": index.edge_src, "edge_attr": [str(r) for r in index.edge_rel], "dst": index.edge_dst})
    return data, nodes, edges


def time_ours(index, questions, q_vecs, cfg) -> list[float]:
    from kg.retrieval import retrieve_subgraph

    retrieve_subgraph(index, questions[0], cfg, q_vecs[0])  # warm-up (builds the phrase matcher)
    times = []
    for q, v in zip(questions, q_vecs):
        t0 = time.perf_counter()
        retrieve_subgraph(index, q, cfg, v)
        times.append(time.perf_counter() - t0)
    return times


def time_pyg(index, q_vecs, n: int) -> list[float]:
    import torch
    from torch_geometric.llm.utils.backend_utils import retrieval_via_pcst

    data, nodes, edges = pyg_inputs(index)
    times = []
    for v in q_vecs[:n]:
        t0 = time.perf_counter()
        retrieval_via_pcst(data, torch.from_numpy(v), nodes, edges, topk=3, topk_e=5, cost_e=0.5)
        times.append(time.perf_counter() - t0)
    return times


def synthetic_index(n: int, degree: int, dim: int, seed: int = 0):
    from kg.index import RELATION_LIST, GraphIndex

    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, dim), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    m = n * degree // 2
    # preferential-ish attachment: a few hubs, like a real concept graph
    src = rng.integers(0, n, m)
    dst = (rng.pareto(1.5, m) * 50).astype(np.int64) % n
    keep = src != dst
    src, dst = src[keep], dst[keep]
    rel = rng.integers(0, len(RELATION_LIST), len(src))
    idx = GraphIndex(ids=[f"c{i}" for i in range(n)], names=[f"synthetic concept {i}" for i in range(n)],
                     definitions=[""] * n,
                     aliases=[[] for _ in range(n)], node_emb=emb, edge_src=src, edge_dst=dst, edge_rel=rel,
                     edge_conf=np.ones(len(src), dtype=np.float32))
    e = emb[src] + emb[dst]
    idx.edge_emb = e / np.linalg.norm(e, axis=1, keepdims=True)
    return idx


def main() -> int:
    from data.cli import ArgumentParser

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--synthetic-nodes", type=int, default=100_000)
    p.add_argument("--degree", type=int, default=4, help="average degree of the synthetic graph")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--pyg-queries", type=int, default=3, help="PyG takes ~15 s a query at 100,000 nodes")
    p.add_argument("--ingest-triples", type=int, default=50_000)
    p.add_argument("--skip-ingest", action="store_true")
    p.add_argument("--data_dir", default="artifacts/kg/falkordb", help="the built graph to read (python -m kg.build)")
    p.add_argument("--work_dir", default="artifacts/kg")
    args = p.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    from data.cli import quiet_third_party

    quiet_third_party()
    from data.embedding import get_embedder
    from data.loaders import read_split
    from kg.config import KGConfig
    from kg.index import load_index
    from kg.store import StoreConfig, open_store

    out: dict = {}
    if not args.skip_ingest:
        out["ingest"] = bench_ingest(20_000, args.ingest_triples, 500)
    cfg = KGConfig()
    with open_store(StoreConfig(data_dir=args.data_dir)) as store:
        index = load_index(store, args.work_dir)
    eval_file = ROOT / "artifacts" / "data" / "eval.jsonl"
    if eval_file.exists():
        questions = [it.question for it in read_split(eval_file)][: args.queries]
    else:
        questions = ["What is the bias-variance tradeoff?"] * 10
    q_vecs = get_embedder().encode(questions)
    ours = time_ours(index, questions, q_vecs, cfg)
    pyg = time_pyg(index, q_vecs, len(questions))
    out["real_graph"] = {"nodes": len(index.ids), "edges": len(index.edge_src), "ours": pct(ours),
                         "pyg_retrieval_via_pcst": pct(pyg)}

    syn = synthetic_index(args.synthetic_nodes, args.degree, q_vecs.shape[1])
    rng = np.random.default_rng(1)
    targets = rng.integers(0, args.synthetic_nodes, args.queries)
    sq = syn.node_emb[targets] + 0.5 * rng.standard_normal((args.queries, q_vecs.shape[1]),
                                                           dtype=np.float32) / np.sqrt(q_vecs.shape[1])
    sq = (sq / np.linalg.norm(sq, axis=1, keepdims=True)).astype(np.float32)  # as the encoder gives them
    syn_questions = [f"question about synthetic concept {t}?" for t in targets]
    ours_syn = time_ours(syn, syn_questions, sq, cfg)
    pyg_syn = time_pyg(syn, sq, args.pyg_queries)
    out["synthetic_graph"] = {
        "nodes": args.synthetic_nodes, "edges": len(syn.edge_src), "ours": pct(ours_syn),
        "pyg_retrieval_via_pcst": pct(pyg_syn),
        "speedup_p50": round(pct(pyg_syn)["p50_ms"] / pct(ours_syn)["p50_ms"], 1),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
