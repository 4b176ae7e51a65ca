"""TrainConfig: how a run trains, checkpoints and picks its checkpoint."""
from __future__ import annotations

from dataclasses import dataclass

from model.decoding import MAX_NEW_TOKENS
from prompting.templates import PROMPT_STYLES

SELECTIONS = ("dev_rougeL", "dev_loss", "last")


@dataclass
class TrainConfig:
    run_dir: str | None = None
    """Run directory; default runs/<date>-<time>. With --resume, the run to continue."""
    prompt_style: str = "study"
    """"study" (the study's ### Question / ### Answer and Explanation prompt) or "chat" (the model's chat template)."""
    epochs: float = 15.0
    """Training epochs (LIMA: 15)."""
    max_steps: int = -1
    """Stop after this many optimiser steps (-1: run all epochs)."""
    train_limit: int | None = None
    """Train on the first N curated training items only (the CPU preset uses a subset to finish in minutes)."""
    batch_size: int = 64
    """Examples per optimiser step, over all processes of a distributed run (LIMA: 32 for 65B, 64 for smaller
    models)."""
    micro_batch_size: int = 8
    """Examples per forward pass; batch_size / micro_batch_size gradient accumulation steps."""
    learning_rate: float = 1e-5
    """Initial learning rate (LIMA: 1e-5), decayed linearly to lr_end without warm-up."""
    lr_end: float = 1e-6
    """Learning rate at the end of training (LIMA: 1e-6)."""
    weight_decay: float = 0.1
    """AdamW weight decay (LIMA: 0.1)."""
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    """AdamW betas (LIMA: 0.9, 0.95)."""
    max_length: int = 2048
    """Longest example in tokens (LIMA: 2048); longer answers are cut but keep their EOS."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward to save memory (slower; off where memory allows)."""
    bf16_autocast: bool = False
    """Run unquantised modules under bf16 autocast (on by default on CUDA through the 4-bit compute dtype)."""
    group_by_length: bool = True
    """Batch examples of similar length together, so little compute is spent on padding."""
    save_steps: int = 0
    """Checkpoint every N optimiser steps (0: once per epoch). Checkpoints allow --resume."""
    select_on: str = "dev_rougeL"
    """How the final adapter is chosen among checkpoints: "dev_rougeL" (ROUGE-L of generated dev answers), "dev_loss",
    or "last"."""
    dev_limit: int = 50
    """Dev items generated at each checkpoint for selection."""
    dev_max_new_tokens: int = MAX_NEW_TOKENS
    """Generation budget for dev answers during selection."""
    dev_batch_size: int = 8
    """Dev answers generated per batch during selection (independent of micro_batch_size)."""
    logging_steps: int = 5
    """Log loss, learning rate and tokens/s every N steps (CSV always, TensorBoard when installed)."""
    seed: int = 42
    num_threads: int | None = None
    """CPU threads for torch (default: torch's choice)."""
    resume: bool = False
    """Continue the run in run_dir from its last complete checkpoint (optimiser, scheduler and data order included)."""

    def __post_init__(self) -> None:
        problems = []
        if self.prompt_style not in PROMPT_STYLES:
            problems.append(f"prompt_style must be one of {PROMPT_STYLES}, got {self.prompt_style!r}")
        if self.dev_batch_size < 1:
            problems.append(f"dev_batch_size must be positive, got {self.dev_batch_size}")
        if self.batch_size < 1 or self.micro_batch_size < 1:
            problems.append("batch_size and micro_batch_size must be positive")
        elif self.batch_size % self.micro_batch_size:
            problems.append(f"batch_size ({self.batch_size}) must be a multiple of micro_batch_size "
                            f"({self.micro_batch_size})")
        if self.epochs <= 0 and self.max_steps <= 0:
            problems.append("set epochs > 0 or max_steps > 0")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0 <= self.lr_end <= self.learning_rate:
            problems.append(f"lr_end must be in [0, learning_rate], got {self.lr_end}")
        if self.max_length < 32:
            problems.append(f"max_length must be at least 32, got {self.max_length}")
        if self.select_on not in SELECTIONS:
            problems.append(f"select_on must be one of {SELECTIONS}, got {self.select_on!r}")
        if self.train_limit is not None and self.train_limit < 1:
            problems.append(f"train_limit must be positive or None, got {self.train_limit}")
        if self.num_threads is not None and self.num_threads < 1:
            problems.append(f"num_threads must be at least 1 (or None: torch's choice), got {self.num_threads}")
        if self.resume and not self.run_dir:
            problems.append("--resume needs --train.run_dir naming the run to continue")
        if problems:
            raise ValueError("Invalid TrainConfig:\n  - " + "\n  - ".join(problems))

    @property
    def grad_accum(self) -> int:
        """Micro-batches accumulated per optimiser step in each process: batch_size is the global batch, so
        under a distributed launch of N processes each accumulates batch_size / (micro_batch_size * N)."""
        import os

        world = int(os.environ.get("WORLD_SIZE", "1"))
        per_step = self.micro_batch_size * world
        if self.batch_size % per_step:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of micro_batch_size x processes "
                             f"({self.micro_batch_size} x {world})")
        return self.batch_size // per_step
