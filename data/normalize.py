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


# Control characters other than tab and line breaks (C0, DEL, C1) are not text: a NUL ends a string in the
# graph store's query parser, an escape sequence rewrites a terminal. Data and kg both reject such text and
# say where the character is (one rule, never a silent strip that would change what a user wrote).
# Unicode's control characters (category Cc) are exactly U+0000-U+001F and U+007F-U+009F
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "backspace", 0x0B: "vertical tab", 0x0C: "form feed",
                  0x1B: "ESC", 0x7F: "DEL"}


def control_characters(text: str) -> list[int]:
    """Positions of the control characters in `text` that no question, answer, note or concept may hold."""
    return [m.start() for m in _CONTROL.finditer(text)]


def describe_control(ch: str) -> str:
    name = _CONTROL_NAMES.get(ord(ch))
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")


def control_character_problem(text: str, what: str) -> str | None:
    """None for clean text, else one sentence naming the first control character, its line and column."""
    found = control_characters(text)
    if not found:
        return None
    i = found[0]
    line = text.count("\n", 0, i) + 1
    column = i - (text.rfind("\n", 0, i) + 1) + 1
    more = f" ({len(found)} in all)" if len(found) > 1 else ""
    return (f"{what} holds the control character {describe_control(text[i])} at line {line}, column {column}{more}; "
            "remove it (only tab and line breaks are allowed)")


def undecodable_problem(text: str, what: str) -> str | None:
    """None, or one sentence for text that came from undecodable bytes (command-line arguments in another
    encoding reach Python as lone surrogates, which no tokenizer or store accepts)."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        ch = text[exc.start]
        byte = f"byte 0x{ord(ch) - 0xDC00:02X}" if 0xDC80 <= ord(ch) <= 0xDCFF else f"U+{ord(ch):04X}"
        return (f"{what} is not valid UTF-8 text ({byte} at character {exc.start + 1}); "
                "give it in UTF-8 (check the terminal's or the calling script's encoding)")
