"""G-Eval inside `python -m evaluation.run`, for real: the bundled model as local judge over a tiny evaluation
(three answers, six planted sanity pairs, the three prompts), a rerun that asks the judge nothing, and the
same predictions judged through the `openai` client against `python -m evaluation.serve`.

The bundled 135M model is no judge (issue 6): whatever its verdict on six pairs, every prompt/method that
does not separate must carry its warning next to the scores, in metrics.json, report.md and report.html."""
import json
from html import escape
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, run_cli, start_bundled_server

pytestmark = pytest.mark.integration
CORPUS = ROOT / "data" / "corpus"
PROMPTS = ("study_v1", "study_v2", "reference")
SECRET = "sk-test-never-written-anywhere"


def tiny_eval_file(path: Path) -> Path:
    """Twelve shipped corpus items, four per domain, as an eval split."""
    lines = []
    for name in ("cs_algorithms.jsonl", "stats_probability.jsonl", "ai_ml_dl.jsonl"):
        lines += (CORPUS / name).read_text(encoding="utf-8").splitlines()[:4]
    path.write_text("".join(json.dumps(json.loads(line), sort_keys=True) + "\n" for line in lines), encoding="utf-8")
    return path


def eval_args(eval_file, out, *judge):
    return ["evaluation.run", "--eval_file", str(eval_file), "--systems", "plain", "--sample", "3",
            "--max_new_tokens", "16",
            "--batch_size", "3", "--out_dir", str(out), "--judge.sanity", "6", *judge]


def check_warnings_follow_verdicts(out: Path) -> dict:
    """Every prompt/method whose sanity verdict is not "separates" is flagged in all three reports."""
    metrics = json.loads((out / "metrics.json").read_text())
    geval = metrics["geval"]
    report, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    for ctx in (f"{p}/{m}" for p in geval["prompts"] for m in geval["methods"]):
        verdict = geval["sanity"][ctx]["verdict"]
        assert geval[ctx]["verdict"] == verdict
        flagged = [w for w in geval.get("warning", []) if w.startswith(ctx + ":")]
        assert bool(flagged) == (verdict != "separates"), (ctx, verdict, geval.get("warning"))
        for w in flagged:
            assert "not a quality measure" in w or "inconclusive" in w
            assert w in report and f"G-Eval {ctx} †" in report
            assert escape(w) in page
    return metrics


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("geval")
    eval_file = tiny_eval_file(base / "eval.jsonl")
    out = base / "eval"
    started = time.monotonic()
    proc = run_cli(*eval_args(eval_file, out, "--judge.kind", "local", "--judge.model", "bundled"), timeout=600)
    return eval_file, out, proc, time.monotonic() - started


def test_local_judge_scores_takes_the_sanity_check_and_says_what_it_is_worth(local_run):
    _, out, proc, seconds = local_run
    metrics = check_warnings_follow_verdicts(out)
    geval = metrics["geval"]
    assert geval["prompts"] == list(PROMPTS) and geval["methods"] == ["probability"] and geval["baseline"] == "plain"
    assert geval["judge"].startswith("bundled (local, quantization none")
    assert geval["judge_config"]["kind"] == "local" and geval["judge_config"]["quantization"] == "none"
    for p in PROMPTS:
        ctx = geval[f"{p}/probability"]["plain"]
        assert ctx["n_scored"] + ctx["n_failed"] == 3
        assert ctx["mean"] is None or 1.0 <= ctx["mean"] <= 5.0
        s = geval["sanity"][f"{p}/probability"]
        assert s["n_planted"] == 6 and s["wins"] + s["losses"] + s["ties"] == s["n_pairs"] <= 6
        assert s["verdict"] in ("separates", "does not separate", "inconclusive")
        for metric in ("rougeL", "bertscore_f1"):
            assert "rho" in geval["agreement"]["with_reference_metrics"][f"{p}/probability"][metric]
    assert len(geval["agreement"]["between_contexts"]) == 3
    total = geval["usage"]["total"]
    assert total["n_items"] == 3 * 3 + 12 * 3 and total["n_asked"] > 0 and total["tokens"]["prompt"] > 45 * 100
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(f"geval_{p}_probability" in r for r in rows for p in PROMPTS)
    assert len((out / "geval_sanity.jsonl").read_text().splitlines()) == 12
    assert "## G-Eval" in proc.stdout and "### Judge sanity" in (out / "report.md").read_text()
    print(f"first run: {seconds:.0f}s; sanity: " + json.dumps({c: {k: geval["sanity"][c][k] for k in (
        "wins", "losses", "ties", "separation", "sign_test_p", "verdict")} for c in geval["sanity"] if "/" in c}))


def test_a_rerun_asks_the_judge_nothing_and_loads_no_model(local_run):
    eval_file, out, _, _ = local_run
    before = json.loads((out / "metrics.json").read_text())["geval"]
    proc = run_cli(*eval_args(eval_file, out, "--judge.kind", "local", "--judge.model", "bundled"), timeout=600)
    geval = check_warnings_follow_verdicts(out)["geval"]
    total = geval["usage"]["total"]
    assert total["n_asked"] == 0 and total["n_cached"] == total["n_items"] == 45 and total["tokens"]["total"] == 0
    assert "loading bundled" not in proc.stderr  # neither answers nor judgements needed the model
    for p in PROMPTS:
        assert geval[f"{p}/probability"]["plain"]["mean"] == before[f"{p}/probability"]["plain"]["mean"]
        assert geval["sanity"][f"{p}/probability"] == before["sanity"][f"{p}/probability"]


@pytest.fixture
def served(tmp_path):
    """The bundled model behind evaluation.serve (raw prompts: see test_judge_serve.py); SIGTERM afterwards."""
    proc, url = start_bundled_server(tmp_path / "serve.log", timeout=300)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_openai_judge_against_our_server_from_evaluation_run(local_run, served, tmp_path, monkeypatch):
    """The same answers (copied predictions, no generation) judged over HTTP; the key stays in the environment."""
    eval_file, local_out, _, _ = local_run
    out = tmp_path / "eval"
    shutil.copytree(local_out / "predictions", out / "predictions")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    args = eval_args(eval_file, out, "--judge.kind", "openai", "--judge.model", "bundled", "--judge.base_url", served,
                     "--judge.prompts", "study_v2", "--judge.concurrency", "2", "--judge.timeout", "300")
    proc = run_cli(*args, timeout=600)
    assert "loading bundled" not in proc.stderr  # answers came from the copied cache
    geval = check_warnings_follow_verdicts(out)["geval"]
    assert geval["judge"] == "bundled" and geval["judge_config"]["kind"] == "openai"
    assert geval["judge_config"]["base_url"] == served and geval["judge_config"]["api_key"] == "<from $OPENAI_API_KEY>"
    total = geval["usage"]["total"]
    assert total["n_items"] == 3 + 12 and total["n_scored"] + total["n_failed"] == 15 and total["requests"] >= 15
    assert total["tokens"]["prompt"] > 15 * 100
    assert geval["study_v2/probability"]["plain"]["n_scored"] >= 1  # the score token's log-probabilities were read
    with urllib.request.urlopen(served.replace("/v1", "/health"), timeout=10) as r:
        assert json.loads(r.read())["completions_served"] == total["requests"]
    for f in out.rglob("*"):
        if f.is_file():
            assert SECRET not in f.read_text(encoding="utf-8", errors="replace"), f
