"""DataConfig: where the corpus comes from and how it is curated and split."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from data.schema import DOMAINS

SHIPPED_CORPUS_DIR = Path(__file__).resolve().parent / "corpus"


@dataclass
class DataConfig:
    """Configuration of `python -m data.prepare` and of the data stage of a training run."""

    corpus: list[str] = field(default_factory=lambda: [str(SHIPPED_CORPUS_DIR)])
    """Files or folders to read (JSONL, CSV, or `hf:NAME[:SPLIT]` for a `datasets` dataset). Folders are read for
    *.jsonl."""
    field_map: dict[str, str] = field(default_factory=dict)
    """Maps QAItem fields to the user's column names, e.g. {"question": "prompt", "answer": "response"}."""
    default_domain: str | None = None
    """Domain given to rows that have none (user data only); rows without one are otherwise rejected."""
    out_dir: str = "artifacts/data"
    """Where the split files are written."""
    train_size: int = 1000
    """Items curated for training (the study used 1,000, as LIMA did)."""
    dev_size: int = 50
    """Items carved out of the training selection for checkpoint selection."""
    eval_size: int | None = None
    """Eval items; None keeps every item not selected for training (481 in the study)."""
    near_dup_threshold: float = 0.9
    """Cosine similarity of question embeddings above which two questions count as the same question."""
    dedup_method: str = "embedding"
    """"embedding" (bundled MiniLM) or "minhash" (word shingles, no model)."""
    paraphrase_threshold: float | None = 0.49
    """Paraphrase score, (question cosine + answer cosine + 2 x TF-IDF cosine) / 4, from which two items of
    different source files are the same question in other words; None turns the check off (method
    "embedding" only). 0.49 is just below the weakest paraphrase pair issue 14 names (0.492)."""
    max_question_chars: int = 2_000
    max_answer_chars: int = 8_000
    seed: int = 13

    def __post_init__(self) -> None:
        problems = []
        if self.default_domain is not None and self.default_domain not in DOMAINS:
            problems.append(f"default_domain must be one of {DOMAINS}, got {self.default_domain!r}")
        if self.train_size < 1:
            problems.append(f"train_size must be positive, got {self.train_size}")
        if not 0 <= self.dev_size < self.train_size:
            problems.append(f"dev_size must be in [0, train_size), got {self.dev_size}")
        if not 0.5 <= self.near_dup_threshold <= 1.0:
            problems.append(f"near_dup_threshold must be in [0.5, 1.0], got {self.near_dup_threshold}")
        if self.paraphrase_threshold is not None and not 0.0 < self.paraphrase_threshold <= 1.0:
            problems.append(f"paraphrase_threshold must be in (0, 1] or None, got {self.paraphrase_threshold}")
        if self.dedup_method not in ("embedding", "minhash"):
            problems.append(f"dedup_method must be 'embedding' or 'minhash', got {self.dedup_method!r}")
        if self.eval_size is not None and self.eval_size < 1:
            problems.append(f"eval_size must be positive or None, got {self.eval_size}")
        if problems:
            raise ValueError("Invalid DataConfig:\n  - " + "\n  - ".join(problems))
