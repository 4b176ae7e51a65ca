"""Judge sanity statistics and verdicts on fixed numbers; G-Eval in an evaluation (evaluation.geval.runner) with
scripted judges (an oracle, a judge that cannot tell, one whose endpoint is down) and the report it feeds."""
import json
from dataclasses import asdict

import pytest

from data.schema import QAItem
from evaluation.config import EvalConfig
from evaluation.geval.config import JudgeConfig
from evaluation.geval.judges import JudgeError
from evaluation.geval.prompts import judgement_from_logprobs
from evaluation.geval.sanity import (
    MIN_SEPARATION,
    planted_rows,
    separation_stats,
    sign_test_p,
    spearman,
    verdict_warning,
)


def test_sign_test_p_is_the_exact_one_sided_binomial_tail():
    assert sign_test_p(18, 12) == pytest.approx(0.18080, abs=1e-5)  # the bundled model's 18 of 30
    assert sign_test_p(6, 0) == 1 / 64 and sign_test_p(5, 1) == 7 / 64
    assert sign_test_p(21, 9) == pytest.approx(0.02139, abs=1e-5)
    assert sign_test_p(0, 0) == 1.0 and sign_test_p(0, 3) == 1.0


def pairs(wins, losses, ties=0):
    """Good and bad score lists with that many wins, losses and ties."""
    good = [4.0] * wins + [2.0] * losses + [3.0] * ties
    bad = [2.0] * wins + [4.0] * losses + [3.0] * ties
    return good, bad


def test_the_bundled_models_18_of_30_does_not_separate():
    s = separation_stats(*pairs(18, 12))
    assert (s["wins"], s["losses"], s["ties"], s["n_pairs"]) == (18, 12, 0, 30)
    assert s["separation"] == pytest.approx(0.6) and s["sign_test_p"] == pytest.approx(0.1808, abs=1e-4)
    assert s["verdict"] == "does not separate"
    assert s["reference_mean"] == pytest.approx((18 * 4 + 12 * 2) / 30) and s["mean_difference"] == pytest.approx(0.4)
    w = verdict_warning("study_v2/probability", s, "bundled")
    assert w.startswith("study_v2/probability:") and "does not separate good from bad answers" in w
    assert "18 of 30" in w and "not a quality measure" in w


def test_verdicts_need_both_separation_and_significance():
    assert separation_stats(*pairs(27, 3))["verdict"] == "separates"
    assert verdict_warning("c", separation_stats(*pairs(27, 3)), "j") is None
    s = separation_stats(*pairs(21, 9))  # exactly the 0.7 threshold and p = 0.021
    assert s["separation"] == pytest.approx(MIN_SEPARATION) and s["verdict"] == "separates"
    # ties count against the judge: 20 wins, 2 losses, 8 ties is significant by the sign test, separation 0.67
    s = separation_stats(*pairs(20, 2, 8))
    assert s["sign_test_p"] < 0.001 and s["separation"] == pytest.approx(20 / 30)
    assert s["verdict"] == "does not separate"
    # a weak judge over many pairs: p < 0.05 alone would pass it
    s = separation_stats(*pairs(120, 80))
    assert s["sign_test_p"] < 0.05 and s["verdict"] == "does not separate"
    assert separation_stats(*pairs(6, 0))["verdict"] == "separates"  # 6 of 6: p = 1/64
    assert separation_stats(*pairs(5, 1))["verdict"] == "does not separate"  # p = 0.11


def test_too_few_scored_pairs_is_inconclusive_and_unscored_pairs_are_left_out():
    s = separation_stats([5.0, 5.0, 5.0, 5.0, None, 5.0], [1.0, 1.0, 1.0, 1.0, 1.0, None])
    assert (s["n_planted"], s["n_pairs"], s["n_unscored"], s["wins"]) == (6, 4, 2, 4)
    assert s["verdict"] == "inconclusive" and "inconclusive" in verdict_warning("c", s, "j")
    s = separation_stats([None, None], [None, None])
    assert s["n_pairs"] == 0 and s["separation"] is None and s["reference_mean"] is None
    assert s["verdict"] == "inconclusive"
    with pytest.raises(ValueError):
        separation_stats([1.0], [1.0, 2.0])


ITEMS = [QAItem(f"{d}-{i}", d, f"Question {d} {i}?",
                f"Answer about {d} number {i}.") for d in ("cs", "stats", "ai") for i in range(4)]


def test_planted_rows_pair_each_question_with_its_reference_and_another_answer():
    good, bad = planted_rows(ITEMS, 6, seed=3)
    assert len(good) == len(bad) == 6
    assert {r["domain"] for r in good} == {"cs", "stats", "ai"}  # stratified over domains
    by_id = {it.id: it for it in ITEMS}
    ids = {g["id"] for g in good}
    for g, b in zip(good, bad):
        assert g["id"] == b["id"] and g["prediction"] == g["reference"] == by_id[g["id"]].answer
        assert b["prediction"] != b["reference"] and b["answer_from"] in ids and b["answer_from"] != b["id"]
    assert sorted(b["answer_from"] for b in bad) == sorted(ids)  # a shuffle: every answer used once
    assert planted_rows(ITEMS, 6, seed=3) == (good, bad)  # seeded
    assert planted_rows(ITEMS, 40)[0].__len__() == len(ITEMS)  # more asked than there are: all of them
    assert planted_rows(ITEMS, 0) == ([], []) and planted_rows(ITEMS[:1], 5) == ([], [])


def test_spearman_and_its_undefined_cases():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40])["rho"] == pytest.approx(1.0)
    r = spearman([1, 2, None, 3, 4], [4, 3, 9, None, 1])
    assert r["n"] == 3 and r["rho"] == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2])["rho"] is None
    assert spearman([3, 3, 3], [1, 2, 3])["why_none"] == "constant scores"


def test_judge_config_names_its_conflicts_at_once_and_nests_in_eval_config():
    with pytest.raises(ValueError) as err:
        JudgeConfig(kind="gpt", sanity=1, prompts=["study_v3"], methods=["vibes"], concurrency=0)
    msg = str(err.value)
    for part in ("kind must be one of", "sanity", "prompts", "methods", "concurrency"):
        assert part in msg
    with pytest.raises(ValueError, match="base_url is for --judge.kind openai"):
        JudgeConfig(kind="local", base_url="http://x/v1")
    with pytest.raises(ValueError, match="quantization is for --judge.kind local"):
        JudgeConfig(kind="openai", quantization="none")
    with pytest.raises(ValueError, match="given without a judge"):
        JudgeConfig(model="bundled")
    cfg = EvalConfig(systems=["plain"], judge={"kind": "openai", "prompts": ["study_v1,reference"], "model": "m"})
    assert cfg.judge.prompts == ["study_v1", "reference"] and cfg.judge.model == "m"
    assert "api_key" not in json.dumps(asdict(cfg))  # EvalConfig goes to metrics.json: it has no key field at all


def test_judge_flags_nest_under_eval_and_old_flat_settings_still_read():
    import argparse

    from data.cli import add_dataclass_args, dataclass_from_args
    from evaluation.config import upgrade_eval_section

    p = argparse.ArgumentParser()
    add_dataclass_args(p, EvalConfig, "eval")
    args = p.parse_args(["--eval.judge.kind", "local", "--eval.judge.methods", "probability", "sampling",
                         "--eval.systems", "plain"])
    cfg = dataclass_from_args(EvalConfig, args, "eval", {"judge": {"sanity": 6}})
    assert (cfg.judge.kind, cfg.judge.methods, cfg.judge.sanity) == ("local", ["probability", "sampling"], 6)
    old = {"systems": ["plain"], "judge": "openai", "judge_model": "m", "judge_sanity": 0, "sample": 3}
    assert upgrade_eval_section(old) == {"systems": ["plain"], "sample": 3,
                                         "judge": {"kind": "openai", "model": "m", "sanity": 0}}
    assert EvalConfig(**upgrade_eval_section(old)).judge.model == "m"


# -- G-Eval in an evaluation, with scripted judges ------------------------------------------------------------

REFS = {it.question: it.answer for it in ITEMS}


def answer_and_question(prompt: str) -> tuple[str, str]:
    question = prompt.split("Question:\n", 1)[1].split("\n", 1)[0]
    answer = prompt.rsplit("nswer:\n", 1)[1].split("\n\nEvaluation Form", 1)[0]
    return question, answer


class ScriptedJudge:
    """score(question, answer) -> float, or raises; counts what it is asked."""

    max_workers = 1

    def __init__(self, score, name="scripted"):
        self.score, self.name, self.asked = score, name, 0

    def cache_identity(self):
        return {"model": self.name, "base_url": "test:"}

    def method_settings(self, method):
        return {}

    def judge(self, prompt, method="probability"):
        self.asked += 1
        s = self.score(*answer_and_question(prompt))
        return judgement_from_logprobs({str(s): 0.0}, usage={"prompt_tokens": 10, "completion_tokens": 1})


def oracle(question, answer):
    return 5 if REFS.get(question) == answer else 1


def system_rows():
    plain = [{"id": it.id, "system": "plain", "domain": it.domain, "question": it.question, "reference": it.answer,
              "prediction": "I do not know."} for it in ITEMS[:4]]
    tuned = [{**r, "system": "finetuned", "prediction": r["reference"]} for r in plain]
    return {"plain": plain, "finetuned": tuned}


def zero_metrics():
    from evaluation.report import DEGENERATION_COLUMNS, STUDY_COLUMNS

    one = {}
    for _, group, key in STUDY_COLUMNS + DEGENERATION_COLUMNS:
        one.setdefault(group, {})[key] = 0.0
    return {"plain": one, "finetuned": one}


@pytest.fixture
def no_bertscore(monkeypatch):
    """Agreement with BERTScore without loading a model: a stand-in per-item score (word overlap)."""
    import evaluation.metrics as metrics

    def overlap(rows):
        return [len(set(r["prediction"].split()) & set(r["reference"].split())) / 10 for r in rows]

    monkeypatch.setattr(metrics, "bertscore_items", overlap)


def run(judge, tmp_path, sanity=6, **kw):
    from evaluation.geval.runner import run_geval

    jc = JudgeConfig(kind="local", prompts=["study_v2", "reference"], sanity=sanity, cache_dir=str(tmp_path / "cache"),
                     **kw)
    rows = system_rows()
    geval = run_geval(jc, judge, {"kind": "scripted"}, rows, ITEMS, tmp_path, progress=False)
    return geval, rows


def test_a_judge_that_separates_gets_scores_intervals_and_no_warning(tmp_path, no_bertscore):
    from evaluation.report import geval_markdown, markdown_table

    judge = ScriptedJudge(oracle)
    geval, rows = run(judge, tmp_path)
    assert geval["judge"] == "scripted" and geval["baseline"] == "plain" and "warning" not in geval
    ctx = geval["study_v2/probability"]
    assert ctx["plain"]["mean"] == 1 and ctx["finetuned"]["mean"] == 5 and ctx["verdict"] == "separates"
    assert ctx["finetuned"]["vs_baseline"]["diff"] == 4 and ctx["finetuned"]["vs_baseline"]["n"] == 4
    assert ctx["plain"]["n_scored"] == 4 and ctx["plain"]["n_failed"] == 0 and ctx["plain"]["failures"] == []
    s = geval["sanity"]["reference/probability"]
    assert (s["wins"], s["n_pairs"], s["separation"], s["reference_mean"], s["shuffled_mean"]) == (6, 6, 1.0, 5, 1)
    assert rows["finetuned"][0]["geval_study_v2_probability"] == 5  # per-item scores merged into the rows
    agree = geval["agreement"]["with_reference_metrics"]["study_v2/probability"]
    assert agree["rougeL"]["rho"] > 0.8 and agree["rougeL"]["n"] == 8
    between = geval["agreement"]["between_contexts"]
    assert between["study_v2/probability ~ reference/probability"]["rho"] == pytest.approx(1.0)
    total = geval["usage"]["total"]
    assert total["n_items"] == 2 * 4 * 2 + 2 * 6 * 2 and total["n_asked"] == judge.asked
    assert total["tokens"]["total"] == 11 * judge.asked
    assert len((tmp_path / "geval_sanity.jsonl").read_text().splitlines()) == 12
    table = markdown_table(zero_metrics(), 4, geval) + geval_markdown(geval)
    assert "G-Eval study_v2/probability |" in table and "| 5.000 |" in table and "†" not in table
    assert "| separates |" in table

    again = ScriptedJudge(oracle)  # the same judgements again: all from the cache
    geval2, _ = run(again, tmp_path)
    assert again.asked == 0 and geval2["usage"]["total"]["n_asked"] == 0
    assert geval2["study_v2/probability"]["finetuned"]["mean"] == 5


def test_a_judge_that_cannot_tell_is_flagged_next_to_its_scores(tmp_path, no_bertscore):
    from evaluation.html_report import render_page
    from evaluation.report import geval_markdown, markdown_table

    geval, rows = run(ScriptedJudge(lambda q, a: 3, name="flat"), tmp_path)
    assert geval["study_v2/probability"]["verdict"] == "does not separate"
    assert geval["sanity"]["study_v2/probability"]["ties"] == 6
    assert len(geval["warning"]) == 2 and all("does not separate good from bad answers" in w for w in geval["warning"])
    assert geval["agreement"]["with_reference_metrics"]["study_v2/probability"]["rougeL"]["rho"] is None  # constant
    table = markdown_table(zero_metrics(), 4, geval)
    assert "G-Eval study_v2/probability † |" in table and "3.000†" in table
    assert "† study_v2/probability: judge flat" in table
    assert "**Warning.** reference/probability: judge flat does not separate" in geval_markdown(geval)
    summary = {"config": {"systems": ["plain", "finetuned"]}, "metrics": {}, "geval": geval}
    page = render_page(summary, [r for rs in rows.values() for r in rs])
    assert "does not separate good from bad answers" in page and "G-Eval study_v2_probability †: 3.00" in page


def test_an_endpoint_that_fails_costs_items_not_the_run(tmp_path, no_bertscore):
    def down(question, answer):
        raise JudgeError("server_error", "HTTP 503", attempts=3)

    geval, rows = run(ScriptedJudge(down), tmp_path)
    ctx = geval["study_v2/probability"]
    assert ctx["plain"]["mean"] is None and ctx["plain"]["n_failed"] == 4
    assert ctx["plain"]["failures"][0]["error"] == "server_error"
    assert ctx["verdict"] == "inconclusive" and "finetuned" in ctx and ctx["finetuned"]["vs_baseline"]["n"] == 0
    assert rows["plain"][0]["geval_study_v2_probability"] is None
    assert any("inconclusive" in w for w in geval["warning"])
    assert any("judgements failed" in w for w in geval["warning"])
    # the endpoint is back: a rerun asks for everything that failed, and nothing else
    back = ScriptedJudge(oracle)
    geval2, _ = run(back, tmp_path)
    total = geval2["usage"]["total"]
    assert total["n_failed"] == 0 and "warning" not in geval2
    # (a planted good answer that equals a system's answer is the same judgement: cached by the earlier call)
    assert back.asked == total["n_asked"] and total["n_asked"] + total["n_cached"] == 2 * 8 + 2 * 12


def test_sanity_off_says_the_scores_are_unvalidated(tmp_path, no_bertscore):
    geval, _ = run(ScriptedJudge(oracle), tmp_path, sanity=0)
    assert "sanity" not in geval and "not validated as a quality measure" in geval["warning"][0]
