"""G-Eval as the study ran it and as the paper defines it.

Prompts: the study's two judge prompts, verbatim (the first, and the rubric one it moved to because
the first was too lenient), plus a reference-aware variant of the rubric prompt (the answer judged
against the reference answer, since consistency "with the question" alone rewards fluent nonsense).
Scoring:
- "probability" (the G-Eval paper): score = sum over s in 1..5 of p(s) * s, with p the judge's
  probabilities for the score token, renormalised over the five score tokens;
- "sampling" (the study): n samples at temperature 2, top_p 1; the mean of the parsed scores.
Both judges (evaluation.geval.judges) turn what they got back into a score through `judgement_from_logprobs` /
`judgement_from_samples`, so the two scorings exist once.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

PROMPT_HEADER = (
    "You will be given one question and one answer. Your task is to rate the answer on one metric. "
    "Please make sure you read and understand these instructions carefully. Please keep this document "
    "open while reviewing, and refer to it as needed.\n\n"
    "Evaluation Criteria:\n"
    "Factual Consistency (1-5): Does the answer contain untruthful or misleading facts that are not supported by the "
    "question?\n\n"
)
EXAMPLE = "Example:\nQuestion:\n{question}\nAnswer:\n{answer}\n\nEvaluation Form (scores ONLY):\n- Factual Consistency:"

STUDY_PROMPT_V1 = PROMPT_HEADER + (
    "Evaluation Steps:\n"
    "1. Review the question and answer provided carefully to understand the context.\n"
    "2. Evaluate the given answer's factual consistency based on whether the information aligns with or contradicts "
    "the question.\n"
    "3. Rate the factual consistency of the answer on a scale of 1 to 5, where 1 indicates a low level and 5 indicates "
    "a high level of consistency with the question.\n\n"
) + EXAMPLE

RUBRIC = (
    "Evaluation Method:\n"
    "Rate the factual consistency of the answer on a scale of 1 to 5, where 1 indicates a low level and 5 indicates "
    "a high level of consistency with the question.\n"
    "- 1: Poor. The answer contains multiple inaccuracies or misleading details.\n"
    "- 3: Fair. Some elements of the answer lack factual support or contain minor inconsistencies, but the majority "
    "aligns with the question's context.\n"
    "- 5: Good. The answer is factually consistent, presenting information supported by the question without any "
    "misleading details.\n\n"
)
STUDY_PROMPT_V2 = PROMPT_HEADER + RUBRIC + EXAMPLE

REFERENCE_PROMPT = (
    "You will be given one question, a reference answer and a candidate answer. Your task is to rate the candidate "
    "answer on one metric.\n\n"
    "Evaluation Criteria:\n"
    "Factual Consistency (1-5): Does the candidate answer contain untruthful or misleading facts, judged against the "
    "reference answer?\n\n"
    "- 1: Poor. The answer contradicts the reference or contains multiple inaccuracies.\n"
    "- 3: Fair. Some statements are unsupported by the reference or slightly wrong, but most agree with it.\n"
    "- 5: Good. Every statement agrees with the reference answer or is correct and consistent with it.\n\n"
    "Question:\n{question}\nReference answer:\n{reference}\nCandidate answer:\n{answer}\n\n"
    "Evaluation Form (scores ONLY):\n- Factual Consistency:"
)
PROMPTS = {"study_v1": STUDY_PROMPT_V1, "study_v2": STUDY_PROMPT_V2, "reference": REFERENCE_PROMPT}
SCORES = (1, 2, 3, 4, 5)


def render(prompt: str, question: str, answer: str, reference: str = "") -> str:
    if prompt not in PROMPTS:
        raise ValueError(f"unknown G-Eval prompt {prompt!r}; known: {', '.join(PROMPTS)}")
    return PROMPTS[prompt].format(question=question.strip(), answer=answer.strip(), reference=reference.strip())


def probability_weighted(logprobs: dict[str, float]) -> float | None:
    """sum p(s) * s over the score tokens present among the judge's top log-probabilities (renormalised)."""
    probs: dict[int, float] = {}
    for token, lp in logprobs.items():
        t = token.strip()
        if t in {str(s) for s in SCORES}:
            probs[int(t)] = probs.get(int(t), 0.0) + math.exp(lp)
    total = sum(probs.values())
    if total <= 0:
        return None
    return sum(s * p for s, p in probs.items()) / total


def parse_score(text: str) -> int | None:
    """The first score 1-5 in a judge's sampled answer."""
    m = re.search(r"\b([1-5])(?:\.0+)?\b", text)
    return int(m.group(1)) if m else None


def sampled_mean(samples: list[str]) -> tuple[float | None, int]:
    """The study's score: the mean of the parsed samples; also how many parsed."""
    parsed = [s for s in (parse_score(x) for x in samples) if s is not None]
    return (sum(parsed) / len(parsed) if parsed else None), len(parsed)


METHODS = ("probability", "sampling")


@dataclass
class Judgement:
    score: float | None  # None: the judge's reply held no usable score
    method: str  # "probability" | "sampling"
    detail: dict  # what the score came from (log-probabilities or samples) and, where known, token usage


def judgement_from_logprobs(logprobs: dict[str, float], **detail) -> Judgement:
    """The paper's score from the score token's log-probabilities (the one place it is computed)."""
    return Judgement(probability_weighted(logprobs), "probability", {"logprobs": logprobs, **detail})


def judgement_from_samples(samples: list[str], **detail) -> Judgement:
    """The study's score from sampled replies (the one place it is computed)."""
    score, parsed = sampled_mean(samples)
    return Judgement(score, "sampling", {"samples": samples, "parsed": parsed, **detail})
