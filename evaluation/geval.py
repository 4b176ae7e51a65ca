"""G-Eval as the study ran it and as the paper defines it.

Prompts: the study's two judge prompts, verbatim (the first, and the rubric one it moved to because
the first was too lenient), plus a reference-aware variant of the rubric prompt (the answer judged
against the reference answer, since consistency "with the question" alone rewards fluent nonsense).
Scoring:
- "probability" (the G-Eval paper): score = sum over s in 1..5 of p(s) * s, with p the judge's
  probabilities for the score token, renormalised over the five score tokens;
- "sampling" (the study): n samples at temperature 2, top_p 1; the mean of the parsed scores.
Judges: any causal LM loaded locally (`LocalJudge` here, probabilities read from its logits) and any
OpenAI-compatible endpoint (`evaluation.judge.OpenAIJudge`). Both turn what the judge returned into a
score through `judgement_from_logprobs` / `judgement_from_samples`, so the two scorings exist once.
`evaluation.judge.judge_rows` runs either judge over prediction rows, with a cache and failure records.
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
    "Factual Consistency (1-5): Does the answer contain untruthful or misleading facts that are not supported by the question?\n\n"
)
EXAMPLE = "Example:\nQuestion:\n{question}\nAnswer:\n{answer}\n\nEvaluation Form (scores ONLY):\n- Factual Consistency:"

STUDY_PROMPT_V1 = PROMPT_HEADER + (
    "Evaluation Steps:\n"
    "1. Review the question and answer provided carefully to understand the context.\n"
    "2. Evaluate the given answer's factual consistency based on whether the information aligns with or contradicts the question.\n"
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


class LocalJudge:
    """A causal LM as judge: next-token probabilities of "1".."5" after the prompt, or samples from it.

    Not thread-safe: `evaluation.judge.judge_rows` runs it with one worker. The sampling defaults are the
    study's (10 samples at temperature 2, top_p 1).
    """

    max_workers = 1

    def __init__(self, model, tokenizer, name: str = "local", samples: int = 10, temperature: float = 2.0,
                 top_p: float = 1.0, max_new_tokens: int = 4, seed: int = 0):
        self.model, self.tok, self.name = model, tokenizer, name
        self.samples, self.temperature, self.top_p, self.max_new_tokens, self.seed = samples, temperature, top_p, max_new_tokens, seed
        self.score_ids = {}
        for s in SCORES:
            ids = tokenizer(f" {s}", add_special_tokens=False)["input_ids"] + tokenizer(str(s), add_special_tokens=False)["input_ids"]
            self.score_ids[s] = sorted(set(i for i in ids if tokenizer.decode([i]).strip() == str(s)))

    def cache_identity(self) -> dict:
        """What distinguishes this judge in a judgement cache: its name and the checkpoint it was loaded from."""
        source = getattr(getattr(self.model, "config", None), "_name_or_path", "") or ""
        return {"model": self.name, "base_url": f"local:{source}"}

    def method_settings(self, method: str) -> dict:
        """The settings a judgement with `method` depends on (part of the cache key)."""
        if method == "probability":
            return {}
        return {"n": self.samples, "temperature": self.temperature, "top_p": self.top_p,
                "max_new_tokens": self.max_new_tokens, "seed": self.seed}

    def score_logprobs(self, prompt: str) -> dict[str, float]:
        import torch

        enc = self.tok(prompt, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(**{k: v.to(self.model.device) for k, v in enc.items()}).logits[0, -1].float()
        logp = torch.log_softmax(logits, dim=-1)
        out = {}
        for s, ids in self.score_ids.items():
            if ids:
                out[str(s)] = float(torch.logsumexp(logp[ids], dim=0))
        return out

    def judge(self, prompt: str, method: str = "probability", n: int | None = None, temperature: float | None = None,
              top_p: float | None = None, seed: int | None = None) -> Judgement:
        """Score one rendered prompt; arguments left None take the judge's own settings."""
        if method == "probability":
            lps = self.score_logprobs(prompt)
            n_prompt = len(self.tok(prompt)["input_ids"])
            return judgement_from_logprobs(lps, usage={"prompt_tokens": n_prompt, "completion_tokens": 0})
        if method == "sampling":
            import torch

            torch.manual_seed(self.seed if seed is None else seed)
            enc = self.tok(prompt, return_tensors="pt").to(self.model.device)
            out = self.model.generate(**enc, do_sample=True, temperature=self.temperature if temperature is None else temperature,
                                      top_p=self.top_p if top_p is None else top_p, max_new_tokens=self.max_new_tokens,
                                      num_return_sequences=self.samples if n is None else n, pad_token_id=self.tok.pad_token_id)
            width = enc["input_ids"].shape[1]
            samples = [self.tok.decode(o[width:], skip_special_tokens=True) for o in out]
            usage = {"prompt_tokens": width, "completion_tokens": int((out[:, width:] != self.tok.pad_token_id).sum())}
            return judgement_from_samples(samples, usage=usage)
        raise ValueError(f"unknown G-Eval method {method!r}; use 'probability' or 'sampling'")
