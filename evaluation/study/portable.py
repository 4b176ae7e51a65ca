"""A learner's progress as one JSON document: export it, check it, import it.

The document: {"format": "studyllama-progress", "version": 1, "learner": NAME, "exported_at": ISO time,
"attempts": [...], "cards": [...]}, attempts oldest first with their grades and FSRS review logs, cards as
FSRS's own JSON. Import checks the whole document first and names every problem by its path
("attempts[3].score: ..."); then it adds, in one transaction, the attempts the learner does not have yet
(an attempt is the same when its question and time are), and takes each card whose last review is newer
than the stored one. Importing the same file twice changes nothing the second time.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

FORMAT, VERSION = "studyllama-progress", 1
MAX_PROBLEMS_SHOWN = 30


class ProgressFileError(ValueError):
    """A progress document that cannot be imported; lists every problem found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = f"; and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(
            f"the progress file cannot be imported ({len(problems)} problem(s), nothing was changed): "
            + "; ".join(shown)
            + more
        )


def export_progress(store, learner: str) -> dict:
    from evaluation.study.store import now_utc

    attempts = list(reversed(store.attempts(learner, full=True)))
    return {
        "format": FORMAT,
        "version": VERSION,
        "learner": learner,
        "exported_at": now_utc().isoformat(),
        "attempts": [
            {
                k: a[k]
                for k in (
                    "question_id",
                    "domain",
                    "topic",
                    "difficulty",
                    "answer",
                    "score",
                    "rating",
                    "created",
                    "grade",
                    "review",
                    "judge",
                )
            }
            for a in attempts
        ],
        "cards": [{"question_id": c["question_id"], "card": c["card"]} for c in store.cards(learner)],
    }


def _time(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def check_progress(doc) -> list[str]:
    """Every problem with the document (empty when it can be imported)."""
    from evaluation.study.grader import MAX_ANSWER_CHARS, RATINGS
    from evaluation.study.schedule import check_card
    from evaluation.study.store import LearnerError, check_name

    if not isinstance(doc, dict):
        return [f"the document must be a JSON object, got {type(doc).__name__}"]
    problems = []
    if doc.get("format") != FORMAT:
        problems.append(
            f"format: expected {FORMAT!r}, got {doc.get('format')!r} (is this a StudyLLaMA progress export?)"
        )
    if doc.get("version") != VERSION:
        problems.append(f"version: expected {VERSION}, got {doc.get('version')!r}")
    try:
        check_name(doc.get("learner"))
    except LearnerError as exc:
        problems.append(f"learner: {exc}")
    for section in ("attempts", "cards"):
        if not isinstance(doc.get(section), list):
            problems.append(f"{section}: must be a list, got {type(doc.get(section)).__name__}")
    for i, a in enumerate(doc.get("attempts") if isinstance(doc.get("attempts"), list) else []):
        where = f"attempts[{i}]"
        if not isinstance(a, dict):
            problems.append(f"{where}: must be an object, got {type(a).__name__}")
            continue
        if not isinstance(a.get("question_id"), str) or not a.get("question_id"):
            problems.append(f"{where}.question_id: must be a non-empty string")
        answer = a.get("answer")
        if not isinstance(answer, str) or not answer.strip() or len(answer) > MAX_ANSWER_CHARS:
            problems.append(f"{where}.answer: must be non-empty text of at most {MAX_ANSWER_CHARS:,} characters")
        score = a.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
            problems.append(f"{where}.score: must be a number in [0, 1], got {score!r}")
        if a.get("rating") not in RATINGS:
            problems.append(f"{where}.rating: must be one of {', '.join(RATINGS)}, got {a.get('rating')!r}")
        if _time(a.get("created")) is None:
            problems.append(f"{where}.created: must be an ISO 8601 time with a time zone, got {a.get('created')!r}")
        for key in ("grade", "review"):
            if not isinstance(a.get(key), dict):
                problems.append(f"{where}.{key}: must be an object")
        if a.get("judge") is not None and not isinstance(a.get("judge"), dict):
            problems.append(f"{where}.judge: must be an object or null")
        for key in ("domain", "topic", "difficulty"):
            if a.get(key) is not None and not isinstance(a.get(key), str):
                problems.append(f"{where}.{key}: must be a string or null")
    seen = set()
    for i, c in enumerate(doc.get("cards") if isinstance(doc.get("cards"), list) else []):
        where = f"cards[{i}]"
        if not isinstance(c, dict):
            problems.append(f"{where}: must be an object, got {type(c).__name__}")
            continue
        qid = c.get("question_id")
        if not isinstance(qid, str) or not qid:
            problems.append(f"{where}.question_id: must be a non-empty string")
        elif qid in seen:
            problems.append(f"{where}.question_id: {qid!r} has a card already")
        seen.add(qid)
        why = check_card(c.get("card"))
        if why:
            problems.append(f"{where}.card: {why}")
    if not problems:
        answered = {a["question_id"] for a in doc["attempts"]}
        for i, c in enumerate(doc["cards"]):
            if c["question_id"] not in answered:
                problems.append(f"cards[{i}]: no attempt at {c['question_id']!r} moved this card")
    return problems


def parse_progress(text: str | bytes) -> dict:
    """The document in a file's text, or ProgressFileError naming what is wrong (line and column for bad JSON)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProgressFileError([f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"]) from None
    except UnicodeDecodeError as exc:
        raise ProgressFileError([f"not UTF-8 text: {exc.reason} at byte {exc.start}"]) from None
    problems = check_progress(doc)
    if problems:
        raise ProgressFileError(problems)
    return doc


def import_progress(store, doc: dict, learner: str | None = None) -> dict:
    """Merge a checked document into the store under `learner` (default: the document's learner)."""
    from evaluation.study.store import LATEST_ATTEMPT, _utc_key, check_name

    problems = check_progress(doc)
    if problems:
        raise ProgressFileError(problems)
    name = check_name(learner or doc["learner"])
    added = cards_taken = 0
    with store.transaction() as con:
        lid = store.learner_id(con, name, create=True)
        for a in doc["attempts"]:
            cur = con.execute(
                "INSERT OR IGNORE INTO attempts (learner_id, question_id, domain, topic, difficulty, answer, score, "
                "rating, grade, review, judge, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    lid,
                    a["question_id"],
                    a.get("domain"),
                    a.get("topic"),
                    a.get("difficulty"),
                    a["answer"],
                    float(a["score"]),
                    a["rating"],
                    json.dumps(a["grade"], ensure_ascii=False),
                    json.dumps(a["review"]),
                    json.dumps(a["judge"]) if a.get("judge") else None,
                    _time(a["created"]).astimezone(timezone.utc).isoformat(),
                ),
            )
            added += cur.rowcount
        for c in doc["cards"]:
            row = con.execute(
                "SELECT card FROM cards WHERE learner_id = ? AND question_id = ?", (lid, c["question_id"])
            ).fetchone()
            theirs = c["card"].get("last_review") or ""
            if row is not None and (json.loads(row["card"]).get("last_review") or "") >= theirs:
                continue
            con.execute(
                "INSERT INTO cards (learner_id, question_id, card, due, attempt_id) VALUES (?, ?, ?, ?, 0) "
                "ON CONFLICT (learner_id, question_id) DO UPDATE SET card = excluded.card, due = excluded.due",
                (lid, c["question_id"], json.dumps(c["card"]), _utc_key(c["card"]["due"])),
            )
            cards_taken += 1
        # every card points at its question's latest attempt, whichever side that came from
        con.execute(f"UPDATE cards SET attempt_id = ({LATEST_ATTEMPT}) WHERE learner_id = ?", (lid,))
    return {
        "learner": name,
        "attempts_added": added,
        "attempts_in_file": len(doc["attempts"]),
        "cards_taken": cards_taken,
    }
