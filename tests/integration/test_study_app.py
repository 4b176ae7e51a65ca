"""The study app end to end: `python -m evaluation.study` on the bundled model and the session-built graph,
driven through Debian's Chromium with Playwright (ask, mock interview, reload), plus bad input, two learners
at once, and a SIGKILL in the middle of a save followed by a restart."""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


class App:
    """A running `python -m evaluation.study` process: its URL and its stderr lines as they come."""

    def __init__(self, args: list[str], env_extra: dict | None = None, timeout: float = 900):
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", **(env_extra or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "evaluation.study", "--port", "0", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._events: list[tuple[str, threading.Event]] = []
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self.url, deadline = None, time.monotonic() + timeout
        while self.url is None and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("serving"):
                self.url = line.split(" at ")[1].split()[0].rstrip("/")
        if self.url is None:
            self.proc.kill()
            raise AssertionError("the study app never printed its URL:\n" + "".join(self.lines[-60:]))

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            for text, ev in self._events:
                if text in line:
                    ev.set()

    def wait_for_log(self, text: str, timeout: float = 120) -> bool:
        ev = threading.Event()
        self._events.append((text, ev))
        if any(text in line for line in self.lines):
            return True
        return ev.wait(timeout)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def call(url: str, method: str = "GET", body=None, raw: bytes | None = None, timeout: float = 300):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def app_args(built, kg_dirs, tmp_path_factory):
    work = tmp_path_factory.mktemp("study")
    question_cache = work / "question_embeddings.npz"
    local = ROOT / "artifacts" / "data" / "question_embeddings.npz"
    if local.exists():  # vectors keyed by each question's hash: a copy only saves encoding them again
        shutil.copy(local, question_cache)
    args = ["--work_dir", str(work), "--question_cache", str(question_cache)]
    return work, args + ["--kg.work_dir", str(kg_dirs[1]), "--store.data_dir", str(kg_dirs[0])]


@pytest.fixture(scope="module")
def app(app_args):
    work, args = app_args
    running = App(args + ["--db", str(work / "progress.sqlite"), "--max_new_tokens", "12"])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.skip("no Chromium at /usr/bin/chromium (scripts/setup.sh --test installs it where apt-get is available)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    pg = context.new_page()
    pg.set_default_timeout(300_000)  # the bundled model shares two cores with the rest of the suite
    problems = []
    pg.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None
    )
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.problems = problems
    yield pg
    context.close()


def open_page(pg, url: str):
    pg.goto(url)
    pg.wait_for_selector("body[data-ready='1']")


def use_learner(pg, name: str):
    pg.fill("#learner", name)
    pg.click("#learner-form button")
    pg.wait_for_selector("body[data-ready='1']")


def test_ask_then_interview_then_reload_in_chromium(app, page):
    open_page(page, app.url + "/")
    use_learner(page, "ada")
    page.fill("#question", "What is a hash table?")
    page.click("#ask-button")
    page.wait_for_selector("#answer[data-done='1']")
    assert page.text_content("#answer").strip()  # the model's answer, streamed then final
    assert "stopped by" in page.text_content("#answer-meta")
    assert page.locator("#evidence li").count() > 0
    assert page.locator("#graph svg circle").count() > 0  # the subgraph, drawn
    assert page.locator("#guide .guide-item").count() == 3  # the study guide's own answers, apart from the model's
    assert "curated" in page.text_content("#guide-card h2")

    open_page(page, app.url + "/interview")
    page.select_option("#domain", "cs")
    page.click("#pick-button")
    page.wait_for_selector("#question-card:not([hidden])")
    question = page.text_content("#question-text")
    page.fill("#answer-text", "A hash function maps each key to a bucket of an array, so lookups take constant time.")
    page.click("#answer-button")
    page.wait_for_selector("#grade-card:not([hidden])")
    assert "/ 100" in page.text_content("#grade-score")
    assert page.text_content("#grade-rating") in ("again", "hard", "good", "easy")
    assert page.locator("#key-points li").count() > 0
    assert page.text_content("#reference-text").strip()
    assert page.locator("#practise-next li").count() == 3
    assert page.locator("#judge").is_hidden()  # no judge configured: no judge score anywhere

    page.fill("#answer-text", "a half-finished second try")  # the answer in progress, not yet graded
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert question in page.text_content("#attempts")  # the saved attempt survives the reload
    assert page.text_content("#question-text") == question
    assert page.input_value("#answer-text") == "a half-finished second try"

    open_page(page, app.url + "/progress")
    assert page.locator("#mastery-plot svg circle").count() >= 1
    assert question in page.text_content("#attempt-table")
    assert page.problems == []


def test_html_in_a_question_an_answer_and_a_name_is_shown_as_text(app, page):
    open_page(page, app.url + "/")
    name = "<b>eve</b>"
    use_learner(page, name)
    question = HOSTILE + " What is recursion?"
    page.fill("#question", question)
    page.click("#ask-button")
    page.wait_for_selector("#answer[data-done='1']")
    assert page.text_content("#asked") == question
    open_page(page, app.url + "/interview")
    page.click("#pick-button")
    page.wait_for_selector("#question-card:not([hidden])")
    answer = HOSTILE + " recursion calls itself"
    page.fill("#answer-text", answer)
    page.click("#answer-button")
    page.wait_for_selector("#grade-card:not([hidden])")
    assert page.text_content("#your-answer") == answer
    open_page(page, app.url + "/progress")
    assert name in page.text_content("main h2")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img").count() == 0 and page.locator("main b").count() == 0
    assert page.problems == []


def test_bad_input_is_refused_with_a_reason_and_saves_nothing(app):
    url = app.url
    assert call(url + "/api/learners", "POST", {"name": "frank"})[0] == 200
    qid = call(url + "/api/next?domain=stats")[1]["question"]["id"]
    cases = [
        ({"learner": "frank", "question_id": qid, "answer": ""}, 400, "the answer is empty"),
        ({"learner": "frank", "question_id": qid, "answer": "   "}, 400, "the answer is empty"),
        ({"learner": "frank", "question_id": qid, "answer": "x" * 100_000}, 400, "over the 10,000-character limit"),
        ({"learner": "frank", "question_id": "no-such-id", "answer": "an answer"}, 404, "no question with id"),
        ({"learner": "", "question_id": qid, "answer": "an answer"}, 400, "name is empty"),
        ({"learner": "frank", "question_id": qid}, 422, "answer: Field required"),
    ]
    for body, status, message in cases:
        got, reply = call(url + "/api/answer", "POST", body)
        assert got == status and message in reply["error"], (body.get("answer", "")[:20], got, reply)
    # a 2 MB body is refused from its Content-Length alone, before any of it is read
    conn = http.client.HTTPConnection(urlsplit(url).netloc, timeout=60)
    conn.putrequest("POST", "/api/answer")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(2 << 20))
    conn.endheaders()
    resp = conn.getresponse()
    got, reply = resp.status, json.loads(resp.read())
    conn.close()
    assert got == 413 and "over this endpoint's" in reply["error"]
    got, reply = call(url + "/api/ask", "POST", {"question": "   "})
    assert got == 400 and "the question is empty" in reply["error"]
    got, reply = call(url + "/api/ask", "POST", {"question": "q" * 100_000})
    assert got == 400 and "over the 2,000-character limit" in reply["error"]
    got, reply = call(url + "/api/import?learner=frank", "POST", raw=b'{"format": "nope"')
    assert got == 400 and "not valid JSON" in reply["error"]
    assert call(url + "/api/progress?learner=frank")[1]["n_attempts"] == 0  # nothing was saved


def test_two_learners_answering_at_once(app):
    url = app.url
    qids = [call(url + "/api/next?domain=ai")[1]["question"]["id"] for _ in range(3)]
    results: dict[str, list] = {"gil": [], "hal": []}

    def answer(name: str):
        for i in range(6):
            results[name].append(
                call(
                    url + "/api/answer",
                    "POST",
                    {"learner": name, "question_id": qids[i % 3], "answer": f"{name} answer {i} about attention"},
                )
            )

    threads = [threading.Thread(target=answer, args=(n,)) for n in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, replies in results.items():
        assert [status for status, _ in replies] == [200] * 6, replies
        progress = call(url + f"/api/progress?learner={name}")[1]
        assert progress["n_attempts"] == 6
        exported = call(url + f"/api/export?learner={name}")[1]
        assert sorted(a["answer"] for a in exported["attempts"]) == sorted(
            f"{name} answer {i} about attention" for i in range(6)
        )


def test_sigkill_during_a_save_then_restart_loses_nothing_saved(app_args):
    from evaluation.study.store import PAUSE_ENV, ProgressStore

    work, args = app_args
    db = work / "killed.sqlite"
    args = args + ["--db", str(db), "--model", "false"]
    first = App(args)
    try:
        qid = call(first.url + "/api/next?domain=cs")[1]["question"]["id"]
        for i in range(2):
            assert (
                call(first.url + "/api/answer", "POST", {"learner": "ivy", "question_id": qid, "answer": f"saved {i}"})[
                    0
                ]
                == 200
            )
    finally:
        first.stop(signal.SIGKILL)

    pausing = App(args, {PAUSE_ENV: "120"})
    try:
        reply: list = []

        def in_flight():
            try:
                reply.append(call(pausing.url + "/api/answer", "POST",
                                  {"learner": "ivy", "question_id": qid, "answer": "in flight"}, timeout=200))
            except OSError as exc:  # the server is killed under it: the learner sees the connection drop
                reply.append(exc)

        t = threading.Thread(target=in_flight, daemon=True)
        t.start()
        assert pausing.wait_for_log("transaction open"), "".join(pausing.lines[-20:])
    finally:
        pausing.stop(signal.SIGKILL)

    restarted = App(args)
    try:
        exported = call(restarted.url + "/api/export?learner=ivy")[1]
        assert [a["answer"] for a in exported["attempts"]] == ["saved 0", "saved 1"]
        assert len(exported["cards"]) == 1
        store = ProgressStore(db)
        assert store.check_consistency() == []
        store.close()
        assert (
            call(restarted.url + "/api/answer", "POST", {"learner": "ivy", "question_id": qid, "answer": "after"})[0]
            == 200
        )
    finally:
        restarted.stop()
