"""EvalConfig: which systems answer which questions, with which decoding."""
from __future__ import annotations

from dataclasses import dataclass, field

SYSTEMS = ("plain", "finetuned", "graph", "graph-text", "adapter", "prompt-tuning")


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
    max_new_tokens: int = 256
    """Generation budget per answer, the same for every system."""
    batch_size: int = 8
    """Answers generated per batch."""
    repetition_penalty: float = 1.0
    """Same for every system (1.0 = none)."""
    bertscore_model: str | None = None
    """Backbone for BERTScore: an HF id in the local cache or a folder (default: the bundled all-MiniLM-L6-v2)."""

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
        if problems:
            raise ValueError("Invalid EvalConfig:\n  - " + "\n  - ".join(problems))
