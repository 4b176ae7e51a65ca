import copy
import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from model.config import ModelConfig
from model.load import attach_lora
from training.config import TrainConfig
from training.sft import PadCollator, complete_checkpoints, tokenize_items, train_sft


def cfg(tmp_path, **kw):
    base = dict(run_dir=str(tmp_path), epochs=1, batch_size=2, micro_batch_size=2, learning_rate=5e-3, lr_end=0.0,
                max_length=96, save_steps=2, select_on="dev_loss", logging_steps=1, seed=7, dev_limit=3)
    base.update(kw)
    return TrainConfig(**base)


def lora(model):
    torch.manual_seed(0)  # the same LoRA initialisation in every run being compared
    return attach_lora(model, ModelConfig(lora_r=4, lora_alpha=8, lora_dropout=0.0))


def test_collator_masks_padding(tokenizer, items):
    ds = tokenize_items(items[:3], tokenizer, "study", 96)
    batch = PadCollator(tokenizer.pad_token_id)([ds[i] for i in range(3)])
    lengths = batch["attention_mask"].sum(1).tolist()
    assert lengths == ds["length"]
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()


def test_train_writes_logs_scores_and_the_chosen_adapter(tiny_model, tokenizer, items, tmp_path):
    summary = train_sft(lora(tiny_model), tokenizer, items[:8], items[8:11], cfg(tmp_path), tmp_path)
    assert summary["global_step"] == 4
    scores = json.loads((tmp_path / "dev_scores.json").read_text())
    assert set(scores) == {"2", "4"}
    best = max(scores, key=lambda k: (scores[k], int(k)))
    assert summary["chosen_checkpoint"] == f"checkpoint-{best}"
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    rows = list(csv.DictReader(open(tmp_path / "logs" / "train_log.csv")))
    assert len(rows) >= 3 and float(rows[0]["loss"]) > 0


class Crash(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_weights(tiny_model, tokenizer, items, tmp_path):
    from transformers import TrainerCallback

    train, dev = items[:8], items[8:10]
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    train_sft(lora(copy.deepcopy(tiny_model)), tokenizer, train, dev, cfg(full_dir, epochs=2), full_dir)

    class CrashAfterStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3:
                raise Crash()

    with pytest.raises(Crash):
        train_sft(lora(copy.deepcopy(tiny_model)), tokenizer, train, dev, cfg(cut_dir, epochs=2), cut_dir,
                  [CrashAfterStep3()])
    assert [p.name for p in complete_checkpoints(cut_dir / "checkpoints")] == ["checkpoint-2"]
    summary = train_sft(lora(copy.deepcopy(tiny_model)), tokenizer, train, dev, cfg(cut_dir, epochs=2, resume=True),
                        cut_dir)
    assert summary["global_step"] == 8
    a = load_file(full_dir / "checkpoints" / "checkpoint-8" / "adapter_model.safetensors")
    b = load_file(cut_dir / "checkpoints" / "checkpoint-8" / "adapter_model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_a_half_written_checkpoint_is_skipped(tmp_path):
    for step, complete in ((2, True), (4, False)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / "adapter_config.json").write_text("{}")
        (d / "adapter_model.safetensors").write_bytes(b"x")
        if complete:
            (d / "trainer_state.json").write_text("{}")
        else:
            (d / "trainer_state.json").write_text('{"global_st')
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["checkpoint-2"]


def test_dev_selection_that_falls_back_to_the_last_checkpoint_says_so(tmp_path, caplog):
    from training.sft import select_checkpoint

    for step in (2, 4):
        ckpt = tmp_path / "checkpoints" / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / "trainer_state.json").write_text("{}")
        for f in ("adapter_config.json", "adapter_model.safetensors"):
            (ckpt / f).write_text(f"step {step}")
    cfg = TrainConfig(select_on="dev_rougeL", batch_size=4, micro_batch_size=4)
    (tmp_path / "dev_scores.json").write_text('{"2": 0.31, "4": 0.12}')
    assert select_checkpoint(tmp_path, cfg).name == "checkpoint-2" and "fell back" not in caplog.text
    (tmp_path / "dev_scores.json").unlink()
    with caplog.at_level("WARNING", logger="training.sft"):
        chosen = select_checkpoint(tmp_path, cfg)
    assert chosen.name == "checkpoint-4"
    assert (tmp_path / "adapter" / "adapter_model.safetensors").read_text() == "step 4"
    assert "dev selection (dev_rougeL) fell back to the last checkpoint, checkpoint-4" in caplog.text
