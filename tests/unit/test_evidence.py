"""Question-ranked, compact textual evidence, and evidence dropout's draw."""
from types import SimpleNamespace

from kg.schema import Subgraph, SubgraphEdge, SubgraphNode
from kg.textualize import evidence_lines, ranked_edges
from training.graph_inputs import evidence_dropout


def node(cid, score, definition=""):
    return SubgraphNode(cid, cid.replace("-", " "), f"{cid.replace('-', ' ')}: {definition}" if definition else cid,
                        score, "test")


def test_edges_touching_seeds_and_similar_concepts_come_first_and_symmetric_pairs_once():
    nodes = [node("bm25", 0.9, "a ranking function."), node("tf-idf", 0.7), node("dense-retrieval", 0.2),
             node("sparse-retrieval", 0.3)]
    edges = [SubgraphEdge(2, "CONTRASTS_WITH", 3, ""), SubgraphEdge(3, "CONTRASTS_WITH", 2, ""),
             SubgraphEdge(0, "RELATED_TO", 2, ""), SubgraphEdge(0, "USES", 1, ""), SubgraphEdge(0, "IS_A", 3, "")]
    sg = Subgraph("How does BM25 score a document?", nodes, edges, ["bm25"], 2, None)
    order = [(e.head, e.relation, e.tail) for e in ranked_edges(sg)]
    # seed edges first (typed before RELATED_TO, more similar first), then the contrast stated once
    assert order == [(0, "USES", 1), (0, "IS_A", 3), (0, "RELATED_TO", 2), (2, "CONTRASTS_WITH", 3)]
    lines = evidence_lines(sg, max_triples=2, max_definitions=1)
    assert lines == ["[1] bm25: a ranking function.", "[2] bm25 uses tf idf", "[3] bm25 is a kind of sparse retrieval"]


def test_evidence_dropout_is_a_fixed_share_for_a_seed():
    items = [SimpleNamespace(id=f"q{i}") for i in range(40)]
    a = evidence_dropout(items, 0.25, seed=42)
    assert len(a) == 10 and a == evidence_dropout(list(reversed(items)), 0.25, seed=42)
    assert a != evidence_dropout(items, 0.25, seed=43)
    assert evidence_dropout(items, 0.0, seed=42) == frozenset()


def test_the_evidence_budget_has_one_default():
    """A caller of GraphContext.prompts that names no limits gets what the model trains and answers with."""
    import inspect

    from model.graph_config import GraphPromptConfig
    from prompting.graph_prompt import GraphContext

    params = inspect.signature(GraphContext.prompts).parameters
    assert {k: params[k].default for k in ("max_triples", "max_definitions", "max_paths")} == \
        GraphPromptConfig().evidence_limits() == {"max_triples": 5, "max_definitions": 2, "max_paths": 1}
