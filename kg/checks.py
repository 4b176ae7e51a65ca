"""Consistency checks the build runs on the vocabulary and on the final graph.

Relation types: a pair of concepts may not carry two relations whose meanings exclude each other. A kind
of X is not "commonly contrasted with" X (IS_A with CONTRASTS_WITH), a thing cannot be a kind or a part of
itself through its own child (IS_A or PART_OF both ways), two ideas cannot each be needed before the other
(PREREQUISITE_OF both ways), and one head cannot both serve and fight the same tail (USED_FOR with
MITIGATES).

Aliases: a surface form that links text to a concept must point to one concept only. An alias may not be
another concept's name, id or alias, and an abbreviation listed in kg/vocab/AMBIGUOUS_ALIASES.txt
(several common meanings across CS, statistics and AI: "ANN", "CI", "ML") is accepted only with a context
rule: cue words of which one must appear in the same text before the alias counts as a mention.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from kg.resolve import normal_form
from kg.schema import Concept

AMBIGUOUS_FILE = Path(__file__).resolve().parent / "vocab" / "AMBIGUOUS_ALIASES.txt"

# (relation a, relation b, same direction only): a pair carrying both is a contradiction
EXCLUSIVE: list[tuple[str, str, bool]] = [
    ("IS_A", "CONTRASTS_WITH", False),
    ("USED_FOR", "MITIGATES", True),
]
# relations that cannot hold both ways between two concepts
ANTISYMMETRIC = ("IS_A", "PART_OF", "PREREQUISITE_OF")


Key = tuple[str, str, str]  # (head, relation, tail)


def relation_conflicts(keys: list[Key]) -> list[tuple[Key, Key, str]]:
    """Pairs of triples (head, relation, tail) whose meanings exclude each other, with the reason."""
    present = set(keys)
    out = []
    for key in sorted(present):
        h, r, t = key
        for a, b, directed in EXCLUSIVE:
            if r != a:
                continue
            for other in [(h, b, t)] + ([] if directed else [(t, b, h)]):
                if other in present:
                    out.append((key, other, f"{a} and {b} exclude each other"))
        if r in ANTISYMMETRIC and h < t and (t, r, h) in present:
            out.append((key, (t, r, h), f"{r} cannot hold both ways"))
    return out


def load_ambiguous(path: Path = AMBIGUOUS_FILE) -> dict[str, str]:
    """Abbreviation -> its meanings, from lines "ABBR: meaning one; meaning two" ('#' starts a comment)."""
    out: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        abbr, sep, meanings = line.partition(":")
        if not sep or not abbr.strip() or ";" not in meanings:
            raise ValueError(f"{path}:{lineno}: expected 'ABBR: meaning; other meaning', got {line!r}")
        out[abbr.strip()] = meanings.strip()
    return out


def case_sensitive(form: str) -> bool:
    """Short forms in capitals or with capitals inside ("SVM", "mAP", "CoT") match only with their own
    casing: in lower case they are ordinary words ("map", "cot") or another abbreviation ("MAP" is not "mAP")."""
    return len(form) <= 5 and (form.isupper() or any(ch.isupper() for ch in form[1:]))


def _same_form(a: str, b: str) -> bool:
    return a == b if case_sensitive(a) and case_sensitive(b) else a.lower() == b.lower()


def ambiguous_meaning(alias: str, ambiguous: dict[str, str]) -> str | None:
    """The listed meanings when `alias` (or its plural, "ADTs") is an ambiguous form, else None."""
    stems = [alias] + ([alias[:-1]] if alias.endswith("s") and len(alias) > 2 else [])
    for form, meanings in ambiguous.items():
        if any(_same_form(stem, form) for stem in stems):
            return meanings
    return None


def forms_clash(a: str, b: str) -> bool:
    """Can the two forms match the same text? Both case-sensitive: only when spelled the same."""
    if case_sensitive(a) and case_sensitive(b):
        return a.strip() == b.strip()
    return True


def alias_problems(
    concepts: dict[str, Concept], ambiguous: dict[str, str], where: dict[str, str] | None = None
) -> list[str]:
    """Every alias that cannot link text to one concept, as 'file:line: concept: reason' (all at once)."""
    where = where or {}
    forms: dict[str, list[tuple[str, str, str]]] = defaultdict(list)  # key -> [(concept, form, kind)]
    for cid, c in concepts.items():
        forms[normal_form(cid)].append((cid, cid, "id"))
        forms[normal_form(c.name)].append((cid, c.name, "name"))
        for alias in c.aliases:
            forms[normal_form(alias)].append((cid, alias, "alias"))
    problems: list[str] = []
    for cid in sorted(concepts):
        c = concepts[cid]
        at = f"{where[cid]}: " if cid in where else ""
        rules = {k.lower(): v for k, v in (c.alias_context or {}).items()}
        for alias in c.aliases:
            # other concept -> its clashing form (its name rather than an alias or its id, when both clash)
            owners: dict[str, tuple[str, str]] = {}
            for other, form, kind in forms[normal_form(alias)]:
                if other != cid and forms_clash(alias, form) and (other not in owners or kind == "name"):
                    owners[other] = (form, kind)
            for other, (form, kind) in sorted(owners.items()):
                problems.append(f"{at}{cid}: alias {alias!r} is also the {kind} of {other} ({form!r}); "
                                "an alias must name one concept only")
            meanings = ambiguous_meaning(alias, ambiguous)
            if meanings and alias.lower() not in rules:
                problems.append(f"{at}{cid}: alias {alias!r} is a common abbreviation or word with several meanings "
                                f"({meanings}); drop it or give cue words for it in alias_context")
        for alias, cues in sorted(rules.items()):
            if alias not in {a.lower() for a in c.aliases}:
                problems.append(f"{at}{cid}: alias_context names {alias!r}, which is not one of its aliases")
            elif not cues or not all(isinstance(w, str) and w.strip() for w in cues):
                problems.append(f"{at}{cid}: alias_context for {alias!r} needs a non-empty list of cue words")
    return problems


def context_allows(cues: list[str], text: str) -> bool:
    """True when one cue word starts a word of `text` (case-insensitive): "vector" matches "vectors"."""
    return any(re.search(r"(?<![\w-])" + re.escape(cue), text, re.I) for cue in cues)
