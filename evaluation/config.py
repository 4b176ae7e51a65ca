"""EvalConfig: which systems answer which questions, with which decoding, and who judges the answers.

The judge settings are flat `judge_*` fields (one flag group, one place in metrics.json's config) rather
than a second `--judge.*` group: `--judge` names the judge, and the fields below cover what both judges
need plus the transport settings of an OpenAI-compatible endpoint. The rest of `evaluation.judge.JudgeConfig`
keeps its defaults (the paper's top-5 log-probabilities, the study's temperature 2 and top_p 1); for other
values, score the run's predictions.jsonl with `python -m evaluation.judge`, which takes every JudgeConfig
flag. The API key is read from $OPENAI_API_KEY only: it is never a field, so it can never reach metrics.json.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from model.decoding import MAX_NEW_TOKENS, NO_REPEAT_NGRAM, GenerationSettings

SYSTEMS = ("plain", "finetuned", "graph", "graph-text", "adapter", "prompt-tuning")
JUDGES = ("openai", "local")


@dataclass
class EvalConfig:
    run_dir: str | None = None
    """Run directory of a training run (its saved config and adapter); needed for every system but plain."""
    systems: list[str] = field(default_factory=lambda: ["plain", "finetuned"])
    """Systems to compare: plain (base model, the study's prompt), finetuned (base + LoRA), graph (soft graph
    tokens + evidence), graph-text (evidence + LoRA), adapter (graph-conditioned adapter), prompt-tuning. Each
    non-plain system is loaded from the run directory whose mode trains it: run_dir, one of `runs`, or
    run_dir/systems/<system> (where a graph run keeps its LoRA baseline). The first system is the baseline
    of the paired comparisons."""
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
    judge: str | None = None
    """G-Eval judge: None (no G-Eval); "openai": any OpenAI-compatible chat-completions endpoint (judge_model or
    $STUDYLLAMA_JUDGE_MODEL, judge_base_url or $OPENAI_BASE_URL, key from $OPENAI_API_KEY); "local": a causal LM
    loaded here (judge_model, default the run's base model without adapter), probabilities read from its logits."""
    judge_model: str | None = None
    """openai: the model name the endpoint knows. local: any model spec model.load accepts (bundled, an HF id in
    the local cache, a folder, a .gguf); default the run's base model (bundled for a plain-only evaluation)."""
    judge_base_url: str | None = None
    """openai only: endpoint base URL, e.g. http://127.0.0.1:8000/v1 (`python -m evaluation.serve`); default
    $OPENAI_BASE_URL, else OpenAI's."""
    judge_prompts: list[str] = field(default_factory=lambda: ["study_v1", "study_v2", "reference"])
    """G-Eval prompts: study_v1 (the study's first), study_v2 (its rubric prompt), reference (judged against the
    reference answer)."""
    judge_methods: list[str] = field(default_factory=lambda: ["probability"])
    """Scoring: probability (the G-Eval paper: sum p(s) * s) and/or sampling (the study: mean of sampled scores)."""
    judge_sanity: int = 30
    """Planted pairs for the judge sanity check (reference answer vs an answer shuffled from another question),
    drawn from the eval split; 0 switches the check off (the report then says the scores are unvalidated)."""
    judge_samples: int = 10
    """Samples per item for the sampling method (the study: 10)."""
    judge_quantization: str | None = None
    """local only: "nf4" or "none"; default the run's setting for the run's base model, "none" for judge_model."""
    judge_concurrency: int = 4
    """openai only: requests in flight at once (a local judge runs one at a time)."""
    judge_max_attempts: int = 6
    """openai only: attempts per request (retries with backoff on 429, 5xx, timeouts) before the item is
    recorded as failed."""
    judge_timeout: float = 60.0
    """openai only: seconds before a request counts as timed out."""
    judge_price_prompt_per_1k: float = 0.0
    """openai only: price of 1000 prompt tokens, for the cost line of the report."""
    judge_price_completion_per_1k: float = 0.0
    """openai only: price of 1000 completion tokens."""
    judge_cache_dir: str | None = None
    """Folder of the judgement cache (a rerun asks only what is missing or failed); default <out_dir>/geval_cache."""

    def generation_settings(self) -> GenerationSettings:
        """The decoding every system uses in this evaluation (recorded in metrics.json)."""
        return GenerationSettings(max_new_tokens=self.max_new_tokens, batch_size=self.batch_size,
                                  repetition_penalty=self.repetition_penalty, no_repeat_ngram=self.no_repeat_ngram)

    def judge_config(self):
        """The evaluation.judge.JudgeConfig of an "openai" judge (api_key stays None: read from the environment)."""
        from evaluation.judge import JudgeConfig

        return JudgeConfig(model=self.judge_model, base_url=self.judge_base_url, prompts=list(self.judge_prompts),
                           methods=list(self.judge_methods), concurrency=self.judge_concurrency,
                           max_attempts=self.judge_max_attempts, timeout=self.judge_timeout, samples=self.judge_samples,
                           price_prompt_per_1k=self.judge_price_prompt_per_1k,
                           price_completion_per_1k=self.judge_price_completion_per_1k, cache_dir=self.judge_cache_dir)

    def __post_init__(self) -> None:
        problems = []
        unknown = [s for s in self.systems if s not in SYSTEMS]
        if unknown:
            problems.append(f"unknown system(s) {unknown}; known: {', '.join(SYSTEMS)}")
        if any(s != "plain" for s in self.systems) and not self.run_dir:
            problems.append("systems other than plain need run_dir (the training run to load)")
        if self.sample is not None and self.sample < 1:
            problems.append(f"sample must be positive or None, got {self.sample}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            problems.append("max_new_tokens and batch_size must be positive")
        if self.no_repeat_ngram < 0 or self.no_repeat_ngram == 1:
            problems.append(f"no_repeat_ngram must be 0 (off) or at least 2, got {self.no_repeat_ngram}")
        problems += self._judge_problems()
        if problems:
            raise ValueError("Invalid EvalConfig:\n  - " + "\n  - ".join(problems))

    def _judge_problems(self) -> list[str]:
        from evaluation.geval import METHODS, PROMPTS

        problems = []
        # "a,b" and "a b" mean the same, also when a preset or training.run passes the list unsplit
        self.judge_prompts = [p.strip() for v in self.judge_prompts for p in str(v).split(",") if p.strip()]
        self.judge_methods = [m.strip() for v in self.judge_methods for m in str(v).split(",") if m.strip()]
        if self.judge is not None and self.judge not in JUDGES:
            problems.append(f"judge must be one of {', '.join(JUDGES)} or None, got {self.judge!r}")
        if not self.judge_prompts or any(p not in PROMPTS for p in self.judge_prompts):
            problems.append(f"judge_prompts must name one or more of {', '.join(PROMPTS)}; got {self.judge_prompts}")
        if not self.judge_methods or any(m not in METHODS for m in self.judge_methods):
            problems.append(f"judge_methods must name one or more of {', '.join(METHODS)}; got {self.judge_methods}")
        if self.judge_sanity < 0 or self.judge_sanity == 1:
            problems.append(f"judge_sanity must be 0 (off) or at least 2 planted pairs, got {self.judge_sanity}")
        if self.judge_samples < 1:
            problems.append(f"judge_samples must be at least 1, got {self.judge_samples}")
        if self.judge_quantization is not None and self.judge_quantization not in ("nf4", "none"):
            problems.append(f"judge_quantization must be nf4 or none, got {self.judge_quantization!r}")
        given = [n for n in ("judge_model", "judge_base_url", "judge_quantization", "judge_cache_dir") if getattr(self, n) is not None]
        if self.judge is None and given:
            problems.append(f"{', '.join(given)} given without judge (pass --judge openai or --judge local)")
        if self.judge == "local" and self.judge_base_url is not None:
            problems.append("judge_base_url is for --judge openai; a local judge loads judge_model here "
                            "(to judge with a served model, use --judge openai --judge_base_url URL)")
        if self.judge == "openai" and self.judge_quantization is not None:
            problems.append("judge_quantization is for --judge local; an openai judge is loaded by its server")
        if self.judge == "openai" and not problems:  # the endpoint settings, checked by JudgeConfig itself
            try:
                self.judge_config()
            except ValueError as exc:
                problems += [f"judge_* endpoint settings: {line.strip()[2:]}" for line in str(exc).splitlines()
                             if line.strip().startswith("- ")]
        return problems
