"""Learners' progress in SQLite: attempts with their grades, and one FSRS card per learner and question.

The database runs in WAL mode with full synchronous commits, and each attempt is saved in one
transaction (`BEGIN IMMEDIATE`: the attempt, its grade, its review and the card's new due time), so a
process killed mid-save leaves the attempt either wholly there or not at all, and every attempt that was
answered "saved" survives. Every card points at the attempt that last moved it (`cards.attempt_id`);
`check_consistency` verifies that. Each thread gets its own connection; writers wait for each other
(busy timeout) instead of failing, so several learners can answer at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)
SCHEMA_VERSION = "1"
MAX_NAME_CHARS = 64
# tests set this to hold a save's transaction open, so they can kill the app in the middle of one
PAUSE_ENV = "STUDYLLAMA_STUDY_SAVE_PAUSE_S"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS learners (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    learner_id INTEGER NOT NULL REFERENCES learners(id),
    question_id TEXT NOT NULL,
    domain TEXT, topic TEXT, difficulty TEXT,
    answer TEXT NOT NULL,
    score REAL NOT NULL CHECK (score >= 0 AND score <= 1),
    rating TEXT NOT NULL CHECK (rating IN ('again', 'hard', 'good', 'easy')),
    grade TEXT NOT NULL,
    review TEXT NOT NULL,
    judge TEXT,
    created TEXT NOT NULL,
    UNIQUE (learner_id, question_id, created)
);
CREATE INDEX IF NOT EXISTS attempts_by_learner ON attempts (learner_id, created);
CREATE TABLE IF NOT EXISTS cards (
    learner_id INTEGER NOT NULL REFERENCES learners(id),
    question_id TEXT NOT NULL,
    card TEXT NOT NULL,
    due TEXT NOT NULL,
    attempt_id INTEGER NOT NULL REFERENCES attempts(id) DEFERRABLE INITIALLY DEFERRED,
    PRIMARY KEY (learner_id, question_id)
);
CREATE INDEX IF NOT EXISTS cards_due ON cards (learner_id, due);
"""
# the attempt a card must point at: its question's latest (by time, then id)
LATEST_ATTEMPT = (
    "SELECT a.id FROM attempts a WHERE a.learner_id = cards.learner_id AND a.question_id = cards.question_id "
    "ORDER BY a.created DESC, a.id DESC LIMIT 1"
)


class LearnerError(ValueError):
    """A learner name the store refuses, or a learner it does not know."""


def check_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise LearnerError("the learner's name is empty: type a name first")
    name = " ".join(name.split())
    if len(name) > MAX_NAME_CHARS:
        raise LearnerError(
            f"the learner's name is {len(name)} characters long, over the {MAX_NAME_CHARS}-character limit"
        )
    if any(not ch.isprintable() for ch in name):
        raise LearnerError("the learner's name holds control characters")
    return name


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def card_id(learner: str, question_id: str) -> int:
    """A stable FSRS card id for a learner's question (FSRS wants an int; 53 bits stay exact in JSON)."""
    return int(hashlib.sha256(f"{learner}\0{question_id}".encode()).hexdigest()[:13], 16)


class ProgressStore:
    """The progress database at `path` (created with its schema on first open)."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 30.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        con = self._con()
        mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode}); is it on a network file system?")
        con.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")  # every statement is idempotent
        with self.transaction() as c:
            c.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        if version != SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} has progress schema {version}; this app reads schema {SCHEMA_VERSION}")

    # --- connections and transactions ---------------------------------------------------------------
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False)
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA foreign_keys=ON")
            con.execute("PRAGMA synchronous=FULL")
            self._local.con = con
            with self._all_lock:
                self._all.append(con)
        return con

    @contextmanager
    def transaction(self):
        """A write transaction: all of it commits, or (on any error or a kill) none of it."""
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def close(self) -> None:
        with self._all_lock:
            for con in self._all:
                con.close()
            self._all.clear()
        self._local = threading.local()

    # --- learners -------------------------------------------------------------------------------------
    def learner_id(self, con, name: str, create: bool) -> int | None:
        row = con.execute("SELECT id FROM learners WHERE name = ?", (name,)).fetchone()
        if row:
            return int(row["id"])
        if not create:
            return None
        return int(
            con.execute("INSERT INTO learners (name, created) VALUES (?, ?)", (name, now_utc().isoformat())).lastrowid
        )

    def add_learner(self, name: str) -> str:
        name = check_name(name)
        with self.transaction() as con:
            self.learner_id(con, name, create=True)
        return name

    def learners(self) -> list[str]:
        return [r["name"] for r in self._con().execute("SELECT name FROM learners ORDER BY name")]

    def _known(self, name: str) -> int:
        lid = self.learner_id(self._con(), check_name(name), create=False)
        if lid is None:
            raise LearnerError(f"no learner named {name!r}")
        return lid

    # --- attempts ---------------------------------------------------------------------------------------
    def save_attempt(
        self, learner: str, item, answer: str, grade: dict, scheduler, when: datetime | None = None
    ) -> dict:
        """Record a graded attempt and move the question's card; returns the attempt with its new due time."""
        from evaluation.study.schedule import new_card, review

        name = check_name(learner)
        when = when or now_utc()
        pause = float(os.environ.get(PAUSE_ENV) or 0)
        with self.transaction() as con:
            lid = self.learner_id(con, name, create=True)
            row = con.execute(
                "SELECT card FROM cards WHERE learner_id = ? AND question_id = ?", (lid, item.id)
            ).fetchone()
            card = json.loads(row["card"]) if row else new_card(card_id(name, item.id), when)
            card, review_log = review(scheduler, card, grade["rating"], when)
            cur = con.execute(
                "INSERT INTO attempts (learner_id, question_id, domain, topic, difficulty, answer, score, rating, "
                "grade, review, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    lid,
                    item.id,
                    item.domain,
                    item.topic,
                    item.difficulty,
                    answer,
                    grade["score"],
                    grade["rating"],
                    json.dumps(grade, ensure_ascii=False),
                    json.dumps(review_log),
                    when.isoformat(),
                ),
            )
            attempt_id = int(cur.lastrowid)
            if pause:
                log.warning("attempt %d: transaction open, pausing %.1f s (%s)", attempt_id, pause, PAUSE_ENV)
                time.sleep(pause)
            con.execute(
                "INSERT INTO cards (learner_id, question_id, card, due, attempt_id) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (learner_id, question_id) DO UPDATE SET card = excluded.card, due = excluded.due, "
                "attempt_id = excluded.attempt_id",
                (lid, item.id, json.dumps(card), _utc_key(card["due"]), attempt_id),
            )
        return {
            "id": attempt_id,
            "learner": name,
            "question_id": item.id,
            "score": grade["score"],
            "rating": grade["rating"],
            "created": when.isoformat(),
            "due": card["due"],
        }

    def set_judge(self, attempt_id: int, learner: str, judge: dict) -> None:
        lid = self._known(learner)
        with self.transaction() as con:
            cur = con.execute(
                "UPDATE attempts SET judge = ? WHERE id = ? AND learner_id = ?", (json.dumps(judge), attempt_id, lid)
            )
            if cur.rowcount != 1:
                raise LearnerError(f"learner {learner!r} has no attempt {attempt_id}")

    def attempt(self, attempt_id: int, learner: str) -> dict:
        lid = self._known(learner)
        row = (
            self._con().execute("SELECT * FROM attempts WHERE id = ? AND learner_id = ?", (attempt_id, lid)).fetchone()
        )
        if row is None:
            raise LearnerError(f"learner {learner!r} has no attempt {attempt_id}")
        return _attempt_dict(row, full=True)

    def attempts(self, learner: str, limit: int | None = None, full: bool = False) -> list[dict]:
        """The learner's attempts, newest first."""
        lid = self._known(learner)
        sql = "SELECT * FROM attempts WHERE learner_id = ? ORDER BY created DESC, id DESC"
        rows = self._con().execute(sql + (" LIMIT ?" if limit else ""), (lid, limit) if limit else (lid,)).fetchall()
        return [_attempt_dict(r, full) for r in rows]

    def cards(self, learner: str) -> list[dict]:
        lid = self._known(learner)
        rows = (
            self._con()
            .execute("SELECT question_id, card, due FROM cards WHERE learner_id = ? ORDER BY due, question_id", (lid,))
            .fetchall()
        )
        return [{"question_id": r["question_id"], "card": json.loads(r["card"]), "due": r["due"]} for r in rows]

    def due(self, learner: str, when: datetime | None = None) -> list[dict]:
        """The learner's questions due by `when` (now), the longest overdue first."""
        return [c for c in self.cards(learner) if c["due"] <= _utc_key((when or now_utc()).isoformat())]

    def mastery(self, learner: str) -> dict[str, list[tuple[str, float]]]:
        """topic -> [(time, mastery)] after each attempt in it: the mean of the latest score of every question
        of the topic answered so far (so a question answered well after a poor try lifts the topic)."""
        latest: dict[str, dict[str, float]] = {}
        series: dict[str, list[tuple[str, float]]] = {}
        for a in reversed(self.attempts(learner)):
            topic = a["topic"] or "untagged"
            latest.setdefault(topic, {})[a["question_id"]] = a["score"]
            scores = latest[topic].values()
            series.setdefault(topic, []).append((a["created"], sum(scores) / len(scores)))
        return series

    def check_consistency(self) -> list[str]:
        """Problems that a partial save would leave (empty when the database is whole)."""
        con = self._con()
        problems = [r[0] for r in con.execute("PRAGMA integrity_check") if r[0] != "ok"]
        for r in con.execute(f"SELECT learner_id, question_id, attempt_id, ({LATEST_ATTEMPT}) AS latest FROM cards"):
            if r["latest"] is None or r["attempt_id"] != r["latest"]:
                problems.append(
                    f"card of learner {r['learner_id']} for {r['question_id']} points at attempt "
                    f"{r['attempt_id']}, the latest attempt is {r['latest']}"
                )
        for r in con.execute(
            "SELECT a.learner_id, a.question_id FROM attempts a LEFT JOIN cards c ON "
            "c.learner_id = a.learner_id AND c.question_id = a.question_id WHERE c.question_id IS NULL"
        ):
            problems.append(f"attempt of learner {r['learner_id']} at {r['question_id']} has no card")
        return problems


def _utc_key(iso: str) -> str:
    """An ISO time as a UTC string that sorts in time order (the `due` column compares as text)."""
    return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _attempt_dict(row, full: bool) -> dict:
    d = {k: row[k] for k in ("id", "question_id", "domain", "topic", "difficulty", "score", "rating", "created")}
    d["judge"] = json.loads(row["judge"]) if row["judge"] else None
    if full:
        d.update(answer=row["answer"], grade=json.loads(row["grade"]), review=json.loads(row["review"]))
    return d
