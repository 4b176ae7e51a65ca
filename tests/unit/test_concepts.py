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
