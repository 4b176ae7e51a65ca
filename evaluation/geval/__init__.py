"""G-Eval: the study's judge prompts and the paper's scoring (prompts), the judges that score an answer (judges:
an OpenAI-compatible endpoint or a causal LM loaded here), the judgement cache (cache), the runner over
prediction rows and an evaluation's "geval" section (runner), and the judge sanity check (sanity).

`python -m evaluation.judge` scores a predictions file on its own; `python -m evaluation.run --judge.kind ...`
judges every system of an evaluation.
"""
from evaluation.geval.cache import JudgeCache, cache_key, open_cache
from evaluation.geval.config import JudgeConfig
from evaluation.geval.judges import JudgeError, LazyLocalJudge, LocalJudge, OpenAIJudge, build_judge
from evaluation.geval.prompts import METHODS, PROMPTS, Judgement, render
from evaluation.geval.runner import judge_rows, run_geval, score_name

__all__ = ["JudgeCache", "cache_key", "open_cache", "JudgeConfig", "JudgeError", "LazyLocalJudge", "LocalJudge",
           "OpenAIJudge", "build_judge", "METHODS", "PROMPTS", "Judgement", "render", "judge_rows", "run_geval",
           "score_name"]
