"""Concept coverage, support, retrieval recall and evidence use on hand-made examples."""
import pytest

from evaluation.concepts import concept_scores, mean_scores, recall_bin, wins_and_losses

VOCAB = {"bias": "bias", "variance": "variance", "overfitting": "overfitting", "regularization": "regularization",
         "model complexity": "model-complexity", "hash table": "hash-table"}


def link(text):
    """A stand-in for the KG's linker: whole-phrase matches of a small vocabulary."""
    low = text.lower()
    return [cid for phrase, cid in VOCAB.items() if phrase in low]


def test_coverage_support_recall_and_evidence_use():
    ref = "Bias falls and variance rises as model complexity grows; regularization trades them."
    answer = "More model complexity lowers bias but raises variance, and a hash table is unrelated."
    subgraph = ["bias", "variance", "overfitting"]
    s = concept_scores(answer, ref, subgraph, link)
    # reference: bias, variance, model-complexity, regularization; answer: those minus regularization + hash-table
    assert s["concept_coverage"] == pytest.approx(3 / 4)
    assert s["concept_support"] == pytest.approx(3 / 4)  # hash-table is in neither the reference nor the graph
    assert s["retrieval_recall"] == pytest.approx(2 / 4)  # the subgraph holds bias and variance of the four
    assert s["evidence_use"] == pytest.approx(2 / 3)  # the answer names bias and variance, not overfitting
    assert s["concepts"]["missed"] == ["regularization"]


def test_undefined_scores_are_none_and_left_out_of_means():
    s = concept_scores("", "A sentence naming no concept at all.", [], link)
    assert s["concept_coverage"] is None and s["retrieval_recall"] is None
    assert s["concept_support"] is None and s["evidence_use"] is None
    other = {"concept_coverage": 0.5, "concept_support": 1.0, "retrieval_recall": 0.0, "evidence_use": 0.25}
    means = mean_scores([s, other])
    assert means["concept_coverage"] == 0.5 and means["concept_coverage_n"] == 1


def test_wins_and_losses_by_group():
    a = [{"x": 0.1, "g": "cs"}, {"x": 0.5, "g": "cs"}, {"x": 0.2, "g": "ai"}, {"x": None, "g": "ai"}]
    b = [{"x": 0.3, "g": "cs"}, {"x": 0.5, "g": "cs"}, {"x": 0.1, "g": "ai"}, {"x": 0.9, "g": "ai"}]
    out = wins_and_losses(a, b, "x", key=lambda r: r["g"])
    assert out == {"ai": {"wins": 0, "losses": 1, "ties": 0}, "cs": {"wins": 1, "losses": 0, "ties": 1}}
    bins = [recall_bin(v) for v in (None, 0.0, 0.3, 0.5, 1.0)]
    assert bins == ["no reference concepts", "0", "(0, 0.5)", "[0.5, 1)", "1"]


def _rows(system, answers, subgraphs=None):
    from tests.fixtures.study import ITEMS

    rows = []
    for it, a in zip(ITEMS, answers):
        r = {"id": it.id, "system": system, "domain": it.domain, "question": it.question, "reference": it.answer,
             "prediction": a, "raw_prediction": a, "stop_reason": "eos", "new_tokens": 10}
        if subgraphs is not None:
            r["subgraph"] = {"nodes": [{"id": c} for c in subgraphs[it.id]]}
            r["graph_fallback"] = False
        rows.append(r)
    return rows


def test_scores_reach_rows_comparisons_report_and_page(tmp_path):
    """The whole path with the graph's linker: per-item scores in the rows, paired comparisons, report.md's
    section and report.html's, computed from the concept graph index and nothing hand-fed."""
    from evaluation.report import report_markdown, write_reports
    from evaluation.scoring import score
    from tests.fixtures.study import ITEMS, tiny_index

    index = tiny_index()
    plain = ["It is a kind of list.", "It looks at every element.", "You retry later."]
    finetuned = ["A hash table uses a hash function.", "Binary search needs a sorted array.",
                 "A collision is handled by chaining."]
    sub = {"cs-1": ["hash-table", "hash-function", "collision"], "cs-2": ["binary-search", "sorted-array"],
           "cs-3": ["collision", "hash-table"]}
    all_rows = {"plain": _rows("plain", plain), "finetuned": _rows("finetuned", finetuned),
                "graph": _rows("graph", finetuned[:2] + ["Collisions in a hash table: chaining."], sub)}
    scores = score(all_rows, index, [it.answer for it in ITEMS])
    c = scores.concepts
    assert c["items_with_subgraph"] == 3
    # plain names none of the references' concepts; the others name some
    assert c["means"]["plain"]["concept_coverage"] == 0.0
    assert c["means"]["finetuned"]["concept_coverage"] > 0.3
    assert all(r["concepts"]["reference"] for r in all_rows["finetuned"])
    assert all_rows["plain"][0]["retrieval_recall"] == all_rows["graph"][0]["retrieval_recall"] is not None
    comp = scores.comparisons["finetuned vs plain"]["concept_coverage"]
    assert comp["diff"] > 0 and comp["n"] == 3
    assert "retrieval_recall" not in scores.comparisons["graph vs finetuned"]  # the same for every system
    assert set(c["breakdown"]["graph vs finetuned"]["by_domain"]) == {"cs"}
    md = report_markdown(scores, 3)
    assert "Concepts named" in md and "| finetuned |" in md and "graph vs finetuned, concept coverage" in md
    write_reports(tmp_path, all_rows, scores, {"n_items": 3}, md)
    import json

    assert json.loads((tmp_path / "metrics.json").read_text())["concepts"]["means"]["graph"]["concept_coverage_n"] == 3
    page = (tmp_path / "report.html").read_text()
    assert 'id="concepts"' in page and "evidence use" in page and "concept_coverage" in page


def test_without_a_graph_system_subgraph_scores_are_none():
    from evaluation.scoring import score
    from tests.fixtures.study import ITEMS, tiny_index

    all_rows = {"plain": _rows("plain", ["A hash table.", "Binary search.", "Chaining."])}
    scores = score(all_rows, tiny_index(), [it.answer for it in ITEMS])
    assert scores.concepts["means"]["plain"]["retrieval_recall"] is None
    assert scores.concepts["means"]["plain"]["concept_support"] is not None
