"""A password in --judge.base_url never reaches metrics.json, report.md, report.html or any other file the
evaluation writes (issue 12). The judge is an endpoint that refuses connections, so every judgement fails
(recorded) and nothing but the written results is under test; answers come from a prepared cache."""
import json

import pytest

from tests.integration.conftest import ROOT, run_cli

pytestmark = pytest.mark.integration
SECRET = "s3cret-in-the-url"


def test_a_judge_url_password_is_masked_in_every_result_file(tmp_path):
    rows = [json.loads(line) for line in (ROOT / "data/corpus/cs_algorithms.jsonl").read_text().splitlines()[:3]]
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "eval"
    (out / "predictions").mkdir(parents=True)
    (out / "predictions" / "plain.jsonl").write_text("".join(json.dumps(
        {"id": r["id"], "system": "plain", "domain": r["domain"], "question": r["question"], "reference": r["answer"],
         "prediction": "An answer.", "raw_prediction": "An answer.", "stop_reason": "eos", "new_tokens": 3}) + "\n"
        for r in rows))
    proc = run_cli("evaluation.run", "--eval_file", str(eval_file), "--systems", "plain", "--sample", "none",
                   "--out_dir", str(out), "--judge.kind", "openai", "--judge.model", "m", "--judge.max_attempts", "1",
                   "--judge.base_url", f"http://judge:{SECRET}@127.0.0.1:1/v1", "--judge.sanity", "0",
                   "--judge.prompts", "study_v1", "--concepts", "false", timeout=600)
    assert SECRET not in proc.stdout + proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["judge"]["base_url"] == "http://judge:***@127.0.0.1:1/v1"
    assert metrics["geval"]["judge_config"]["base_url"] == "http://judge:***@127.0.0.1:1/v1"
    assert metrics["geval"]["usage"]["total"]["n_failed"] == 3  # the judge was asked, and failed, for real
    written = [f for f in out.rglob("*") if f.is_file()]
    assert {"metrics.json", "report.md", "report.html", "predictions.jsonl"} <= {f.name for f in written}
    for f in written:
        assert SECRET not in f.read_text(encoding="utf-8", errors="replace"), f
