"""Data-parallel training for real: two processes (torch.distributed.run, DDP on gloo, the CPU's stand-in for
`accelerate launch --multi_gpu`) on the bundled 4-bit model, against one process with the same global batch."""
import json
import os
import subprocess
import sys

import pytest
import torch

from tests.integration.conftest import ROOT, run_cli

pytestmark = pytest.mark.integration

# 2 optimiser steps of 8 examples: one process accumulates 4 micro-batches of 2, two processes 2 each
TINY = ["--train.train_limit", "16", "--train.max_steps", "2", "--train.batch_size", "8",
        "--train.micro_batch_size", "2",
        "--train.save_steps", "2", "--train.max_length", "256", "--train.select_on", "last",
        "--train.logging_steps", "1",
        "--model.lora_dropout", "0", "--train.group_by_length", "false", "--no_eval"]


def log_rows(run):
    import csv

    return list(csv.DictReader(open(run / "logs" / "train_log.csv")))


def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path, prepared_data):
    one, two = tmp_path / "one", tmp_path / "two"
    data = ["--data.out_dir", str(prepared_data)]
    run_cli("training.run", "--run_dir", str(one), *TINY, *data)
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "training.run",
                           "--run_dir", str(two), *TINY, *data], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    # one process spoke for the run: one summary, one log
    assert proc.stdout.count("trained 2 steps") == 1
    a, b = log_rows(one), log_rows(two)
    assert [r["step"] for r in b] == ["1", "2"]
    # the same examples per step: equal token counts and losses (if both ranks had read the same micro-batches,
    # the global batch would hold duplicates and differ from the single process's eight distinct examples)
    assert [r["tokens_seen"] for r in a] == [r["tokens_seen"] for r in b]
    for x, y in zip(a, b):
        assert float(y["loss"]) == pytest.approx(float(x["loss"]), abs=5e-3)
        assert float(y["grad_norm"]) == pytest.approx(float(x["grad_norm"]), rel=1e-2)
    from safetensors.torch import load_file

    wa = load_file(str(one / "adapter" / "adapter_model.safetensors"))
    wb = load_file(str(two / "adapter" / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys()
    va = torch.cat([wa[k].flatten().float() for k in sorted(wa)])
    vb = torch.cat([wb[k].flatten().float() for k in sorted(wa)])
    assert torch.nn.functional.cosine_similarity(va, vb, dim=0) > 0.99
    assert json.loads((two / "train_summary.json").read_text())["global_step"] == 2
    # the adapter the two processes saved loads and answers
    out = run_cli("evaluation.run", "--run_dir", str(two), "--sample", "2", "--max_new_tokens", "8",
                  "--batch_size", "2",
                  "--out_dir", str(tmp_path / "eval"))
    rows = [json.loads(line) for line in open(tmp_path / "eval" / "predictions.jsonl")]
    assert {r["system"] for r in rows} == {"plain", "finetuned"} and all(r["new_tokens"] > 0 for r in rows), out.stdout
