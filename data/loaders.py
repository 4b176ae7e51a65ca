"""Load QA rows from JSONL, CSV or a `datasets` dataset and validate every row.

Validation never stops at the first problem: every bad row is reported with its file and line
(or row index) and the reason, and nothing valid is dropped silently.
"""
from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from data.normalize import control_character_problem, normalize_text
from data.schema import DIFFICULTIES, DOMAINS, QAItem

log = logging.getLogger(__name__)

FIELDS = ("id", "domain", "question", "answer", "source", "difficulty", "tags")
MAX_LINE_BYTES = 64_000  # a JSONL line past this is rejected before parsing (a 1 MB answer, a binary blob)


@dataclass(frozen=True)
class RowProblem:
    where: str  # "file:line" or "hf:name[row]"
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class CorpusError(ValueError):
    """Raised when input rows are invalid; lists every problem at once."""

    def __init__(self, problems: list[RowProblem], n_valid: int = 0):
        self.problems = problems
        head = f"{len(problems)} invalid row(s) ({n_valid} valid rows were read and kept unchanged):"
        shown = [f"  - {p}" for p in problems[:200]]
        if len(problems) > 200:
            shown.append(f"  ... and {len(problems) - 200} more")
        super().__init__("\n".join([head, *shown]))


def _iter_jsonl(path: Path) -> Iterator[tuple[str, dict | None, str | None]]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            where = f"{path}:{lineno}"
            if not raw.strip():
                continue
            if len(raw) > MAX_LINE_BYTES:
                yield where, None, f"line is {len(raw):,} bytes, over the {MAX_LINE_BYTES:,}-byte limit"
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield where, None, f"bad encoding (not UTF-8): {exc.reason} at byte {exc.start}"
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                yield where, None, f"broken JSON: {exc.msg} (column {exc.colno})"
                continue
            except RecursionError:  # json's C parser recurses once per level: [[[[... a few thousand deep
                yield where, None, "JSON nested too deeply (a QA row is one flat object)"
                continue
            if not isinstance(row, dict):
                yield where, None, f"expected a JSON object, got {type(row).__name__}"
                continue
            yield where, row, None


def _iter_csv(path: Path) -> Iterator[tuple[str, dict | None, str | None]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        yield f"{path}:{line}", None, f"bad encoding (not UTF-8): {exc.reason}"
        return
    # csv's own field limit (128 KB) would end the whole file with a traceback at the first long field; lift
    # it for this file (already in memory) and reject an oversized row by the same limit as a JSONL line
    previous_limit = csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    try:
        reader = csv.DictReader(text.splitlines(keepends=True))
        for row in reader:
            where = f"{path}:{reader.line_num}"
            size = sum(len(v) for v in row.values() if isinstance(v, str))
            if size > MAX_LINE_BYTES:
                yield where, None, f"row is {size:,} characters, over the {MAX_LINE_BYTES:,}-character limit"
                continue
            yield where, dict(row), None
    except csv.Error as exc:
        yield f"{path}:{reader.line_num + 1}", None, f"broken CSV: {exc}"
    finally:
        csv.field_size_limit(previous_limit)


def _iter_hf(spec: str) -> Iterator[tuple[str, dict | None, str | None]]:
    from datasets import load_dataset  # heavy; only when asked for

    name, _, split = spec.removeprefix("hf:").partition(":")
    local = Path(name)
    if local.exists():
        ds = load_dataset("json", data_files=str(local), split=split or "train")
    else:
        ds = load_dataset(name, split=split or "train")
    for i, row in enumerate(ds):
        yield f"{spec}[{i}]", dict(row), None


def iter_rows(source: str) -> Iterator[tuple[str, dict | None, str | None]]:
    """Yield (where, row, problem) for every row of one source."""
    if source.startswith("hf:"):
        yield from _iter_hf(source)
        return
    path = Path(source)
    if not path.exists():
        yield str(path), None, "file or folder does not exist"
        return
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            yield str(path), None, "folder holds no *.jsonl file"
        for f in files:
            yield from _iter_jsonl(f)
    elif path.suffix.lower() == ".csv":
        yield from _iter_csv(path)
    elif path.suffix.lower() in (".jsonl", ".json"):
        yield from _iter_jsonl(path)
    else:
        yield str(path), None, f"unsupported file type {path.suffix!r} (use .jsonl, .csv or hf:NAME)"


def row_to_item(
    row: dict,
    where: str,
    field_map: dict[str, str] | None = None,
    default_domain: str | None = None,
    default_source: str = "studyllama",
    max_question_chars: int = 2_000,
    max_answer_chars: int = 8_000,
) -> tuple[QAItem | None, list[str]]:
    """Map, normalise and check one row. Returns the item (or None) and the list of reasons it is bad."""
    field_map = field_map or {}
    get = lambda f: row.get(field_map.get(f, f))  # noqa: E731
    reasons: list[str] = []

    def text_field(name: str, limit: int) -> str:
        value = get(name)
        if value is None:
            reasons.append(f"missing field {field_map.get(name, name)!r}")
            return ""
        if not isinstance(value, str):
            reasons.append(f"field {name!r} must be text, got {type(value).__name__}")
            return ""
        problem = control_character_problem(value, name)
        if problem:
            reasons.append(problem)
            return ""
        value = normalize_text(value)
        if not value:
            reasons.append(f"empty {name}")
        elif len(value) > limit:
            reasons.append(f"{name} is {len(value):,} characters, over the {limit:,} limit")
        return value

    question = text_field("question", max_question_chars)
    answer = text_field("answer", max_answer_chars)
    domain = get("domain") or default_domain
    if domain is None:
        reasons.append("missing field 'domain' (or pass a default domain)")
    elif str(domain).lower() not in DOMAINS:
        reasons.append(f"unknown domain {domain!r} (expected one of {', '.join(DOMAINS)})")
    item_id = get("id")
    if item_id is None or str(item_id).strip() == "":
        reasons.append("missing field 'id'")
    for name in ("id", "source"):
        value = get(name)
        problem = control_character_problem(value, name) if isinstance(value, str) else None
        if problem:
            reasons.append(problem)
    difficulty = get("difficulty")
    if difficulty is not None and difficulty not in DIFFICULTIES:
        reasons.append(f"unknown difficulty {difficulty!r} (expected one of {', '.join(DIFFICULTIES)})")
    tags = get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.replace(";", ",").split(",") if t.strip()]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        reasons.append("tags must be a list of strings")
        tags = []
    reasons.extend(p for p in (control_character_problem(t, "a tag") for t in tags) if p)
    if reasons:
        return None, reasons
    item = QAItem(
        id=str(item_id).strip(),
        domain=str(domain).lower(),
        question=question,
        answer=answer,
        source=str(get("source") or default_source),
        difficulty=difficulty,
        tags=tuple(t.lower() for t in tags),
    )
    return item, []


def load_items(
    sources: Iterable[str],
    field_map: dict[str, str] | None = None,
    default_domain: str | None = None,
    max_question_chars: int = 2_000,
    max_answer_chars: int = 8_000,
    strict: bool = True,
    origins: dict[str, str] | None = None,
) -> tuple[list[QAItem], list[RowProblem]]:
    """Read every source and validate every row.

    With strict=True (the default) any bad row raises CorpusError naming all of them; with
    strict=False the valid items and the problems are both returned, so a caller can report them.
    Duplicate ids are problems too (the later row is named). `origins`, when given, receives each
    item's file (or `hf:` dataset), which tells items written separately apart, shard by shard.
    """
    items: list[QAItem] = []
    problems: list[RowProblem] = []
    seen: dict[str, str] = {}
    for source in sources:
        default_source = "studyllama" if source.startswith(str(Path(__file__).parent)) else Path(source).name
        rows_seen = 0
        for where, row, problem in iter_rows(source):
            rows_seen += 1
            if problem:
                problems.append(RowProblem(where, problem))
                continue
            item, reasons = row_to_item(
                row, where, field_map, default_domain, default_source, max_question_chars, max_answer_chars
            )
            if item is None:
                problems.append(RowProblem(where, "; ".join(reasons)))
                continue
            if item.id in seen:
                problems.append(RowProblem(where, f"duplicate id {item.id!r} (first seen at {seen[item.id]})"))
                continue
            seen[item.id] = where
            items.append(item)
            if origins is not None:
                origins[item.id] = re.sub(r":\d+$|\[\d+\]$", "", where)
        if rows_seen == 0:  # an empty file is a mistake (a failed export, the wrong path), not a corpus
            problems.append(RowProblem(source, "holds no QA rows (the file is empty, or only blank lines or a header)"))
    if problems:
        log.warning("%d invalid rows, %d valid", len(problems), len(items))
        if strict:
            raise CorpusError(problems, len(items))
    return items, problems


def write_jsonl(items: Iterable[QAItem], path: Path) -> None:
    """Write items as sorted-key JSONL with a trailing newline: byte-identical for identical input."""
    from data.fileio import atomic_write

    with atomic_write(path) as fh:
        for item in items:
            fh.write(json.dumps(item.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")


def read_split(path: str | Path) -> list[QAItem]:
    """Read a split file written by write_jsonl (strict)."""
    return load_items([str(path)])[0]
