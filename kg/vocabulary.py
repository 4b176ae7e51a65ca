"""Load and validate the concept vocabulary (kg/vocab/concepts_*.jsonl) with its curated relations."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from data.normalize import control_character_problem
from kg.checks import alias_problems, load_ambiguous, relation_conflicts
from kg.schema import DOMAINS, RELATIONS, Concept, Triple, concept_id

log = logging.getLogger(__name__)
VOCAB_DIR = Path(__file__).resolve().parent / "vocab"


class VocabularyError(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the concept vocabulary:\n  - " + "\n  - ".join(problems[:100]))


@dataclass
class Vocabulary:
    concepts: dict[str, Concept]
    curated: list[Triple]


def _alias_context(value, where: str, problems: list[str]) -> dict[str, list[str]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, list) for k, v in value.items()):
        problems.append(f"{where}: alias_context must map each alias to a list of cue words")
        return {}
    return {k: list(v) for k, v in value.items()}


def load_vocabulary(paths: list[Path] | None = None, ambiguous: dict[str, str] | None = None) -> Vocabulary:
    """Read every vocabulary file; all problems (file:line and reason) are reported at once.

    Besides the format, the relation-type and alias checks of kg.checks run here, so a vocabulary with a
    contradictory pair of relations or an alias that names two things never reaches the graph.
    `ambiguous` (abbreviation -> meanings) defaults to kg/vocab/AMBIGUOUS_ALIASES.txt.
    """
    paths = paths or sorted(VOCAB_DIR.glob("concepts_*.jsonl"))
    problems: list[str] = []
    concepts: dict[str, Concept] = {}
    where_concept: dict[str, str] = {}
    raw_relations: list[tuple[str, str, dict]] = []
    for path in paths:
        for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            where = f"{path}:{lineno}"
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{where}: broken JSON: {exc.msg}")
                continue
            except RecursionError:
                problems.append(f"{where}: JSON nested too deeply (a concept is one flat object)")
                continue
            if not isinstance(row, dict):
                problems.append(f"{where}: expected a JSON object, got {type(row).__name__}")
                continue
            missing = [f for f in ("id", "name", "domain") if not row.get(f)]
            if missing:
                problems.append(f"{where}: missing {', '.join(missing)}")
                continue
            texts = [("name", row["name"]), ("definition", row.get("definition") or "")]
            texts += [("an alias", a) for a in row.get("aliases") or [] if isinstance(a, str)]
            bad = [p for p in (control_character_problem(str(v), what) for what, v in texts) if p]
            if bad:
                problems.append(f"{where}: {bad[0]}")
                continue
            cid = row["id"]
            if cid != concept_id(cid):
                problems.append(f"{where}: id {cid!r} is not normalised (expected {concept_id(cid)!r})")
            if row["domain"] not in DOMAINS:
                problems.append(f"{where}: unknown domain {row['domain']!r}")
            if cid in concepts:
                # two shards defined the same concept: keep the first entry, add the other's names (resolution logs it)
                first = concepts[cid]
                extra = [n for n in (row["name"], *(row.get("aliases") or [])) if n not in (first.name, *first.aliases)]
                first.aliases.extend(extra)
                first.alias_context.update(_alias_context(row.get("alias_context"), where, problems))
                log.info("%s: concept %r defined again; merged into the first definition", where, cid)
            else:
                concepts[cid] = Concept(
                    id=cid, name=row["name"], domain=row["domain"], aliases=list(row.get("aliases") or []),
                    definition=row.get("definition", ""), source="vocabulary",
                    alias_context=_alias_context(row.get("alias_context"), where, problems),
                )
                where_concept[cid] = where
            for rel in row.get("relations") or []:
                raw_relations.append((where, cid, rel))
    curated: dict[tuple, Triple] = {}
    where_triple: dict[tuple, str] = {}
    for where, head, rel in raw_relations:
        r, tail = rel.get("relation"), rel.get("tail")
        if r not in RELATIONS:
            problems.append(f"{where}: unknown relation {r!r} (closed set: {', '.join(RELATIONS)})")
        elif tail not in concepts:
            problems.append(f"{where}: relation {r} points to unknown concept {tail!r}")
        elif tail == head:
            problems.append(f"{where}: {head} {r} itself")
        else:
            t = Triple(head, r, tail, 1.0, "curated", [], "")
            curated.setdefault(t.key, t)
            where_triple.setdefault(t.key, where)
    for a, b, reason in relation_conflicts(list(curated)):
        problems.append(f"{where_triple[a]}: {' '.join(a)} contradicts {' '.join(b)} ({where_triple[b]}): {reason}")
    problems += alias_problems(concepts, load_ambiguous() if ambiguous is None else ambiguous, where_concept)
    if problems:
        raise VocabularyError(problems)
    return Vocabulary(concepts, sorted(curated.values(), key=lambda t: t.key))
