"""scripts/ablate.py end to end: a real two-cell grid (the lora and graph-text cells) with tiny training
settings on the bundled model and the session's concept graph, then the same command again, which must
find both cells finished and retrain, regenerate and rewrite nothing."""
import json
import os
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import ROOT, TINY_RUN

pytestmark = pytest.mark.integration


def tiny_sets(kg_dirs, data_dir) -> list[str]:
    """TINY_RUN as --set pairs, cut further (one step, the last checkpoint without dev generation, shorter
    answers: the grid's machinery is under test here, training is tested elsewhere), and the session's KG."""
    settings = {flag.lstrip("-"): value for flag, value in zip(TINY_RUN[::2], TINY_RUN[1::2])}
    settings.update({"train.max_steps": 1, "train.select_on": "last", "eval.max_new_tokens": 16,
                     "kg.work_dir": kg_dirs[1], "store.data_dir": kg_dirs[0], "data.out_dir": data_dir})
    return [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]


def run_ablate(args, timeout=900):
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    t0 = time.time()
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "ablate.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise AssertionError("ablate exited "
                             f"{proc.returncode}\nSTDOUT:\n{proc.stdout[-3000:]}\nSTDERR:\n{proc.stderr[-5000:]}")
    return proc, time.time() - t0


def read_rows(path):
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_a_two_cell_grid_runs_and_a_rerun_retrains_nothing(built, kg_dirs, prepared_data, tmp_path):
    out = tmp_path / "grid"
    args = ["--grid", "prompt", "--cells", "lora,graph-text", "--out", str(out), *tiny_sets(kg_dirs, prepared_data)]
    first, first_s = run_ablate(args)

    for cell, mode, system in (("lora", "lora", "finetuned"), ("graph-text", "graph-text", "graph-text")):
        d = out / cell
        metrics = json.loads((d / "eval" / "metrics.json").read_text())
        assert set(metrics["metrics"]) == {"plain", system} and metrics["n_items"] == 3
        assert not (d / "systems").exists()  # --graph.train_baseline false: the baseline is the lora cell
        assert (d / "adapter" / "adapter_model.safetensors").exists()
        config = json.loads((d / "config.json").read_text())
        assert config["graph"]["mode"] == mode and config["graph"]["train_baseline"] is False
        assert config["train"]["max_steps"] == 1 and config["kg"]["work_dir"] == str(kg_dirs[1])
        record = json.loads((d / "ablate_cell.json").read_text())
        assert [a["status"] for a in record["attempts"]] == ["trained"]
    # the graph-text cell started from the plain answers the lora cell generated (same model, prompt, decoding)
    plain_answers = [read_rows(out / cell / "eval" / "predictions" / "plain.jsonl") for cell in ("graph-text", "lora")]
    assert plain_answers[0] == plain_answers[1]
    assert "graph-text: plain answers copied from lora" in first.stderr

    summary = json.loads((out / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["cells"]}
    assert list(rows) == ["lora", "graph-text"] and {r["status"] for r in rows.values()} == {"trained"}
    assert rows["lora"]["trainable_params"] > 0
    # the same LoRA, evidence in the prompt
    assert rows["graph-text"]["trainable_params"] == rows["lora"]["trainable_params"]
    assert rows["lora"]["train_seconds"] > 0 and rows["lora"]["rougeL"] is not None
    c = rows["graph-text"]["vs_reference"]["rougeL"]
    assert c["n"] == 3 and c["ci_low"] <= c["diff"] <= c["ci_high"]
    assert "| graph-text | graph-text |" in (out / "summary.md").read_text()
    assert (out / "summary.html").read_text().count("<svg") == 2 and (out / "summary.csv").exists()

    def stamps_of_cells():
        return {p: p.stat().st_mtime_ns for p in out.rglob("*")
                if p.is_file() and not p.name.startswith(("summary.", "grid.json"))}

    stamps = stamps_of_cells()
    second, second_s = run_ablate(args)
    assert "lora: eval/metrics.json exists, skipped" in second.stderr
    assert "graph-text: eval/metrics.json exists, skipped" in second.stderr
    assert ": running (" not in second.stderr and ": resuming (" not in second.stderr  # nothing was launched
    after = stamps_of_cells()
    assert after == stamps  # nothing retrained, regenerated or rewritten
    again = {r["name"]: r for r in json.loads((out / "summary.json").read_text())["cells"]}
    assert {r["status"] for r in again.values()} == {"done"}
    assert again["graph-text"]["vs_reference"] == rows["graph-text"]["vs_reference"]
    print(f"\ntwo-cell grid: {first_s:.0f}s; rerun (summary only): {second_s:.0f}s")
