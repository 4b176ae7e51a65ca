"""Supervised fine-tuning on transformers' Trainer: answer-only loss, length-grouped batches,
checkpoints that resume, CSV/TensorBoard logs, and checkpoint selection on the dev split."""
from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from data.schema import QAItem
from model.rundir import ADAPTER_DIR
from model.weight_files import ADAPTER_FILES, CHOSEN_CHECKPOINT
from prompting.templates import encode_example
from training.config import TrainConfig
from training.graph_inputs import GraphInputs

log = logging.getLogger(__name__)


def tokenize_items(items: list[QAItem], tokenizer, style: str, max_length: int, contexts: dict | None = None):
    """A `datasets.Dataset` of input_ids, labels (answer + EOS only) and length, in item order."""
    from datasets import Dataset

    contexts = contexts or {}
    rows = {"id": [], "input_ids": [], "labels": [], "length": []}
    for it in items:
        ex = encode_example(it.question, it.answer, tokenizer, style, max_length, contexts.get(it.id))
        if ex is None:
            log.warning("item %s: the prompt alone exceeds max_length=%d; skipped", it.id, max_length)
            continue
        ids, labels = ex
        rows["id"].append(it.id)
        rows["input_ids"].append(ids)
        rows["labels"].append(labels)
        rows["length"].append(len(ids))
    return Dataset.from_dict(rows)


class PadCollator:
    """Right-pads a batch to its longest example; padding is masked from attention and loss. With
    `graphs` (item id -> PyG Data or None), the batch also carries the items' graphs as tensors."""

    def __init__(self, pad_id: int, graphs: dict | None = None, node_dim: int | None = None):
        if graphs and node_dim is None:
            raise ValueError("PadCollator: graphs need their node feature width (node_dim)")
        self.pad_id = pad_id
        self.graphs = graphs
        self.node_dim = node_dim

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        n = len(features)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        labels = torch.full((n, width), -100, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        for i, f in enumerate(features):
            k = len(f["input_ids"])
            input_ids[i, :k] = torch.tensor(f["input_ids"])
            labels[i, :k] = torch.tensor(f["labels"])
            attention[i, :k] = 1
        batch = {"input_ids": input_ids, "labels": labels, "attention_mask": attention}
        if self.graphs:
            from model.graph_model import collate_graphs

            batch.update(collate_graphs([self.graphs.get(f["id"]) for f in features], self.node_dim))
        return batch


def complete_checkpoints(ckpt_dir: Path, files: tuple[str, ...] = ADAPTER_FILES) -> list[Path]:
    """Checkpoints whose trainer_state.json (written last by Trainer) exists and parses, oldest first."""
    good = []
    for path in sorted(ckpt_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1])):
        try:
            json.loads((path / "trainer_state.json").read_text())
        except (OSError, json.JSONDecodeError):
            log.warning("%s is incomplete (killed while saving?); ignored", path)
            continue
        if all((path / f).exists() for f in files):
            good.append(path)
    return good


def _callbacks(cfg: TrainConfig, run_dir: Path, dev_items: list[QAItem], tokenizer, dev_dataset,
               graph: GraphInputs | None,
               dev_settings=None):
    from transformers import TrainerCallback

    class CsvLog(TrainerCallback):
        """Appends every log line (loss, lr, grad norm, tokens/s) to logs/train_log.csv."""

        fields = ["step", "epoch", "loss", "learning_rate", "grad_norm", "tokens_seen", "tokens_per_s", "rss_mb",
                  "time"]

        def __init__(self):
            self.path = run_dir / "logs" / "train_log.csv"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.last = (time.time(), None)

        def on_log(self, args, state, control, logs=None, **kw):
            if not logs or "loss" not in logs or not state.is_world_process_zero:
                return
            now, tokens = time.time(), state.num_input_tokens_seen
            prev_t, prev_tokens = self.last
            rate = (tokens - prev_tokens) / (now - prev_t) if prev_tokens is not None and now > prev_t else None
            self.last = (now, tokens)
            if rate is not None:
                logs["tokens_per_s"] = round(rate, 1)
            new = not self.path.exists()
            with open(self.path, "a", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=self.fields)
                if new:
                    w.writeheader()
                w.writerow({
                    "step": state.global_step, "epoch": round(state.epoch or 0, 4), "loss": logs.get("loss"),
                    "learning_rate": logs.get("learning_rate"), "grad_norm": logs.get("grad_norm"),
                    "tokens_seen": tokens, "tokens_per_s": logs.get("tokens_per_s"),
                    "rss_mb": memory_mb().get("rss_mb"), "time": round(now, 1),
                })

    class DevSelection(TrainerCallback):
        """Scores each saved checkpoint on the dev split and records it in dev_scores.json."""

        def __init__(self):
            self.path = run_dir / "dev_scores.json"

        def on_save(self, args, state, control, model=None, **kw):
            # one process scores (under DDP the others wait for it at their next gradient exchange)
            if cfg.select_on == "last" or not dev_items or not state.is_world_process_zero:
                return
            if cfg.select_on == "dev_rougeL":
                score = dev_rouge_l(model, tokenizer, dev_items, cfg, graph, dev_settings)
            else:
                score = -dev_loss(model, dev_dataset, tokenizer, graph)
            scores = json.loads(self.path.read_text()) if self.path.exists() else {}
            scores[str(state.global_step)] = score
            self.path.write_text(json.dumps(scores, indent=2, sort_keys=True))
            log.info("step %d: dev %s = %.4f", state.global_step, cfg.select_on, abs(score))

    return [CsvLog(), DevSelection()]


@torch.no_grad()
def dev_loss(model, dev_dataset, tokenizer, graph: GraphInputs | None = None, batch_size: int = 8) -> float:
    collate = PadCollator(tokenizer.pad_token_id, graph.graphs if graph else None, graph.node_dim if graph else None)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(dev_dataset), batch_size):
        batch = collate([dev_dataset[i] for i in range(start, min(start + batch_size, len(dev_dataset)))])
        batch = {k: v.to(model.device) for k, v in batch.items()}
        n = int((batch["labels"][:, 1:] != -100).sum())
        total += float(model(**batch).loss) * n
        count += n
    if was_training:
        model.train()
    return total / max(count, 1)


def dev_rouge_l(model, tokenizer, dev_items: list[QAItem], cfg: TrainConfig, graph: GraphInputs | None = None,
                settings=None) -> float:
    from evaluation.metrics import rouge
    from model.generate import GenerationSettings, generate_answers
    from prompting.templates import build_prompt, encode_prompt, stop_strings

    ctx = graph.contexts if graph else {}
    prompts = [encode_prompt(build_prompt(it.question, tokenizer, cfg.prompt_style, ctx.get(it.id)),
                             tokenizer) for it in dev_items]
    settings = settings or GenerationSettings(max_new_tokens=cfg.dev_max_new_tokens, batch_size=cfg.dev_batch_size)
    graphs = [graph.graphs.get(it.id) for it in dev_items] if graph and graph.uses_graphs else None
    gens = generate_answers(model, tokenizer, prompts, settings, stop_strings(cfg.prompt_style), graphs=graphs)
    return rouge([{"reference": it.answer, "prediction": g.text} for it, g in zip(dev_items, gens)])["rougeL"]


def _trainer_class():
    from transformers import Trainer

    class SFTTrainer(Trainer):
        """Saves and restores only what a TrainableLM trains (PEFT adapter, graph modules), never the base."""

        def _save(self, output_dir=None, state_dict=None):
            self.accelerator.unwrap_model(self.model).save_trainable(output_dir or self.args.output_dir)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            self.accelerator.unwrap_model(model or self.model).load_trainable(resume_from_checkpoint)

    return SFTTrainer


def memory_mb() -> dict:
    """This process's resident memory now (VmRSS) and at its peak (VmHWM), Linux; on CUDA, peak GPU memory."""
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    out["peak_rss_mb" if line.startswith("VmHWM") else "rss_mb"] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        import resource

        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if torch.cuda.is_available():
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def peak_memory_mb() -> dict:
    """The peak figures of memory_mb (for train_summary.json)."""
    return {k: v for k, v in memory_mb().items() if k.startswith("peak")}


def _optimizer(model, cfg: TrainConfig, graph: GraphInputs | None):
    """AdamW with LIMA's settings; new modules (GNN, projector, adapter, virtual tokens) at their own rate."""
    if not graph or not graph.lr_groups:
        return None
    special = {id(p) for params, _ in graph.lr_groups for p in params}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in special]
    groups = ([{"params": rest, "lr": cfg.learning_rate}] if rest else []) + [
        {"params": [p for p in params if p.requires_grad], "lr": lr} for params, lr in graph.lr_groups
    ]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
                             weight_decay=cfg.weight_decay)


def train_sft(model, tokenizer, train_items: list[QAItem], dev_items: list[QAItem], cfg: TrainConfig, run_dir: Path,
              extra_callbacks=(),
              graph: GraphInputs | None = None, dev_settings=None) -> dict:
    """Train the (LoRA-wrapped, prompt-tuned or graph) model; return a summary. The chosen checkpoint's
    trainable weights are copied to run_dir/adapter.

    extra_callbacks: more `TrainerCallback`s (benchmarks time steps with one, tests inject faults).
    graph: evidence, graphs and learning-rate groups of a graph-family run (None: plain SFT).
    dev_settings: the decoding of dev answers (model.decoding.GenerationSettings; training.run passes the
    evaluation's, so the checkpoint is chosen on answers decoded as the evaluation will decode them).
    """
    from transformers import TrainingArguments

    from model.quant import autograd_fallback_is_an_error
    from model.trainable import TrainableLM

    if not isinstance(model, TrainableLM):
        model = TrainableLM(model)  # a bare PeftModel: the same answer-only loss and saving
    contexts = graph.contexts if graph else None
    files = graph.files if graph else model.saved_files()
    train_ds = tokenize_items(train_items, tokenizer, cfg.prompt_style, cfg.max_length, contexts)
    dev_ds = tokenize_items(dev_items, tokenizer, cfg.prompt_style, cfg.max_length, contexts)
    ckpt_dir = run_dir / "checkpoints"
    use_cuda = torch.cuda.is_available() and next(model.parameters()).is_cuda
    report_to = ["tensorboard"] if _has("tensorboard") else []
    if report_to:  # transformers 5 takes the TensorBoard folder from the environment only
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(run_dir / "logs" / "tensorboard"))
    args = TrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="polynomial",  # power 1 = linear decay to lr_end, as LIMA
        lr_scheduler_kwargs={"lr_end": cfg.lr_end, "power": 1.0},
        warmup_steps=0,
        weight_decay=cfg.weight_decay,
        adam_beta1=cfg.adam_beta1,
        adam_beta2=cfg.adam_beta2,
        optim="adamw_torch",
        logging_steps=cfg.logging_steps,
        report_to=report_to,
        save_strategy="steps" if cfg.save_steps else "epoch",
        save_steps=cfg.save_steps or 500,
        save_total_limit=None,
        gradient_checkpointing=cfg.gradient_checkpointing,
        bf16=cfg.bf16_autocast,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        length_column_name="length",
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        use_cpu=not use_cuda,
        seed=cfg.seed,
        data_seed=cfg.seed,
        disable_tqdm=False,
    )
    uses_graphs = bool(graph and graph.uses_graphs)
    keep_id = uses_graphs  # the collator looks graphs up by item id
    trainer = _trainer_class()(
        model=model,
        args=args,
        train_dataset=train_ds if keep_id else train_ds.remove_columns(["id"]),
        data_collator=PadCollator(tokenizer.pad_token_id, graph.graphs if uses_graphs else None,
                                  graph.node_dim if graph else None),
        callbacks=_callbacks(cfg, run_dir, dev_items[: cfg.dev_limit], tokenizer,
                             dev_ds if keep_id else dev_ds.remove_columns(["id"]), graph,
                             dev_settings)
        + list(extra_callbacks),
        optimizers=(_optimizer(model, cfg, graph), None),
    )
    resume_from = None
    if cfg.resume:
        done = complete_checkpoints(ckpt_dir, files)
        if done:
            resume_from = str(done[-1])
            log.info("resuming from %s", resume_from)
        else:
            log.warning("no complete checkpoint in %s; starting from the beginning", ckpt_dir)
    t0 = time.time()
    with autograd_fallback_is_an_error():  # a backward through an op without one is a bug, never a warning
        result = trainer.train(resume_from_checkpoint=resume_from)
    elapsed = time.time() - t0
    if not trainer.is_world_process_zero():
        return {"global_step": trainer.state.global_step, "main_process": False}
    chosen = select_checkpoint(run_dir, cfg, files)
    return {
        "global_step": trainer.state.global_step,
        "train_loss": result.training_loss,
        "train_seconds": round(elapsed, 1),
        "tokens_seen": trainer.state.num_input_tokens_seen,
        "examples": len(train_ds),
        "chosen_checkpoint": chosen.name,
        **peak_memory_mb(),
    }


def select_checkpoint(run_dir: Path, cfg: TrainConfig, files: tuple[str, ...] = ADAPTER_FILES) -> Path:
    """Copy the chosen checkpoint's trainable weights to run_dir/adapter and return the checkpoint path."""
    ckpts = complete_checkpoints(run_dir / "checkpoints", files)
    if not ckpts:
        raise RuntimeError(f"training finished without a complete checkpoint in {run_dir / 'checkpoints'}")
    chosen = ckpts[-1]
    if cfg.select_on != "last":
        scores_path = run_dir / "dev_scores.json"
        scores = json.loads(scores_path.read_text()) if scores_path.exists() else {}
        by_step = {int(p.name.split("-")[-1]): p for p in ckpts}
        scored = [(v, int(k)) for k, v in scores.items() if int(k) in by_step]
        if scored:
            chosen = by_step[max(scored)[1]]
        else:
            log.warning("dev selection (%s) fell back to the last checkpoint, %s: %s scores none of the complete "
                        "checkpoints (no dev items, or checkpoints saved without a score)", cfg.select_on, chosen.name,
                        scores_path)
    out = run_dir / ADAPTER_DIR
    tmp = Path(tempfile.mkdtemp(prefix=".adapter.", dir=run_dir))
    for f in files:
        shutil.copy2(chosen / f, tmp / f)
    (tmp / CHOSEN_CHECKPOINT).write_text(chosen.name + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    log.info("chosen checkpoint: %s", chosen.name)
    return chosen


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
