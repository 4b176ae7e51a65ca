"""scripts/review_sample.py: seeded, shard-stratified samples and the rates of a review record."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("review_sample", ROOT / "scripts" / "review_sample.py")
rs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rs)

POP = {"a.jsonl": [f"a-{i:03d}" for i in range(60)], "b.jsonl": [f"b-{i:03d}" for i in range(30)],
       "c.jsonl": [f"c-{i:03d}" for i in range(10)]}


def test_draw_is_seeded_proportional_and_skips_reviewed_items():
    first = rs.draw(POP, 10, seed=14)
    assert first == rs.draw(POP, 10, seed=14) != rs.draw(POP, 10, seed=15)
    assert [s for s, _ in first].count("a.jsonl") == 6 and [s for s, _ in first].count("c.jsonl") == 1
    again = rs.draw(POP, 10, seed=14, exclude={k for _, k in first})
    assert not {k for _, k in first} & {k for _, k in again}
    with pytest.raises(ValueError, match="only 100 are left"):
        rs.draw(POP, 101, seed=14)


def test_recorded_corpus_sample_is_the_seeded_draw():
    recorded = [json.loads(line)["id"] for line in open(ROOT / "data" / "review" / "corpus_review_2.jsonl")]
    assert [k for _, k in rs.draw(rs.population("corpus"), 300, seed=14)] == recorded


def test_rates_count_verdicts_with_an_interval(tmp_path):
    rows = [{"id": str(i), "shard": "s", "verdict": "correct"} for i in range(97)]
    rows += [{"id": "x", "shard": "t", "verdict": "minor"}, {"id": "y", "shard": "t", "verdict": "wrong"},
             {"id": "z", "shard": "t", "verdict": "correct"}]
    out = rs.rates(rows)
    assert (out["items"], out["correct"], out["minor"], out["wrong"], out["correct_share"]) == (100, 98, 1, 1, 0.98)
    lo, hi = out["correct_share_95ci"]
    assert 0.92 < lo < 0.98 < hi < 1.0
    assert out["by_shard"]["t"]["correct"] == 1
    with pytest.raises(ValueError, match="unknown verdicts"):
        rs.rates([{"id": "q", "verdict": "fine"}])
    bad = tmp_path / "r.jsonl"
    bad.write_text('{"id": "a", "verdict": "correct"}\n{broken\n')
    assert rs.main(["rates", str(bad)]) == 2
