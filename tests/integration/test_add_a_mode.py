"""Adding a mode is one registry entry plus its model function: a toy mode (LoRA on the attention's query and
value projections only) is registered here, in this file alone, and then trains, saves, reloads and is evaluated
through the normal entry points (training.run and evaluation.run, called in-process) on the bundled model."""
import json
from dataclasses import replace

import pytest
from safetensors import safe_open

from model import builders
from model.modes import Mode, register, unregister
from model.weight_files import ADAPTER_FILES
from tests.integration.conftest import TINY_RUN

pytestmark = pytest.mark.integration
TARGETS = ["q_proj", "v_proj"]


def build_attention_lora(base, tokenizer, model_cfg, gcfg, node_dim=None):
    """The toy mode's model function: the study's LoRA, on the attention's query and value projections only."""
    return builders.build_lora(base, tokenizer, replace(model_cfg, lora_targets=TARGETS), gcfg)


@pytest.fixture
def attention_lora():
    mode = register(Mode(
        "attention-lora", "attention-lora", "--attention-lora", "LoRA on q and v only",
        "LoRA on the attention's query and value projections only", build_attention_lora, builders.load_peft,
        lambda gcfg: ADAPTER_FILES, lora=lambda gcfg: True))
    yield mode
    unregister(mode.name)


def test_a_toy_mode_trains_saves_reloads_and_evaluates(attention_lora, prepared_data, tmp_path, capsys):
    from evaluation.run import main as evaluate_main
    from training.run import main as train_main

    run = tmp_path / "toy"
    code = train_main(["--attention-lora", "--run_dir", str(run), "--data.out_dir", str(prepared_data), *TINY_RUN,
                       "--graph.train_baseline", "false", "--train.select_on", "last", "--train.save_steps", "2",
                       "--no_eval"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "mode: attention-lora (LoRA on q and v only)" in out and "trainable params: " in out
    config = json.loads((run / "config.json").read_text())
    assert config["graph"]["mode"] == "attention-lora" and config["eval"]["systems"] == ["plain", "attention-lora"]
    adapter = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert sorted(adapter["target_modules"]) == TARGETS
    with safe_open(str(run / "adapter" / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and all("lora_" in k and ("q_proj" in k or "v_proj" in k) for k in keys)  # only what trained

    code = evaluate_main(["--run_dir", str(run), "--systems", "plain,attention-lora", "--sample", "3",
                          "--max_new_tokens", "16", "--batch_size", "3"])
    assert code == 0, capsys.readouterr().err[-3000:]
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert set(metrics["metrics"]) == {"plain", "attention-lora"} and metrics["n_items"] == 3
    assert "attention-lora vs plain" in metrics["comparisons"]
    rows = [json.loads(line) for line in (run / "eval" / "predictions.jsonl").read_text().splitlines()]
    toy_rows = [r for r in rows if r["system"] == "attention-lora"]
    assert len(toy_rows) == 3 and all(r["new_tokens"] > 0 for r in toy_rows)
    assert (run / "eval" / "report.html").exists()
