"""The QAItem contract shared by every stage (design notes, section 2). No I/O here."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

DOMAINS = ("cs", "stats", "ai")
DIFFICULTIES = ("basic", "intermediate", "advanced")


@dataclass(frozen=True)
class QAItem:
    """One interview question with its reference answer.

    id: unique, stable identifier (used for caching predictions and provenance).
    domain: one of DOMAINS.
    question / answer: normalised text.
    source: where the item comes from ("studyllama" for the shipped corpus, a file name for user data).
    difficulty: one of DIFFICULTIES, or None when the source does not say.
    tags: topic tags, the first one being the main topic.
    """

    id: str
    domain: str
    question: str
    answer: str
    source: str = "studyllama"
    difficulty: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def topic(self) -> str:
        return self.tags[0] if self.tags else "untagged"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tags"] = list(self.tags)
        return d
