import numpy as np
import pytest

from evaluation.run import compare_systems, comparison_table
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
        "finetuned": [{"reference": "a hash table maps keys to values", "prediction": "a hash table maps keys to values"}] * 5,
    }
    comp = compare_systems(rows)
    c = comp["finetuned vs plain"]["rougeL"]
    assert c["mean_b"] == pytest.approx(1.0) and c["diff"] > 0.5
    assert "| finetuned vs plain | rougeL |" in comparison_table(comp)
