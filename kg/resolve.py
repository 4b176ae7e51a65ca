"""Entity resolution: merge concepts that are the same thing under different ids.

Evidence, strongest first: the same normalised name (casing, punctuation, plural forms folded); one
concept's name being another's alias with similar definitions; near-identical name-and-definition
embeddings (the bundled MiniLM) in the same domain. Every merge is logged and returned, and the merged
concept's name is kept as an alias of the survivor, so text that uses it still links to the graph.
An alias claimed by two different concepts is ambiguous and removed from both (also reported).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from kg.schema import Concept, Triple, concept_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Merge:
    kept: str
    merged: str
    reason: str


def singular(word: str) -> str:
    """A light English singulariser for matching and normalising (no lookup tables needed)."""
    if len(word) <= 3 or word.endswith(("ss", "us", "is", "sis")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def normal_form(text: str) -> str:
    """Normalised surface form: concept_id with the last word singularised ("Hash Tables" -> "hash-table").

    "+" is read as "plus", so "B+ tree" is not "B-tree" and "k-means++" is not "k-means", and a last word
    in capitals is an abbreviation, not a plural ("HTTPS" is not "HTTP")."""
    words = text.replace("+", " plus ").split()
    cid = concept_id(" ".join(words))
    parts = cid.split("-")
    if parts and parts[-1] and not (words and words[-1].isupper() and len(words[-1]) > 1):
        parts[-1] = singular(parts[-1])
    return "-".join(parts)


def resolve_concepts(
    concepts: dict[str, Concept],
    triples: list[Triple],
    embeddings: dict[str, np.ndarray] | None = None,
    threshold: float = 0.95,
) -> tuple[dict[str, Concept], list[Triple], list[Merge], list[str]]:
    """Return (concepts, triples remapped, merges, ambiguous aliases removed)."""
    parent = {cid: cid for cid in concepts}
    degree: dict[str, int] = {cid: 0 for cid in concepts}
    for t in triples:
        degree[t.head] = degree.get(t.head, 0) + 1
        degree[t.tail] = degree.get(t.tail, 0) + 1

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    merges: list[Merge] = []

    def union(a: str, b: str, reason: str) -> None:
        ra, rb = find(a), find(b)
        if ra == rb:
            return
        # the better-connected concept survives (ties: the shorter, then smaller id)
        keep, drop = sorted((ra, rb), key=lambda c: (-degree.get(c, 0), len(c), c))
        parent[drop] = keep
        merges.append(Merge(keep, drop, reason))

    def similar(a: str, b: str, bar: float) -> bool:
        if embeddings is None or a not in embeddings or b not in embeddings:
            return False
        return float(embeddings[a] @ embeddings[b]) >= bar

    ambiguous: list[str] = []
    by_name: dict[str, str] = {}
    for cid in sorted(concepts):
        key = normal_form(concepts[cid].name)
        other = by_name.setdefault(key, cid)
        if other == cid:
            continue
        a, b = concepts[other], concepts[cid]
        # names equal up to casing and punctuation are one concept; names equal only once a plural is folded
        # ("logit" / "logits") are one concept only if the definitions agree
        if concept_id(a.name) == concept_id(b.name) or not (a.definition and b.definition) or similar(other, cid, 0.8):
            union(other, cid, f"same normalised name {key!r}")
        else:
            log.info("kept %s apart from %s: their names differ only in number (%r, %r) but the definitions disagree",
                     cid, other, b.name, a.name)

    # an alias equal to another concept's name: the same concept if their texts agree, else an ambiguous alias
    for cid in sorted(concepts):
        for alias in list(concepts[cid].aliases):
            other = by_name.get(normal_form(alias))
            if other is None or find(other) == find(cid):
                continue
            if similar(cid, other, 0.8):
                union(cid, other, f"alias {alias!r} of {cid} is the name of {other}, definitions agree")
            else:
                concepts[cid].aliases.remove(alias)
                ambiguous.append(f"{cid}: alias {alias!r} names another concept ({other}); removed")

    if embeddings is not None:
        ids = sorted(c for c in concepts if c in embeddings)
        mat = np.stack([embeddings[c] for c in ids]) if ids else np.zeros((0, 1))
        for i, a in enumerate(ids):
            sims = mat[i + 1 :] @ mat[i]
            for j in np.nonzero(sims >= threshold)[0].tolist():
                b = ids[i + 1 + j]
                if concepts[a].domain == concepts[b].domain:
                    union(a, b, f"embedding similarity {float(sims[j]):.3f}")

    # aliases shared by two surviving concepts are ambiguous: a text using them cannot be linked safely
    from kg.checks import forms_clash

    owners: dict[str, list[tuple[str, str]]] = {}
    for cid in concepts:
        for alias in concepts[cid].aliases:
            owners.setdefault(normal_form(alias), []).append((find(cid), alias))
    shared = {
        (root, alias)
        for group in owners.values()
        for root, alias in group
        if any(other != root and forms_clash(alias, form) for other, form in group)
    }

    out: dict[str, Concept] = {}
    for cid in sorted(concepts, key=lambda c: (find(c) != c, c)):
        root = find(cid)
        c = concepts[cid]
        if root == cid:
            out[cid] = Concept(cid, c.name, c.domain, [], c.definition, c.source)
        target = out[root]
        for name in ([c.name] if root != cid else []) + c.aliases:
            if (root, name) in shared:
                ambiguous.append(f"{cid}: alias {name!r} is shared by several concepts; removed")
                continue
            if name != target.name and name not in target.aliases:
                target.aliases.append(name)
                cues = {k.lower(): v for k, v in c.alias_context.items()}.get(name.lower())
                if cues:
                    target.alias_context[name] = list(cues)
        if not target.definition and c.definition:
            target.definition = c.definition

    remapped: dict[tuple, Triple] = {}
    for t in triples:
        h, tl = find(t.head), find(t.tail)
        if h == tl:
            continue
        key = (h, t.relation, tl)
        if key in remapped:
            old = remapped[key]
            old.provenance = sorted(set(old.provenance) | set(t.provenance))
            old.confidence = max(old.confidence, t.confidence)
        else:
            remapped[key] = Triple(h, t.relation, tl, t.confidence, t.source, list(t.provenance), t.sentence)
    for m in merges:
        log.info("merged concept %s into %s (%s)", m.merged, m.kept, m.reason)
    return out, sorted(remapped.values(), key=lambda t: t.key), merges, sorted(set(ambiguous))


def mention_forms(concepts: dict[str, Concept]) -> dict[str, list[str]]:
    """Surface forms to match per concept: name, aliases and their simple plural/singular variants.

    A variant that is another concept's own name or alias is left out ("logits" is not a plural of
    "logit" when the graph has a concept named "logits")."""
    given = {text.lower(): cid for cid, c in concepts.items() for text in (c.name, *c.aliases)}
    forms: dict[str, list[str]] = {}
    for cid, c in concepts.items():
        seen: list[str] = []
        for text in (c.name, *c.aliases):
            for variant in (text, _plural(text), _singular_phrase(text)):
                if not variant or variant.lower() in (s.lower() for s in seen):
                    continue
                if variant != text and given.get(variant.lower(), cid) != cid:
                    continue
                seen.append(variant)
        forms[cid] = seen
    return forms


def _plural(text: str) -> str | None:
    if not re.search(r"[a-z]$", text) or text.isupper():
        return None
    if text.endswith(("s", "x", "sh", "ch")):
        return text + "es" if not text.endswith("s") else None
    if text.endswith("y") and len(text) > 2 and text[-2] not in "aeiou":
        return text[:-1] + "ies"
    return text + "s"


def _singular_phrase(text: str) -> str | None:
    words = text.split(" ")
    last = singular(words[-1].lower())
    if last == words[-1].lower():
        return None
    return " ".join(words[:-1] + [words[-1][: len(last)]])
