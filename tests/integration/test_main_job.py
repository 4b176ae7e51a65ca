import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import ROOT, TINY_RUN, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, prepared_data):
    run_dir = tmp_path_factory.mktemp("run") / "r"
    proc = run_cli("training.run", "--run_dir", str(run_dir), "--data.out_dir", str(prepared_data), *TINY_RUN)
    return run_dir, proc


def test_main_command_end_to_end_on_a_tiny_sample(tiny_run):
    run_dir, proc = tiny_run
    assert "trainable params: " in proc.stdout and "|| trainable%: " in proc.stdout
    assert "| plain |" in proc.stdout and "| finetuned |" in proc.stdout
    for f in ("config.json", "run_info.json", "adapter/adapter_config.json", "adapter/adapter_model.safetensors",
              "logs/train_log.csv", "dev_scores.json", "eval/predictions.jsonl", "eval/metrics.json", "eval/report.md"):
        assert (run_dir / f).exists(), f
    m = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert m["n_items"] == 3 and set(m["metrics"]) == {"plain", "finetuned"}
    assert m["run"]["git"]


def test_adapter_loads_with_peft_on_the_4bit_model(tiny_run):
    from peft import PeftModel

    from model.config import ModelConfig
    from model.load import load_model

    model, tok = load_model(ModelConfig())
    assert getattr(model, "is_loaded_in_4bit", False)
    peft_model = PeftModel.from_pretrained(model, tiny_run[0] / "adapter")
    ids = tok("### Question:\nWhat is a heap?\n\n### Answer and Explanation:\n", return_tensors="pt")
    out = peft_model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]


def test_a_failed_command_leaves_the_finished_run_as_it_was(tiny_run):
    """Issue 12: a command that fails (a typo in the model name) on a finished run changes none of its files, and
    the run still evaluates afterwards."""
    import hashlib

    run_dir, _ = tiny_run

    def snapshot():
        return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run_dir.rglob("*")) if p.is_file()}

    before = snapshot()
    proc = run_cli("training.run", "--run_dir", str(run_dir), "--model.name", "nobody/typo-model", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "holds a finished run" in proc.stderr
    assert snapshot() == before
    out = run_cli("evaluation.run", "--run_dir", str(run_dir), "--sample", "3", "--max_new_tokens", "24",
                  "--batch_size", "3")
    assert "finetuned: 3 cached, 0 to generate" in out.stderr


def test_evaluation_resumes_without_regenerating(tiny_run):
    run_dir, _ = tiny_run
    before = (run_dir / "eval" / "predictions" / "finetuned.jsonl").read_text()
    proc = run_cli("evaluation.run", "--run_dir", str(run_dir), "--sample", "3", "--max_new_tokens", "24",
                   "--batch_size", "3")
    assert "finetuned: 3 cached, 0 to generate" in proc.stderr
    assert (run_dir / "eval" / "predictions" / "finetuned.jsonl").read_text() == before


def _wait_for(predicate, timeout, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        if proc is not None and proc.poll() is not None:
            return predicate()
        time.sleep(0.5)
    return False


def test_sigkilled_training_resumes_at_the_same_step(tmp_path, prepared_data):
    run_dir = tmp_path / "killed"
    args = [sys.executable, "-m", "training.run", "--run_dir", str(run_dir), "--data.out_dir", str(prepared_data),
            "--no_eval",
            *TINY_RUN]
    args[args.index("--train.max_steps") + 1] = "4"
    args[args.index("--train.train_limit") + 1] = "16"
    args += ["--train.select_on", "dev_loss"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    state = run_dir / "checkpoints" / "checkpoint-2" / "trainer_state.json"
    assert _wait_for(state.exists, 600, proc), "no checkpoint-2 appeared"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last = run_dir / "checkpoints" / "checkpoint-4" / "trainer_state.json"
    assert not last.exists(), "run finished before the kill"
    out = run_cli("training.run", "--resume", "--run_dir", str(run_dir), "--no_eval")
    assert "resuming from" in out.stderr
    final = json.loads((run_dir / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert final["global_step"] == 4
    steps = [row["step"] for row in final["log_history"] if "loss" in row]
    assert steps == sorted(set(steps)) and steps[-1] == 4  # no step trained twice, none lost
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()


def test_bad_input_gets_one_paragraph_not_a_traceback(tmp_path, tiny_run):
    cases = []
    cases.append(run_cli("training.run", "--model.name", "nobody/no-such-model", "--run_dir",
                         str(tmp_path / "a"), check=False))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model": {"name": "bundled"}, "train": ')
    cases.append(run_cli("evaluation.run", "--run_dir", str(broken), check=False))
    no_adapter = tmp_path / "noadapter"
    no_adapter.mkdir()
    (no_adapter / "config.json").write_text((tiny_run[0] / "config.json").read_text())
    cases.append(run_cli("evaluation.run", "--run_dir", str(no_adapter),
                         "--systems", "finetuned", "--sample", "1", check=False))
    bad_eval = tmp_path / "eval.jsonl"
    bad_eval.write_text('{"id": "1", "domain": "cs", "question": "q?"}\n')
    cases.append(run_cli("evaluation.run", "--eval_file", str(bad_eval),
                         "--systems", "plain", "--sample", "1", check=False))
    expected = ["never downloads", "is corrupt (line 1", "No adapter at", "eval.jsonl:1: missing field 'answer'"]
    for proc, text in zip(cases, expected):
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr and text in proc.stderr, proc.stderr[-2000:]


def test_killed_evaluation_resumes_without_regenerating(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    out_dir = tmp_path / "eval"
    args = [sys.executable, "-m", "evaluation.run", "--run_dir", str(run_dir), "--systems", "plain", "--sample", "8",
            "--batch_size", "2", "--max_new_tokens", "24", "--out_dir", str(out_dir)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    cache = out_dir / "predictions" / "plain.jsonl"
    assert _wait_for(lambda: cache.exists() and len(cache.read_text().splitlines()) >= 2, 600,
                     proc), "no batch was cached"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = {json.loads(line)["id"]: line for line in cache.read_text().splitlines() if line.strip()}
    assert 2 <= len(done) < 8, "the evaluation finished before the kill"
    out = run_cli(*args[2:])
    assert f"plain: {len(done)} cached, {8 - len(done)} to generate" in out.stderr
    after = {json.loads(line)["id"]: line for line in cache.read_text().splitlines()}
    assert len(after) == 8 and all(after[k] == v for k, v in done.items())  # finished items kept, not regenerated
