"""The study app's HTTP API on the hand-made guide (no model, a real SQLite store), with and without a
scripted judge: pages, picking, grading and saving, the schedule, export/import, and the errors it gives."""

import json
import re

import pytest

from evaluation.geval import Judgement
from evaluation.study.app import create_app
from evaluation.study.config import StudyConfig
from evaluation.study.grader import Grader
from evaluation.study.judging import StudyJudge
from evaluation.study.schedule import make_scheduler
from evaluation.study.services import Services
from evaluation.study.store import ProgressStore
from tests.fixtures.study import ITEMS, tiny_guide


class ScriptedJudge:
    """Scores 5 when the candidate answer is the reference answer, else `other` (1: a judge that separates)."""

    def __init__(self, other: float = 1.0):
        self.other, self.prompts = other, []

    def cache_identity(self):
        return {"model": "scripted", "base_url": "local"}

    def method_settings(self, method):
        return {}

    def judge(self, prompt, method="probability"):
        self.prompts.append(prompt)
        ref = re.search(r"Reference answer:\n(.*)\nCandidate answer:\n(.*)\n\nEvaluation", prompt, re.S)
        return Judgement(5.0 if ref.group(1) == ref.group(2) else self.other, method, {})


def make_client(tmp_path, judge=None):
    from fastapi.testclient import TestClient

    guide = tiny_guide()
    study_judge = None
    if judge is not None:
        study_judge = StudyJudge(judge, list(ITEMS), sanity_pairs=3)
        study_judge.start_sanity().join()
    services = Services(
        StudyConfig(db=str(tmp_path / "p.sqlite")),
        guide,
        Grader(guide),
        ProgressStore(tmp_path / "p.sqlite"),
        make_scheduler(fuzz=False),
        ctx=None,
        answerer=None,
        judge=study_judge,
    )
    return TestClient(create_app(services)), services


@pytest.fixture
def client(tmp_path):
    c, services = make_client(tmp_path)
    yield c
    services.close()


def test_pages_render_with_local_assets_only(client):
    for path in ("/", "/interview", "/progress"):
        r = client.get(path)
        assert r.status_code == 200
        assert "http://" not in r.text and "https://" not in r.text  # nothing from a CDN
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/style.css").status_code == 200
    assert "No judge is configured" in client.get("/interview").text


def test_answer_is_graded_saved_and_scheduled(client):
    assert client.post("/api/learners", json={"name": " ada "}).json() == {"learner": "ada"}
    r = client.post(
        "/api/answer",
        json={
            "learner": "ada",
            "question_id": "cs-1",
            "answer": "A hash table stores key-value pairs in an array of buckets.",
        },
    )
    assert r.status_code == 200
    body = r.json()
    assert body["grade"]["rating"] == "hard" and body["judge_available"] is False
    assert [c["name"] for c in body["grade"]["concepts_missed"]] == ["hash function", "collision"]
    progress = client.get("/api/progress?learner=ada").json()
    assert progress["n_attempts"] == 1 and progress["attempts"][0]["question"] == ITEMS[0].question
    assert "<svg" in progress["plot_svg"] and "hashing" in progress["plot_svg"]
    # picked questions avoid what the learner has answered; nothing is due until the card's time comes
    picks = {client.get("/api/next?learner=ada&domain=cs&topic=hashing").json()["question"]["id"] for _ in range(10)}
    assert picks == {"cs-3"}
    assert client.get("/api/next?learner=ada&mode=due").json()["question"] is None
    page = client.get("/progress", cookies={"studyllama_learner": "ada"}).text
    assert "ada: 1 attempt" in page and ITEMS[0].question in page


def test_refusals_name_the_problem(client):
    cases = [
        (
            client.post("/api/answer", json={"learner": "ada", "question_id": "cs-1", "answer": ""}),
            400,
            "the answer is empty",
        ),
        (
            client.post("/api/answer", json={"learner": "ada", "question_id": "nope", "answer": "x"}),
            404,
            "no question with id 'nope'",
        ),
        (client.post("/api/answer", json={"learner": "ada", "question_id": "cs-1"}), 422, "answer: Field required"),
        (
            client.post("/api/answer", content=b"x" * (2 << 20), headers={"content-type": "application/json"}),
            413,
            "over this endpoint",
        ),
        (client.get("/api/next?domain=stats"), 404, "no question matches"),
        (client.get("/api/next?mode=later"), 400, "mode must be pick or due"),
        (client.get("/api/progress?learner=zed"), 404, "no learner named 'zed'"),
        (client.post("/api/ask", json={"question": "What is a hash table?"}), 503, "started without a model"),
        (client.post("/api/attempts/1/judge", json={"learner": "ada"}), 404, "no judge is configured"),
        (client.post("/api/import", content=b'{"format": 3}'), 400, "format: expected 'studyllama-progress'"),
    ]
    for r, status, message in cases:
        assert r.status_code == status and message in r.json()["error"], (r.status_code, r.text)
    assert client.get("/api/learners").json() == {"learners": []}  # no refused request created anything


def test_export_then_import_through_the_api(client):
    client.post(
        "/api/answer", json={"learner": "ada", "question_id": "cs-2", "answer": "Binary search halves a sorted array."}
    )
    exported = client.get("/api/export?learner=ada")
    assert "attachment" in exported.headers["content-disposition"]
    r = client.post("/api/import?learner=bea", content=exported.content)
    assert r.json() == {"learner": "bea", "attempts_added": 1, "attempts_in_file": 1, "cards_taken": 1}
    assert client.get("/api/progress?learner=bea").json()["n_attempts"] == 1


def test_a_judge_that_separates_scores_an_attempt_with_its_verdict(tmp_path):
    client, services = make_client(tmp_path, ScriptedJudge(other=1.0))
    assert "G-Eval judge: <b>scripted</b>" in client.get("/interview").text
    r = client.post("/api/answer", json={"learner": "ada", "question_id": "cs-1", "answer": ITEMS[0].answer}).json()
    assert r["judge_available"] is True
    j = client.post(f"/api/attempts/{r['attempt']['id']}/judge", json={"learner": "ada"}).json()
    assert j["score"] == 5.0 and j["prompt"] == "reference"
    assert j["sanity"]["verdict"] == "inconclusive"  # 3 planted pairs: fewer than the 5 a verdict needs
    assert "inconclusive" in j["sanity"]["warning"]
    stored = services.store.attempts("ada")[0]["judge"]
    assert stored["score"] == 5.0
    services.close()


def test_a_judge_that_does_not_separate_carries_the_warning():
    judge = StudyJudge(ScriptedJudge(other=5.0), list(ITEMS) * 3, sanity_pairs=6)  # rates everything 5
    judge.start_sanity().join()
    result = judge.score("q?", "an answer", "the reference")
    assert result["score"] == 5.0
    assert result["sanity"]["verdict"] == "does not separate"
    assert "Its scores are not a quality measure" in result["sanity"]["warning"]
    assert json.dumps(result)  # stored as JSON with the attempt
