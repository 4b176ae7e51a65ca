import numpy as np
import pytest

from kg.config import KGConfig
from kg.index import RELATION_LIST, GraphIndex
from kg.retrieval import pcst_prizes, retrieve_subgraph, run_pcst
from kg.textualize import evidence_lines, evidence_text, to_pyg


def test_pcst_known_answer_on_a_tiny_graph():
    # path 0-1-2-3 plus a branch 1-4; prizes on 0 and 3 only
    edges = np.array([[0, 1], [1, 2], [2, 3], [1, 4]])
    prizes = np.array([3.0, 0, 0, 2.0, 0])
    nodes, chosen = run_pcst(5, edges, prizes, np.zeros(4), cost=0.5)
    assert nodes.tolist() == [0, 1, 2, 3] and sorted(chosen.tolist()) == [0, 1, 2]
    # too expensive to reach node 3: only node 0 is worth it
    nodes, _ = run_pcst(5, edges, prizes, np.zeros(4), cost=3.0)
    assert nodes.tolist() == [0]


def test_pcst_edge_prizes_become_virtual_nodes():
    edges = np.array([[0, 1], [1, 2]])
    nodes, chosen = run_pcst(3, edges, np.array([1.0, 0, 0]), np.array([0.0, 2.0]), cost=0.5)
    assert nodes.tolist() == [0, 1, 2] and sorted(chosen.tolist()) == [0, 1]


def test_prizes_follow_g_retriever():
    n, e, cost = pcst_prizes(np.array([0.1, 0.9, 0.5, 0.7]), np.array([0.3, 0.8, 0.8]),
                             KGConfig(pcst_node_topk=3, pcst_edge_topk=2))
    assert n.tolist() == [0.0, 3.0, 1.0, 2.0]
    # two edges share the top value: 2/2 each; the next level min(1/1, 0.99 - 0.01)
    assert e[1] == e[2] == pytest.approx(1.0) and e[0] == pytest.approx(0.98)
    assert cost == 0.5


def unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def index():
    # heap - priority queue - dijkstra ; heap - binary tree ; hash table isolated from them
    names = ["heap", "priority queue", "Dijkstra's algorithm", "binary tree", "hash table", "p-value"]
    ids = ["heap", "priority-queue", "dijkstra", "binary-tree", "hash-table", "p-value"]
    emb = np.stack([unit([1, 0.2, 0, 0]), unit([0.9, 0.4, 0, 0]), unit([0.3, 1, 0, 0]), unit([0.6, 0, 0.8, 0]),
                    unit([0, 0, 1, 0.1]), unit([0, 0, 0, 1])])
    src, dst, rel = [1, 2, 0], [0, 1, 3], ["IS_A", "USES", "RELATED_TO"]
    idx = GraphIndex(ids=ids, names=names, definitions=["def " + n for n in names], aliases=[[] for _ in ids],
                     node_emb=emb, edge_src=np.array(src), edge_dst=np.array(dst),
                     edge_rel=np.array([RELATION_LIST.index(r) for r in rel]),
                     edge_conf=np.ones(3, dtype=np.float32))
    idx.edge_emb = np.stack([emb[s] + emb[d] for s, d in zip(src, dst)])
    idx.edge_emb /= np.linalg.norm(idx.edge_emb, axis=1, keepdims=True)
    return idx


def test_retrieval_links_expands_and_explains(index):
    cfg = KGConfig(hops=2, seed_top_k=0, min_nodes=0, max_nodes=10, max_neighbourhood=10)
    sg = retrieve_subgraph(index, "How does Dijkstra's algorithm use a heap?", cfg, q_vec=unit([0.5, 1, 0, 0]))
    ids = [n.id for n in sg.nodes]
    assert sg.seeds == ["dijkstra", "heap"]
    assert {"dijkstra", "heap", "priority-queue"} <= set(ids) and "hash-table" not in ids
    assert sg.paths == [["dijkstra", "priority-queue", "heap"]]
    reasons = {n.id: n.reason for n in sg.nodes}
    assert reasons["heap"].startswith("seed: named") and reasons["priority-queue"] == "on a path between seed concepts"
    rels = {(sg.nodes[e.head].id, e.relation, sg.nodes[e.tail].id) for e in sg.edges}
    assert ("priority-queue", "IS_A", "heap") in rels and ("dijkstra", "USES", "priority-queue") in rels
    lines = evidence_lines(sg)
    assert lines[0].startswith("[1] ") and any("Dijkstra's algorithm uses priority queue" in line for line in lines)
    assert any(line.endswith("path: Dijkstra's algorithm - priority queue - heap") for line in lines)


def test_pcst_off_keeps_the_most_similar_neighbourhood(index):
    cfg = KGConfig(hops=2, seed_top_k=0, min_nodes=0, max_nodes=3, max_neighbourhood=10, pcst=False)
    sg = retrieve_subgraph(index, "what is a heap", cfg, q_vec=unit([1, 0, 0.3, 0]))
    assert sg.pcst is None and [n.id for n in sg.nodes] == ["heap", "priority-queue", "binary-tree"]


def test_neighbour_growth_after_pcst(index):
    # costly edges and one prize: PCST keeps the seed alone, so growth has room to act
    tight = dict(hops=2, seed_top_k=0, max_nodes=10, max_neighbourhood=10, pcst_node_topk=1, pcst_edge_topk=0,
                 pcst_edge_cost=10.0)
    small = retrieve_subgraph(index, "what is a heap", KGConfig(min_nodes=0, **tight), q_vec=unit([1, 0, 0.3, 0]))
    grown = retrieve_subgraph(index, "what is a heap", KGConfig(min_nodes=3, **tight), q_vec=unit([1, 0, 0.3, 0]))
    assert [n.id for n in small.nodes] == ["heap"]
    # the two neighbours of heap, the more question-similar first; dijkstra is two hops away and not needed
    assert [n.id for n in grown.nodes] == ["heap", "priority-queue", "binary-tree"]
    assert all(n.reason.startswith("neighbour of the selection") for n in grown.nodes[1:])


def test_unknown_question_gives_an_empty_subgraph_and_no_evidence(index):
    sg = retrieve_subgraph(index, "Who won the football match?", KGConfig(seed_min_similarity=0.99),
                           q_vec=unit([0.5, 0.5, 0.5, 0.5]))
    assert sg.empty and evidence_lines(sg) == [] and evidence_text(sg) == ""


def test_pyg_conversion_and_cache(index, tmp_path):
    cfg = KGConfig(hops=2, seed_top_k=0, min_nodes=0, max_nodes=10, max_neighbourhood=10)
    sg = retrieve_subgraph(index, "How does Dijkstra's algorithm use a heap?", cfg, q_vec=unit([0.5, 1, 0, 0]))
    calls = []

    def embed(texts):
        calls.append(len(texts))
        return np.ones((len(texts), 4), dtype=np.float32)

    data = to_pyg(sg, embed, tmp_path, "digest")
    assert data.x.shape == (len(sg.nodes), 4) and data.edge_index.shape == (2, len(sg.edges))
    assert data.edge_attr.shape[0] == len(sg.edges) and data.edge_type.max() < len(RELATION_LIST)
    n_calls = len(calls)
    again = to_pyg(sg, embed, tmp_path, "digest")  # from the cache: no new embedding calls
    assert len(calls) == n_calls and (again.edge_index == data.edge_index).all()
