"""The study app's progress store (SQLite, WAL, one transaction per attempt) and its JSON export/import."""

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from evaluation.study.portable import ProgressFileError, export_progress, import_progress, parse_progress
from evaluation.study.schedule import make_scheduler
from evaluation.study.store import PAUSE_ENV, LearnerError, ProgressStore, check_name
from tests.fixtures.study import ITEMS

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def grade(score: float, rating: str) -> dict:
    return {"score": score, "rating": rating, "key_points": [], "question_id": "x"}


@pytest.fixture
def store(tmp_path):
    s = ProgressStore(tmp_path / "progress.sqlite")
    yield s
    s.close()


@pytest.fixture
def scheduler():
    return make_scheduler(fuzz=False)


def test_an_attempt_is_saved_with_its_card_and_comes_back_when_due(store, scheduler):
    saved = store.save_attempt("ada", ITEMS[0], "my answer", grade(0.1, "again"), scheduler, T0)
    assert saved["due"] == (T0 + timedelta(minutes=1)).isoformat()
    assert store.learners() == ["ada"]
    [a] = store.attempts("ada", full=True)
    assert (a["question_id"], a["answer"], a["score"], a["rating"], a["topic"]) == (
        "cs-1",
        "my answer",
        0.1,
        "again",
        "hashing",
    )
    assert a["review"]["rating"] == 1
    assert store.due("ada", T0) == []
    assert [c["question_id"] for c in store.due("ada", T0 + timedelta(minutes=2))] == ["cs-1"]
    assert store.check_consistency() == []
    assert store._con().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_mastery_is_the_mean_of_each_questions_latest_score(store, scheduler):
    store.save_attempt("ada", ITEMS[0], "a", grade(0.2, "again"), scheduler, T0)
    store.save_attempt("ada", ITEMS[2], "b", grade(0.6, "good"), scheduler, T0 + timedelta(minutes=1))
    store.save_attempt("ada", ITEMS[0], "c", grade(1.0, "easy"), scheduler, T0 + timedelta(minutes=2))
    store.save_attempt("ada", ITEMS[1], "d", grade(0.5, "hard"), scheduler, T0 + timedelta(minutes=3))
    m = store.mastery("ada")
    assert [round(v, 3) for _, v in m["hashing"]] == [0.2, 0.4, 0.8]
    assert [v for _, v in m["searching"]] == [0.5]


def test_a_failed_save_leaves_nothing_behind(store, scheduler):
    store.save_attempt("ada", ITEMS[0], "first", grade(0.5, "hard"), scheduler, T0)
    with pytest.raises(Exception, match="CHECK constraint"):
        store.save_attempt("bob", ITEMS[0], "bad", grade(1.5, "easy"), scheduler, T0)  # score out of range
    assert store.learners() == ["ada"]  # bob's creation was rolled back with the attempt
    assert len(store.attempts("ada")) == 1 and store.check_consistency() == []


def test_learners_answering_at_once_from_two_connections_lose_nothing(tmp_path, scheduler):
    path = tmp_path / "progress.sqlite"
    stores = [ProgressStore(path), ProgressStore(path)]  # as two processes would hold it
    errors = []

    def answer(k: int, name: str):
        try:
            for i in range(15):
                stores[k].save_attempt(
                    name, ITEMS[i % 3], f"{name} {i}", grade(0.5, "good"), scheduler, T0 + timedelta(seconds=i)
                )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=answer, args=(k % 2, f"learner{k}")) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for k in range(4):
        attempts = stores[0].attempts(f"learner{k}", full=True)
        assert len(attempts) == 15 and {a["answer"] for a in attempts} == {f"learner{k} {i}" for i in range(15)}
    assert stores[1].check_consistency() == []
    for s in stores:
        s.close()


KILLED_SAVER = """
import sys
from datetime import datetime, timedelta, timezone
from evaluation.study.schedule import make_scheduler
from evaluation.study.store import ProgressStore
from tests.fixtures.study import ITEMS
store, sched = ProgressStore(sys.argv[1]), make_scheduler(fuzz=False)
t0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
g = {"score": 0.5, "rating": "good", "key_points": []}
store.save_attempt("ada", ITEMS[0], "kept", g, sched, t0)
print("saved", flush=True)
store.save_attempt("ada", ITEMS[0], "in flight", g, sched, t0 + timedelta(minutes=20))
"""


def test_a_kill_in_the_middle_of_a_save_leaves_no_partial_attempt(tmp_path):
    db = tmp_path / "progress.sqlite"
    env = dict(os.environ, **{PAUSE_ENV: "60"})
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_SAVER, str(db)],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout.readline().strip() == "saved"
        for line in proc.stderr:  # the second save announces its open transaction, then waits
            if "transaction open" in line:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    store = ProgressStore(db)
    attempts = store.attempts("ada", full=True)
    assert [a["answer"] for a in attempts] == ["kept"]  # the saved one survives, the half-saved one is gone
    assert store.cards("ada")[0]["card"]["last_review"] == "2026-01-05T09:00:00+00:00"
    assert store.check_consistency() == []
    store.close()


def test_export_then_import_as_another_learner_round_trips_and_is_idempotent(store, scheduler):
    store.save_attempt("ada", ITEMS[0], "one", grade(0.2, "again"), scheduler, T0)
    store.save_attempt("ada", ITEMS[0], "two", grade(0.9, "easy"), scheduler, T0 + timedelta(minutes=5))
    store.save_attempt("ada", ITEMS[1], "three", grade(0.6, "good"), scheduler, T0 + timedelta(minutes=6))
    doc = json.loads(json.dumps(export_progress(store, "ada")))
    assert doc["format"] == "studyllama-progress" and [a["answer"] for a in doc["attempts"]] == ["one", "two", "three"]
    result = import_progress(store, parse_progress(json.dumps(doc)), "ada (laptop)")
    assert result == {"learner": "ada (laptop)", "attempts_added": 3, "attempts_in_file": 3, "cards_taken": 2}
    again = import_progress(store, doc, "ada (laptop)")
    assert again["attempts_added"] == 0 and again["cards_taken"] == 0
    strip = lambda rows: [{k: v for k, v in r.items() if k != "id"} for r in rows]  # noqa: E731
    assert strip(store.attempts("ada (laptop)", full=True)) == strip(store.attempts("ada", full=True))
    assert [c["card"] for c in store.cards("ada (laptop)")] == [c["card"] for c in store.cards("ada")]
    assert store.check_consistency() == []


def test_import_keeps_the_newer_card_and_points_it_at_the_latest_attempt(store, scheduler):
    store.save_attempt("ada", ITEMS[0], "old", grade(0.2, "again"), scheduler, T0)
    old_doc = export_progress(store, "ada")
    store.save_attempt("ada", ITEMS[0], "new", grade(0.9, "easy"), scheduler, T0 + timedelta(hours=1))
    newer_card = store.cards("ada")[0]["card"]
    import_progress(store, old_doc)  # an older export must not move the schedule back
    assert store.cards("ada")[0]["card"] == newer_card
    assert store.check_consistency() == []


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (lambda d: d.update(format="something-else"), "format: expected 'studyllama-progress'"),
        (lambda d: d.update(version=7), "version: expected 1, got 7"),
        (lambda d: d.update(learner=""), "learner: the learner's name is empty"),
        (lambda d: d.update(attempts={}), "attempts: must be a list"),
        (lambda d: d["attempts"][0].update(score=1.7), "attempts[0].score: must be a number in [0, 1], got 1.7"),
        (
            lambda d: d["attempts"][0].update(rating="great"),
            "attempts[0].rating: must be one of again, hard, good, easy",
        ),
        (lambda d: d["attempts"][0].update(created="yesterday"), "attempts[0].created: must be an ISO 8601 time"),
        (lambda d: d["attempts"][0].update(answer=""), "attempts[0].answer: must be non-empty text"),
        (lambda d: d["attempts"][0].pop("grade"), "attempts[0].grade: must be an object"),
        (lambda d: d["cards"][0]["card"].pop("due"), "cards[0].card: is not an FSRS card"),
        (lambda d: d["cards"].append(d["cards"][0]), "cards[1].question_id: 'cs-1' has a card already"),
        (lambda d: d["cards"][0].update(question_id="cs-9"), "cards[0]: no attempt at 'cs-9' moved this card"),
    ],
)
def test_a_bad_progress_file_is_refused_naming_the_problem_and_nothing_changes(store, scheduler, mutate, problem):
    store.save_attempt("ada", ITEMS[0], "one", grade(0.2, "again"), scheduler, T0)
    doc = json.loads(json.dumps(export_progress(store, "ada")))
    mutate(doc)
    with pytest.raises(ProgressFileError) as info:
        import_progress(store, doc, "bob")
    assert any(problem in p for p in info.value.problems), info.value.problems
    assert "nothing was changed" in str(info.value)
    assert store.learners() == ["ada"]


def test_unreadable_json_is_refused_with_its_position():
    with pytest.raises(ProgressFileError, match="not valid JSON: .* line 2, column 1"):
        parse_progress('{"format": 1,\n}')
    with pytest.raises(ProgressFileError, match="must be a JSON object"):
        parse_progress("[1, 2]")


def test_learner_names_are_checked():
    assert check_name("  Ada   Lovelace ") == "Ada Lovelace"
    for bad, msg in [
        ("", "empty"),
        ("x" * 65, "over the 64-character limit"),
        ("a\x00b", "control characters"),
        (None, "empty"),
    ]:
        with pytest.raises(LearnerError, match=msg):
            check_name(bad)


def test_unknown_learner_is_an_error_not_an_empty_list(store):
    with pytest.raises(LearnerError, match="no learner named 'zed'"):
        store.attempts("zed")
