"""The OpenAI-compatible judge over real HTTP: a tiny scripted endpoint that rate-limits, fails, times out
and talks nonsense, reached through the real `openai` client (no mocks of the client)."""
import json
import math
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evaluation.geval.cache import JudgeCache, cache_key, open_cache
from evaluation.geval.config import JudgeConfig
from evaluation.geval.judges import JudgeError, LocalJudge, OpenAIJudge, backoff_delay
from evaluation.geval.prompts import probability_weighted, render
from evaluation.geval.runner import judge_rows, score_name

# The fixed log-probability fixture: what the endpoint returns for the score token, and the hand sum.
# p over score tokens: 4 -> .6, 5 -> .2, 3 -> .1, 2 -> .03 (total .93); "The" is not a score.
FIXTURE = [(" 4", 0.6), (" 5", 0.2), (" 3", 0.1), ("The", 0.05), (" 2", 0.03)]
HAND_SCORE = (4 * 0.6 + 5 * 0.2 + 3 * 0.1 + 2 * 0.03) / 0.93
SAMPLES = [" 4", " 5", "3", "no idea", "Score: 4", "5.", "3", "-", " 4", "5"]  # parsed: 4 5 3 4 5 3 4 5
SAMPLED_MEAN = (4 + 5 + 3 + 4 + 5 + 3 + 4 + 5) / 8


def _entry(tok, p):
    return {"token": tok, "logprob": math.log(p), "bytes": list(tok.encode())}


class FlakyEndpoint(ThreadingHTTPServer):
    """Chat completions that misbehave on cue.

    `script`: actions used by the next requests, in order (shared by all requests); after it, `rule(prompt)`
    picks the action (None: "ok"). Actions: ok, 429, 500, 400, garbage (200 with an HTML body), sleep (reply
    after 1 s), noscore (a reply without any score), nologprobs. `max_choices` caps the choices per reply.
    """

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _FlakyHandler)
        self.lock = threading.Lock()
        self.script: list[str] = []
        self.rule = None
        self.count = 0
        self.max_choices = 100
        self.leading_newline = False
        self.bodies: list[dict] = []

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request, client_address):  # a client that timed out closes the socket: not news
        pass

    def next_action(self, prompt: str) -> str:
        with self.lock:
            self.count += 1
            if self.script:
                return self.script.pop(0)
        return (self.rule(prompt) if self.rule else None) or "ok"


class _FlakyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, status, payload, ctype="application/json", headers=()):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv: FlakyEndpoint = self.server
        with srv.lock:
            srv.bodies.append(body)
        action = srv.next_action(body["messages"][0]["content"])
        if action == "429":
            return self._reply(429, {"error": {"message": "slow down"}}, headers=[("Retry-After", "7")])
        if action in ("500", "400"):
            return self._reply(int(action), {"error": {"message": f"scripted {action}"}})
        if action == "garbage":
            return self._reply(200, b"<html>upstream hiccup</html>", ctype="text/html")
        if action == "sleep":
            time.sleep(1.0)
        n = min(body.get("n", 1), srv.max_choices)
        choices = []
        for i in range(n):
            if body.get("logprobs"):
                tops = [_entry("I", 0.5),
                        _entry(" cannot", 0.2)] if action == "noscore" else [_entry(t, p) for t, p in FIXTURE]
                content = [{**tops[0], "top_logprobs": tops}]
                if srv.leading_newline:
                    content.insert(0, {**_entry("\n", 0.9), "top_logprobs": [_entry("\n", 0.9), _entry(" ", 0.05)]})
                text = "".join(c["token"] for c in content)
                logprobs = None if action == "nologprobs" else {"content": content}
            else:
                sample = SAMPLES[(srv.count + i) % len(SAMPLES)]
                text, logprobs = ("I would rather not" if action == "noscore" else sample), None
            choices.append({"index": i, "message": {"role": "assistant", "content": text},
                            "logprobs": logprobs, "finish_reason": "stop"})
        self._reply(200,
                    {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"], "choices": choices,
                          "usage": {"prompt_tokens": 100, "completion_tokens": 2 * n, "total_tokens": 100 + 2 * n}})


@pytest.fixture
def endpoint():
    srv = FlakyEndpoint()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def make_judge(url, sleeps=None, **kw):
    cfg = JudgeConfig(kind="openai", model="flaky-judge", base_url=url, backoff_base=0.01, backoff_max=10.0, **kw)
    return OpenAIJudge(cfg, sleep=(sleeps.append if sleeps is not None else (lambda s: None)), seed=0, api_key="k")


def rows(n=4, marker=None):
    out = []
    for i in range(n):
        answer = f"A heap is a tree with the heap property ({i})."
        if marker and i in marker:
            answer += " " + marker[i]
        out.append({"id": f"q{i}", "system": "plain", "question": "What is a heap?", "prediction": answer,
                    "reference": "A complete tree."})
    return out


def test_probability_score_over_http_equals_the_hand_sum(endpoint):
    judge = make_judge(endpoint.url)
    j = judge.judge(render("study_v2", "Q?", "A."), "probability")
    assert j.score == pytest.approx(HAND_SCORE) and j.detail["position"] == 0
    assert j.score == pytest.approx(probability_weighted({t: math.log(p) for t, p in FIXTURE}))
    body = endpoint.bodies[-1]
    assert (body["logprobs"], body["top_logprobs"], body["temperature"], body["max_tokens"]) == (True, 5, 0, 3)
    # a leading newline token: the score is read where the alternatives hold scores
    endpoint.leading_newline = True
    j = judge.judge(render("study_v2", "Q?", "A."), "probability")
    assert j.score == pytest.approx(HAND_SCORE) and j.detail["position"] == 1


def test_sampling_is_the_studys_mean_and_tops_up_short_replies(endpoint):
    judge = make_judge(endpoint.url)
    endpoint.count = -1  # the fake picks samples from the request count: start the cycle at 0
    j = judge.judge("prompt", "sampling")
    body = endpoint.bodies[-1]
    assert (body["n"], body["temperature"], body["top_p"]) == (10, 2.0, 1.0)
    assert j.score == pytest.approx(SAMPLED_MEAN) and j.detail["parsed"] == 8 and len(j.detail["samples"]) == 10
    endpoint.max_choices = 4  # an endpoint that ignores n: three requests give the 10 samples
    before = judge.requests
    j = judge.judge("prompt", "sampling")
    assert judge.requests - before == 3 and len(j.detail["samples"]) == 10
    assert [b["n"] for b in endpoint.bodies[-3:]] == [10, 6, 2]


def test_retries_429_500_garbage_and_timeouts_then_succeeds(endpoint):
    sleeps = []
    judge = make_judge(endpoint.url, sleeps, max_attempts=5, timeout=0.4)
    endpoint.script = ["429", "500", "garbage", "sleep"]
    j = judge.judge("prompt", "probability")
    assert j.score == pytest.approx(HAND_SCORE)
    assert judge.requests == 5 and len(sleeps) == 4
    assert sleeps[0] >= 7.0  # Retry-After: 7 honoured (under the 10 s cap)
    assert all(0 < s <= 10.0 for s in sleeps)


def test_exhausted_and_non_retryable_failures_say_why(endpoint):
    judge = make_judge(endpoint.url, max_attempts=3)
    endpoint.script = ["500"] * 3
    with pytest.raises(JudgeError) as e:
        judge.judge("p", "probability")
    assert (e.value.kind, e.value.attempts) == ("server_error", 3)
    endpoint.script = ["400"]
    with pytest.raises(JudgeError) as e:
        judge.judge("p", "probability")
    assert (e.value.kind, e.value.attempts) == ("http_400", 1)  # a bad request is not retried
    endpoint.rule = lambda p: "nologprobs"
    with pytest.raises(JudgeError, match="no_logprobs"):
        judge.judge("p", "probability")


def test_connection_refused_is_retried_then_recorded():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    sleeps = []
    judge = make_judge(f"http://127.0.0.1:{port}/v1", sleeps, max_attempts=2)
    scores, summary = judge_rows(rows(1), judge, ["study_v2"], "probability")
    assert scores[0][score_name("study_v2", "probability")] is None and len(sleeps) == 1
    assert summary["failures"] == [{"id": "q0", "system": "plain", "prompt": "study_v2", "method": "probability",
                                    "error": "connection", "message": summary["failures"][0]["message"], "attempts": 2}]


def test_backoff_grows_is_capped_and_jittered():
    rng = random.Random(0)
    for attempt in range(1, 8):
        step = min(30.0, 1.0 * 2 ** (attempt - 1))
        d = backoff_delay(attempt, 1.0, 30.0, rng)
        assert step / 2 <= d <= step
    draws = {round(backoff_delay(3, 1.0, 30.0, rng), 6) for _ in range(20)}
    assert len(draws) > 10  # jitter: parallel retries spread out
    assert backoff_delay(1, 1.0, 30.0, rng, retry_after=12) == 12
    assert backoff_delay(1, 1.0, 30.0, rng, retry_after=999) == 30.0


def test_cache_round_trip_skips_broken_lines(tmp_path):
    cache = open_cache(tmp_path)
    cache.put("k1", {"score": 4.0})
    cache.put("k2", {"score": 2.5})
    with open(cache.path, "a") as fh:
        fh.write('{"key": "k3", "sco')  # a kill mid-write
    again = JudgeCache(cache.path)
    assert len(again) == 2 and again.get("k1")["score"] == 4.0 and again.get("k3") is None


def test_cache_key_separates_judge_endpoint_prompt_method_settings_and_text():
    ident = {"model": "m", "base_url": "http://a/v1"}
    base = cache_key(ident, "study_v2", "probability", {"t": 0}, "text")
    assert base == cache_key(dict(ident), "study_v2", "probability", {"t": 0}, "text")
    variants = [
        cache_key({"model": "m2", "base_url": "http://a/v1"}, "study_v2", "probability", {"t": 0}, "text"),
        cache_key({"model": "m", "base_url": "http://b/v1"}, "study_v2", "probability", {"t": 0}, "text"),
        cache_key(ident, "study_v1", "probability", {"t": 0}, "text"),
        cache_key(ident, "study_v2", "sampling", {"t": 0}, "text"),
        cache_key(ident, "study_v2", "probability", {"t": 1}, "text"),
        cache_key(ident, "study_v2", "probability", {"t": 0}, "text!"),
    ]
    assert len(set(variants + [base])) == 7


def test_a_run_with_failures_finishes_and_a_rerun_asks_only_for_them(endpoint, tmp_path):
    items = rows(6, marker={1: "FAIL", 4: "MUMBLE"})
    endpoint.rule = lambda p: "500" if "FAIL" in p else "noscore" if "MUMBLE" in p else None
    judge = make_judge(endpoint.url, max_attempts=2, concurrency=3, price_prompt_per_1k=0.01,
                       price_completion_per_1k=0.03)
    cache = open_cache(tmp_path)
    scores, summary = judge_rows(items, judge, ["study_v2"], "probability", cache=cache)
    name = score_name("study_v2", "probability")
    assert [s[name] is None for s in scores] == [False, True, False, False, True, False]
    assert all(s[name] == pytest.approx(HAND_SCORE) for s in scores if s[name] is not None)
    fails = {f["id"]: f for f in summary["failures"]}
    assert set(fails) == {"q1", "q4"}
    assert (fails["q1"]["error"], fails["q1"]["attempts"]) == ("server_error", 2)
    assert fails["q4"]["error"] == "no_score" and "cannot" in fails["q4"]["message"]
    assert (summary["n_scored"], summary["n_failed"], summary["requests"]) == (4, 2, 4 + 2 + 1)
    # tokens of every reply received (the 500s had none): 5 replies x (100 prompt, 2 completion)
    assert summary["tokens"] == {"prompt": 500, "completion": 10, "total": 510}
    assert summary["cost"]["total"] == pytest.approx(500 / 1000 * 0.01 + 10 / 1000 * 0.03)

    endpoint.rule = None  # the endpoint recovers
    before = endpoint.count
    scores, summary = judge_rows(items, make_judge(endpoint.url), ["study_v2"], "probability",
                                 cache=open_cache(tmp_path))
    assert endpoint.count - before == 2 and summary["n_cached"] == 4 and summary["n_asked"] == 2
    assert summary["n_failed"] == 0 and all(s[name] == pytest.approx(HAND_SCORE) for s in scores)

    before = endpoint.count
    _, summary = judge_rows(items, make_judge(endpoint.url), ["study_v2"], "probability", cache=open_cache(tmp_path))
    assert endpoint.count == before and summary["n_cached"] == 6 and summary["tokens"]["total"] == 0


def test_identical_prompts_are_asked_once_and_rows_are_checked(endpoint):
    judge = make_judge(endpoint.url)
    same = rows(1) * 3
    scores, summary = judge_rows(same, judge, ["study_v2", "reference"], "probability")
    assert summary["n_items"] == 6 and summary["n_asked"] == 2 and endpoint.count == 2
    with pytest.raises(ValueError, match="lacks"):
        judge_rows([{"id": "x", "question": "q", "prediction": "a"}], judge, ["reference"], "probability")
    with pytest.raises(ValueError, match="unknown G-Eval method"):
        judge_rows(same, judge, ["study_v2"], "vibes")


def test_config_from_env_validation_and_no_key_in_results(monkeypatch):
    monkeypatch.setenv("STUDYLLAMA_JUDGE_MODEL", "env-judge")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    judge = OpenAIJudge(JudgeConfig())
    assert judge.cache_identity() == {"model": "env-judge", "base_url": "http://127.0.0.1:9/v1"}
    assert judge.client.max_retries == 0 and judge.client.api_key == "sk-secret"
    assert "api_key" not in JudgeConfig.__dataclass_fields__  # the key is never a setting, so never a result
    given = OpenAIJudge(JudgeConfig(kind="openai", model="m"), api_key="sk-given")
    assert given.client.api_key == "sk-given" and "sk-given" not in json.dumps(given.config.public_dict())
    monkeypatch.delenv("STUDYLLAMA_JUDGE_MODEL")
    with pytest.raises(ValueError, match="STUDYLLAMA_JUDGE_MODEL"):
        OpenAIJudge(JudgeConfig())
    with pytest.raises(ValueError) as e:
        JudgeConfig(prompts=["nope"], methods=["vibes"], prob_max_tokens=9)
    assert "prompts" in str(e.value) and "methods" in str(e.value) and "prob_max_tokens" in str(e.value)


def test_local_judge_goes_through_the_same_runner(tiny_model, tokenizer, tmp_path):
    judge = LocalJudge(tiny_model, tokenizer, name="tiny", samples=3)
    items = rows(2)
    cache = open_cache(tmp_path)
    scores, summary = judge_rows(items, judge, ["study_v2"], "probability", cache=cache)
    assert summary["n_scored"] == 2 and all(1 <= s["geval_study_v2_probability"] <= 5 for s in scores)
    assert summary["tokens"]["prompt"] > 0 and summary["cost"]["total"] == 0
    scores, summary = judge_rows(items, judge, ["study_v2"], "sampling", cache=cache)
    assert summary["n_scored"] + summary["n_failed"] == 2  # a random model may never say a digit: recorded
    for s in scores:
        assert s["geval_study_v2_sampling"] is None or 1 <= s["geval_study_v2_sampling"] <= 5
    _, again = judge_rows(items, judge, ["study_v2"], "probability", cache=open_cache(tmp_path))
    assert again["n_asked"] == 0 and again["n_cached"] == 2


def test_cli_scores_a_predictions_file(endpoint, tmp_path, capsys):
    from evaluation.judge import main

    pred = tmp_path / "predictions.jsonl"
    pred.write_text("".join(json.dumps(r) + "\n" for r in rows(2)))
    args = ["--predictions", str(pred), "--model", "flaky-judge", "--base_url", endpoint.url, "--cache_dir",
            str(tmp_path / "c"),
            "--methods", "probability", "sampling", "--prompts", "study_v2", "--no_progress"]
    assert main(args) == 0
    out = [json.loads(line) for line in (tmp_path / "geval_scores.jsonl").read_text().splitlines()]
    assert out[0]["geval_study_v2_probability"] == pytest.approx(HAND_SCORE) and "geval_study_v2_sampling" in out[0]
    summary = json.loads((tmp_path / "geval_summary.json").read_text())
    assert [r["method"] for r in summary["runs"]] == ["probability", "sampling"]
    endpoint.rule = lambda p: "400"
    assert main(args + ["--out", str(tmp_path / "again")]) == 0  # all cached: the broken endpoint is never asked
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and "usage: python -m evaluation.judge" in capsys.readouterr().out
