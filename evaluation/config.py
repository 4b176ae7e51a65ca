"""EvalConfig: which systems answer which questions, with which decoding, and who judges the answers.

The judge is a nested JudgeConfig (evaluation.geval.judges): its fields are the `--judge.*` flags
(`--judge.kind openai --judge.model gpt-4o-mini`), a preset's `eval: {judge: {...}}` and the "judge" object of
metrics.json's config. The API key is read from $OPENAI_API_KEY only: it is never a field, so it can never reach
metrics.json.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from evaluation.geval.config import JudgeConfig
from model.decoding import MAX_NEW_TOKENS, NO_REPEAT_NGRAM, GenerationSettings

# the flat judge_* fields of EvalConfig before the judge became a nested JudgeConfig (saved runs still have them)
LEGACY_JUDGE_FIELDS = {"judge_model": "model", "judge_base_url": "base_url", "judge_prompts": "prompts",
                       "judge_methods": "methods", "judge_sanity": "sanity", "judge_samples": "samples",
                       "judge_quantization": "quantization", "judge_concurrency": "concurrency",
                       "judge_max_attempts": "max_attempts", "judge_timeout": "timeout",
                       "judge_price_prompt_per_1k": "price_prompt_per_1k",
                       "judge_price_completion_per_1k": "price_completion_per_1k", "judge_cache_dir": "cache_dir"}


def upgrade_eval_section(section: dict) -> dict:
    """An eval section (a preset's or a saved run's) with the old flat judge_* keys moved into "judge"."""
    out = dict(section)
    judge = out.pop("judge", None)
    nested = dict(judge) if isinstance(judge, dict) else ({"kind": judge} if judge is not None else {})
    for old, new in LEGACY_JUDGE_FIELDS.items():
        if old in out:
            nested[new] = out.pop(old)
    if nested or judge is not None:
        out["judge"] = nested
    return out


@dataclass
class EvalConfig:
    run_dir: str | None = None
    """Run directory of a training run (its saved config and adapter); needed for every system but plain."""
    systems: list[str] = field(default_factory=lambda: ["plain", "finetuned"])
    """Systems to compare: plain (the base model on the study's prompt) and the system of any mode of model.modes:
    finetuned (the study's LoRA), graph, graph-text, adapter, prompt-tuning. Each non-plain system is loaded from
    the run directory whose mode trains it: run_dir, one of `runs`, or run_dir/systems/<system> (where a graph run
    keeps its LoRA baseline). The first system is the baseline of the paired comparisons."""
    runs: list[str] = field(default_factory=list)
    """More run directories to take systems from (an ablation compares several runs in one table)."""
    eval_file: str | None = None
    """Eval items (JSONL); default: the run's eval split, else artifacts/data/eval.jsonl."""
    sample: int | None = None
    """Evaluate a stratified sample of N items (None: all)."""
    sample_seed: int = 0
    out_dir: str | None = None
    """Where predictions, metrics and the report go; default <run_dir>/eval (or runs/eval-plain)."""
    prompt_style: str | None = None
    """Prompt style; default: the run's (the study's prompt for plain-only evaluations)."""
    max_new_tokens: int = MAX_NEW_TOKENS
    """Generation budget per answer, the same for every system."""
    batch_size: int = 8
    """Answers generated per batch."""
    repetition_penalty: float = 1.0
    """transformers' repetition penalty, the same for every system (1.0 = none; it also penalises copying the
    prompt, so no_repeat_ngram is the default guard against loops)."""
    no_repeat_ngram: int = NO_REPEAT_NGRAM
    """Ban repeating any n-gram of this length within an answer (the prompt does not count), the same for every
    system; 0 switches it off."""
    bertscore_model: str | None = None
    """Backbone for BERTScore: an HF id in the local cache or a folder (default: the bundled all-MiniLM-L6-v2)."""
    concepts: bool = True
    """Score each answer's concepts with the concept graph's linker (evaluation.concepts): coverage of the
    reference's concepts, support, retrieval recall, evidence use, paired like the other metrics. Uses the run's
    graph (its kg and store settings); skipped with a note when the graph is empty or its store is down."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """G-Eval: who judges every system's answers and how (--judge.kind openai|local, --judge.model, ...)."""

    def generation_settings(self) -> GenerationSettings:
        """The decoding every system uses in this evaluation (recorded in metrics.json)."""
        return GenerationSettings(max_new_tokens=self.max_new_tokens, batch_size=self.batch_size,
                                  repetition_penalty=self.repetition_penalty, no_repeat_ngram=self.no_repeat_ngram)

    def __post_init__(self) -> None:
        from model.modes import PLAIN, systems

        if isinstance(self.judge, dict):
            self.judge = JudgeConfig(**self.judge)
        problems = []
        known = systems()
        unknown = [s for s in self.systems if s not in known]
        if unknown:
            problems.append(f"unknown system(s) {unknown}; known: {', '.join(known)}")
        if not self.systems:
            problems.append("systems must name at least one system")
        if any(s != PLAIN for s in self.systems) and not self.run_dir:
            problems.append("systems other than plain need run_dir (the training run to load)")
        if self.sample is not None and self.sample < 1:
            problems.append(f"sample must be positive or None, got {self.sample}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            problems.append("max_new_tokens and batch_size must be positive")
        if self.no_repeat_ngram < 0 or self.no_repeat_ngram == 1:
            problems.append(f"no_repeat_ngram must be 0 (off) or at least 2, got {self.no_repeat_ngram}")
        if problems:
            raise ValueError("Invalid EvalConfig:\n  - " + "\n  - ".join(problems))
