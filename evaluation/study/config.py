"""StudyConfig: what `python -m evaluation.study` serves and where it keeps progress."""

from __future__ import annotations

from dataclasses import dataclass, field

from data.config import SHIPPED_CORPUS_DIR


@dataclass
class StudyConfig:
    run_dir: str | None = None
    """A training run directory: answers come from its best evaluated system. None: the plain bundled model."""
    system: str | None = None
    """Which of the run's systems answers (plain, finetuned, graph, ...); default the run's best by ROUGE-L."""
    port: int = 8765
    """Port on 127.0.0.1 (0: any free port; the URL is printed)."""
    db: str = "artifacts/study/progress.sqlite"
    """The progress database (SQLite, created on first start)."""
    work_dir: str = "artifacts/study"
    """Caches of the app (the reference answers' linked concepts)."""
    question_cache: str = "artifacts/data/question_embeddings.npz"
    """MiniLM question vectors by text hash (the cache `python -m data.prepare` fills)."""
    corpus: list[str] = field(default_factory=lambda: [str(SHIPPED_CORPUS_DIR)])
    """The study guide: QA files or folders (every row validated as data.prepare does)."""
    model: bool = True
    """Load the answering model. false: the mock interview and progress pages only (starts in seconds)."""
    max_new_tokens: int = 256
    """Longest answer the model may give on the Ask page."""
    quantization: str = "none"
    """Loading of the plain model: "none" (full precision, faster on a CPU) or "nf4". A run's own system keeps the
    run's setting (its adapter was trained on it)."""
    desired_retention: float = 0.9
    """FSRS: the chance of recalling an answer when it comes due."""
    fuzz: bool = True
    """FSRS: spread due times a little, so questions learnt together do not all come back on one day."""
    judge_sanity: int = 20
    """With a judge (--judge.model): planted pairs for its sanity check, run in the background at start."""
    warm_up: bool = True
    """Generate two tokens at start, so the first learner's answer does not wait for lazy set-up."""

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be in 0..65535, got {self.port}")
        if not 1 <= self.max_new_tokens <= 4096:
            problems.append(f"max_new_tokens must be in 1..4096, got {self.max_new_tokens}")
        if self.quantization not in ("none", "nf4"):
            problems.append(f"quantization must be none or nf4, got {self.quantization!r}")
        if not 0.5 <= self.desired_retention < 1:
            problems.append(f"desired_retention must be in [0.5, 1), got {self.desired_retention}")
        if self.judge_sanity < 0:
            problems.append(f"judge_sanity must be >= 0, got {self.judge_sanity}")
        if not self.corpus:
            problems.append("corpus must name at least one file or folder")
        if self.system and not self.run_dir and self.system != "plain":
            problems.append(f"system {self.system!r} needs run_dir (the run that trained it)")
        if problems:
            raise ValueError("Invalid StudyConfig:\n  - " + "\n  - ".join(problems))
