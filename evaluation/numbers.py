"""How every report writes a number (report.md, report.html and its plots, the ablation summary)."""
from __future__ import annotations

DASH = "–"


def number(v, digits: int = 4, big_digits: int = 1, sign: bool = False) -> str:
    """None as a dash, booleans as yes/no, an int as itself, a float to `digits` decimals, or to `big_digits` from
    10 up (word counts and seconds, where more decimals are noise); `sign` writes + before a positive value.
    Anything else as its text (the caller escapes it for HTML)."""
    if v is None:
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:+d}" if sign else str(v)
    if isinstance(v, float):
        d = digits if abs(v) < 10 else big_digits
        return f"{v:+.{d}f}" if sign else f"{v:.{d}f}"
    return str(v)


def interval(low: float, high: float, digits: int = 4) -> str:
    """A confidence interval as [low, high], both signed."""
    return f"[{number(low, digits, digits, sign=True)}, {number(high, digits, digits, sign=True)}]"
