import math

import pytest

from evaluation.geval.judges import LocalJudge
from evaluation.geval.prompts import PROMPTS, parse_score, probability_weighted, render, sampled_mean


def test_study_prompts_are_the_studys():
    v1, v2 = PROMPTS["study_v1"], PROMPTS["study_v2"]
    assert "1. Review the question and answer provided carefully to understand the context." in v1
    assert "- 3: Fair. Some elements of the answer lack factual support or contain minor inconsistencies" in v2
    for p in (v1, v2):
        assert p.startswith("You will be given one question and one answer.") and p.endswith("- Factual Consistency:")
    text = render("reference", "Q?", "A.", "R.")
    assert "Reference answer:\nR." in text and "Candidate answer:\nA." in text
    with pytest.raises(ValueError):
        render("nope", "q", "a")


def test_probability_weighted_equals_the_hand_computed_sum():
    # top log-probabilities as an API returns them, with non-score tokens and a duplicate " 4"
    lps = {"4": math.log(0.5), " 4": math.log(0.1), "5": math.log(0.2), "3": math.log(0.1), "The": math.log(0.05),
           "1": math.log(0.05)}
    # p over score tokens: 1: .05, 3: .1, 4: .6, 5: .2 -> total .95; sum p*s = .05 + .3 + 2.4 + 1.0 = 3.75
    assert probability_weighted(lps) == pytest.approx(3.75 / 0.95)
    assert probability_weighted({"Hello": -0.1}) is None


def test_sampling_scores_as_the_study_did():
    assert parse_score(" 4") == 4 and parse_score("Score: 5.0") == 5 and parse_score("none") is None
    assert parse_score("17") is None
    assert sampled_mean(["4", " 5", "x", "3"]) == (4.0, 3)


def test_local_judge_on_a_tiny_model(tiny_model, tokenizer):
    judge = LocalJudge(tiny_model, tokenizer)
    prompt = render("study_v2", "What is a heap?", "A heap is a tree.")
    j = judge.judge(prompt, "probability")
    assert 1.0 <= j.score <= 5.0 and set(j.detail["logprobs"]) == {"1", "2", "3", "4", "5"}
    s = judge.judge(prompt, "sampling", n=4)
    assert len(s.detail["samples"]) == 4 and (s.score is None or 1 <= s.score <= 5)
