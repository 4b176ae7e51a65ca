"""Text normalisation applied to every question and answer before validation and dedup."""
from __future__ import annotations

import re
import unicodedata

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_SPACES = re.compile(r"[ \t\u00a0]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """NFC-normalise, drop zero-width characters, fold runs of spaces, keep paragraph breaks."""
    text = unicodedata.normalize("NFC", text).translate(_ZERO_WIDTH)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def question_key(question: str) -> str:
    """Key for exact-duplicate detection: case, punctuation and spacing do not make a new question."""
    return " ".join(re.findall(r"[a-z0-9]+", question.lower()))
