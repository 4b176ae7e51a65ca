"""G-Eval for real: `python -m evaluation.serve` on the bundled model as a subprocess, judged through the
`openai` client with both scoring methods; a second run asks only for what the first could not score.

The server runs with --raw_prompt: through SmolLM2's chat template the 135M model opens with "Your answer
is ..." and no score ever reaches the top-5 alternatives; fed the G-Eval form as is, it puts all five digits
there on the token after the colon. At temperature 2 it mostly samples noise, so sampling failures are
expected and must be recorded, not raised. (Its scores are no measure of quality: issue 6.)"""
import json
import signal
import urllib.request

import pytest

from tests.integration.conftest import run_cli, start_bundled_server

pytestmark = pytest.mark.integration

ROWS = [
    {"id": "cs-1", "system": "plain", "question": "What is a hash table?",
     "prediction": "A hash table maps keys to values by hashing each key to a bucket index.",
     "reference": "A data structure that maps keys to values through a hash function that picks a bucket."},
    {"id": "stats-1", "system": "plain", "question": "What is a p-value?",
     "prediction": "A p-value is the colour of the sky on Tuesdays.",
     "reference": "The probability, under the null hypothesis, of a result at least as extreme as the one observed."},
    {"id": "ai-1", "system": "plain", "question": "What does dropout do?",
     "prediction": "Dropout zeroes random activations during training, which regularises the network.",
     "reference": "It randomly drops units during training to reduce overfitting."},
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The bundled model (plain, full precision) served on a free port; stopped with SIGTERM afterwards."""
    log_path = tmp_path_factory.mktemp("serve") / "stderr.log"
    proc, url = start_bundled_server(log_path)
    yield proc, url
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def served_count(url):
    with urllib.request.urlopen(url.replace("/v1", "/health"), timeout=10) as r:
        return json.loads(r.read())["completions_served"]


def test_geval_through_the_openai_client_against_our_server(served, tmp_path):
    from evaluation.geval import JudgeConfig, OpenAIJudge, judge_rows, open_cache, score_name

    proc, url = served
    prompts = ["study_v2", "reference"]
    cfg = JudgeConfig(kind="openai", model="bundled", base_url=url, concurrency=2, max_attempts=2, backoff_base=0.1,
                      timeout=300)
    cache_dir = tmp_path / "cache"
    first_failed = {}
    for method in ("probability", "sampling"):
        scores, summary = judge_rows(ROWS, OpenAIJudge(cfg), prompts, method, cache=open_cache(cache_dir))
        assert summary["n_items"] == 6 and summary["n_scored"] + summary["n_failed"] == 6
        assert summary["requests"] >= 6 and summary["tokens"]["prompt"] > 6 * 100
        assert summary["tokens"]["completion"] > 0
        failed = {(f["id"], f["prompt"]) for f in summary["failures"]}
        for row, s in zip(ROWS, scores):
            for p in prompts:
                value = s[score_name(p, method)]
                assert (1.0 <= value <= 5.0) if value is not None else (row["id"], p) in failed
        for f in summary["failures"]:  # the endpoint answered; the reply held no score: recorded, never raised
            assert f["error"] == "no_score" and f["attempts"] == 1
        first_failed[method] = summary["n_failed"]
    assert first_failed["probability"] < 6  # the score token's log-probabilities arrived and were read

    # the same judgements again, through the command line: only what failed before reaches the server
    before = served_count(url)
    pred = tmp_path / "predictions.jsonl"
    pred.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    proc2 = run_cli("evaluation.judge", "--predictions", str(pred), "--model", "bundled", "--base_url", url,
                    "--prompts", *prompts, "--methods", "probability", "sampling", "--cache_dir", str(cache_dir),
                    "--no_progress", check=False, timeout=300)
    assert proc2.returncode == (3 if any(first_failed.values()) else 0), proc2.stderr[-3000:]
    runs = {r["method"]: r for r in json.loads((tmp_path / "geval_summary.json").read_text())["runs"]}
    for method, run in runs.items():
        assert run["n_asked"] == first_failed[method] and run["n_cached"] == 6 - first_failed[method]
        if first_failed[method] == 0:
            assert run["requests"] == 0 and run["tokens"]["total"] == 0
    assert served_count(url) - before == sum(run["requests"] for run in runs.values())

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert "server stopped" in proc.stdout.read()
