import numpy as np
import pytest

from evaluation.report import comparison_table
from evaluation.scoring import compare_systems
from evaluation.significance import paired_bootstrap


def test_a_clear_improvement_is_significant():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 0.2, 60)
    b = a + 0.05 + rng.normal(0, 0.01, 60)
    r = paired_bootstrap(a.tolist(), b.tolist())
    assert r["diff"] == pytest.approx(0.05, abs=0.01)
    assert 0 < r["ci_low"] < r["diff"] < r["ci_high"] and r["p_value"] < 0.001


def test_noise_is_not_significant_and_the_interval_covers_zero():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, 40)
    b = a + rng.normal(0, 0.1, 40)
    r = paired_bootstrap(a.tolist(), b.tolist())
    assert r["ci_low"] < 0 < r["ci_high"] or r["p_value"] > 0.05


def test_deterministic_and_checked():
    assert paired_bootstrap([0.1, 0.2, 0.3], [0.2, 0.2, 0.5]) == paired_bootstrap([0.1, 0.2, 0.3], [0.2, 0.2, 0.5])
    with pytest.raises(ValueError, match="equal"):
        paired_bootstrap([0.1], [0.1, 0.2])


def test_systems_are_compared_with_the_first():
    rows = {
        "plain": [{"reference": "a hash table maps keys to values", "prediction": "it stores things"}] * 5,
        "finetuned": [{"reference": "a hash table maps keys to values",
                       "prediction": "a hash table maps keys to values"}] * 5,
    }
    comp = compare_systems(rows)
    c = comp["finetuned vs plain"]["rougeL"]
    assert c["mean_b"] == pytest.approx(1.0) and c["diff"] > 0.5
    assert "| finetuned vs plain | rougeL |" in comparison_table(comp)


def test_graph_systems_are_also_compared_with_the_finetuned_model():
    from evaluation.scoring import compare_systems

    def rows(system, words):
        return [{"id": f"q{i}", "system": system, "domain": "ai", "reference": "the cat sat on the mat today",
                 "prediction": w, "stop_reason": "eos"} for i, w in enumerate(words)]

    all_rows = {
        "plain": rows("plain", ["dogs run far", "a b c", "nothing here", "x y"]),
        "finetuned": rows("finetuned", ["the cat sat", "the mat", "cat on mat", "the cat today"]),
        "graph": rows("graph",
                      ["the cat sat on the mat", "the cat sat on the mat today",
                       "cat sat on the mat", "the mat today"]),
    }
    comps = compare_systems(all_rows)
    assert list(comps) == ["finetuned vs plain", "graph vs plain", "graph vs finetuned"]
    g = comps["graph vs finetuned"]["rougeL"]
    assert g["mean_a"] == comps["finetuned vs plain"]["rougeL"]["mean_b"] and g["diff"] > 0


def test_wilson_interval_of_the_second_corpus_review():
    from evaluation.significance import wilson_interval

    lo, hi = wilson_interval(294, 300)
    assert round(lo, 4) == 0.9571 and round(hi, 4) == 0.9908  # data/review/README.md: 95.7-99.1%
    assert wilson_interval(0, 0) == (0.0, 0.0)
    lo, hi = wilson_interval(5, 10)
    assert abs((lo + hi) / 2 - 0.5) < 1e-12 and 0.23 < lo < 0.24  # symmetric about one half
