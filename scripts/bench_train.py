"""Benchmark: trained (non-padding) tokens/s of our fine-tuning against TRL's SFTTrainer, and peak memory
of the 4-bit model against fp32. Prints JSON.

Same model (bundled SmolLM2, 4-bit NF4), same LoRA (the study's r=32, alpha=64, dropout 0.05 on
q,k,v,o,gate,up,down proj; without lm_head for both, since TRL 1.16 refuses a LoRA on lm_head), same data
(curated training items in the study's prompt, answer-only loss), same batch size and max length, in one
process run. Peers:
- ours: the CPU preset's recipe (micro-batches of 2 accumulated to the batch, loss and output head on answer
  positions only, length-grouped batches, bf16 4-bit compute, no recomputation);
- ours_with_dev_eval: the same, with dev answers generated half-way (as dev selection does); its losses after
  the generation must equal those of `ours` (greedy decoding draws no random numbers), which shows the
  generation left the 4-bit weights trainable;
- trl: TRL's SFTTrainer with its CPU defaults (gradient checkpointing on, bf16 autocast, padded batches in
  random order, the model's default fp32 4-bit compute dtype);
- trl_no_recompute: the same with gradient checkpointing off, so the ratio shows what is ours and what is
  recomputation.
The first step of each is a warm-up and is not timed.

    .venv/bin/python scripts/bench_train.py [--steps 6] [--batch 8] [--micro-batch 2] [--max-length 512] [--skip-memory]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
BENCH_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def step_timer(dev_eval=None):
    """A callback timing steps; with `dev_eval` (a function of the model), it runs it after the middle step
    and leaves the time it took out of the measurement."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall time and non-padding tokens between consecutive step ends: step 1 (warm-up) is not timed."""

        def __init__(self):
            self.times, self.tokens, self.losses, self._last = [], [], {}, None
            self.dev_eval_seconds = None

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.losses[state.global_step] = float(logs["loss"])

        def on_step_end(self, args, state, control, model=None, **kw):
            now = time.perf_counter()
            if self._last is not None:
                self.times.append(now - self._last[0])
                self.tokens.append(state.num_input_tokens_seen - self._last[1])
            if dev_eval is not None and state.global_step == max(args.max_steps // 2, 1):
                dev_eval(model)
                self.dev_eval_seconds = round(time.perf_counter() - now, 1)
                now = time.perf_counter()
            self._last = (now, state.num_input_tokens_seen)

        def result(self):
            t, n = sum(self.times), sum(self.tokens)
            per_step = sorted(k / s for k, s in zip(self.tokens, self.times) if s > 0)
            out = {
                "timed_steps": len(self.times), "tokens": n, "seconds": round(t, 2),
                "tokens_per_s": round(n / t, 1) if t else None,
                "median_step_tokens_per_s": round(per_step[len(per_step) // 2], 1) if per_step else None,
                "loss_per_step": self.losses,
            }
            if self.dev_eval_seconds is not None:
                out["dev_eval_seconds"] = self.dev_eval_seconds
            return out

    return StepTimer()


def load_items(n: int):
    """n curated training items and 8 dev items."""
    from data.config import DataConfig
    from data.prepare import prepare

    prepared = prepare(DataConfig(out_dir=tempfile.mkdtemp(prefix="bench-data-")))
    return prepared.splits.train[:n], prepared.splits.dev[:8]


def bench_ours(items, dev_items, args, with_dev_eval: bool = False) -> dict:
    import torch

    from model.config import ModelConfig
    from model.load import attach_lora, load_model
    from training.config import TrainConfig
    from training.sft import dev_rouge_l, train_sft

    mcfg = ModelConfig(quantization="nf4", dtype="bfloat16", lora_targets=BENCH_TARGETS)
    model, tok = load_model(mcfg)
    torch.manual_seed(0)  # the same LoRA initialisation for both of our runs
    model = attach_lora(model, mcfg)
    cfg = TrainConfig(
        run_dir=tempfile.mkdtemp(prefix="bench-ours-"), epochs=1, max_steps=args.steps, batch_size=args.batch,
        micro_batch_size=args.micro_batch, learning_rate=2e-4, lr_end=0.0, max_length=args.max_length,
        save_steps=10**6, select_on="last", logging_steps=1, dev_max_new_tokens=64,
    )
    dev_eval = (lambda m: dev_rouge_l(m, tok, dev_items, cfg)) if with_dev_eval else None
    timer = step_timer(dev_eval)
    summary = train_sft(model, tok, items, [], cfg, Path(cfg.run_dir), [timer])
    return timer.result() | {
        "config": f"4-bit NF4, bf16 compute, micro-batches of {args.micro_batch}, answer-only head, no gradient "
                  "checkpointing, length-grouped batches"
                  + (", dev answers generated half-way" if with_dev_eval else ""),
        "peak_rss_mb": summary.get("peak_rss_mb"),
    }


def bench_trl(items, args, packed: bool, checkpointing: bool = True) -> dict:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from model.config import ModelConfig
    from model.load import load_model, lora_config
    from prompting.templates import study_prompt

    mcfg = ModelConfig(quantization="nf4", dtype="float32", lora_targets=BENCH_TARGETS)  # bnb's default compute dtype
    model, tok = load_model(mcfg)
    ds = Dataset.from_dict({"prompt": [study_prompt(it.question) for it in items],
                            "completion": [it.answer for it in items]})
    sft_args = SFTConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-trl-"), use_cpu=True, per_device_train_batch_size=args.batch,
        max_length=args.max_length, max_steps=args.steps, learning_rate=2e-4, logging_steps=1, report_to=[],
        save_strategy="no", include_num_input_tokens_seen="non_padding", packing=packed, seed=42,
        gradient_checkpointing=checkpointing,
    )
    timer = step_timer()
    trainer = SFTTrainer(model=model, args=sft_args, train_dataset=ds, processing_class=tok,
                         peft_config=lora_config(mcfg), callbacks=[timer])
    trainer.train()
    return timer.result() | {
        "config": f"TRL {__import__('trl').__version__} defaults: "
                  f"gradient_checkpointing={sft_args.gradient_checkpointing}, "
                  f"bf16={sft_args.bf16}, packing={packed}"
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that across exec, so a
    child started from a large parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def memory_child(quant: str, args) -> dict:
    """Peak RSS of loading the model and running two training steps of `--batch` examples in micro-batches of
    `--micro-batch`, half prompt and half answer, through our TrainableLM (run in a fresh process)."""
    import torch

    from model.config import ModelConfig
    from model.load import attach_lora, load_model
    from model.trainable import TrainableLM

    mcfg = ModelConfig(quantization=quant, dtype="bfloat16" if quant == "nf4" else "float32")
    model, tok = load_model(mcfg)
    footprint = model.get_memory_footprint()
    after_load = peak_rss_mb()
    model = TrainableLM(attach_lora(model, mcfg))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    length = args.max_length // 2
    x = torch.randint(100, 40000, (args.micro_batch, length))
    labels = x.clone()
    labels[:, : length // 2] = -100
    for _ in range(2):
        for _ in range(args.batch // args.micro_batch):
            model(input_ids=x, attention_mask=torch.ones_like(x), labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    return {
        "weights_mb": round(footprint / 2**20, 1),
        "peak_rss_after_load_mb": after_load,
        "peak_rss_training_mb": peak_rss_mb(),
        "batch": [args.batch, length], "micro_batch": args.micro_batch,
    }


def main() -> int:
    from data.cli import ArgumentParser

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--micro-batch", type=int, default=2, help="our micro-batch (TRL keeps its default of the batch)")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--trl-packed", action="store_true", help="also time TRL with packing=True")
    p.add_argument("--memory-child", choices=["nf4", "none"], help=argparse.SUPPRESS)
    args = p.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    from data.cli import quiet_third_party

    quiet_third_party()
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args)))
        return 0
    items, dev_items = load_items(args.steps * args.batch)
    import torch

    out = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
           "steps": args.steps, "batch": args.batch, "micro_batch": args.micro_batch, "max_length": args.max_length,
           "lora_targets": BENCH_TARGETS}
    out["ours"] = bench_ours(items, dev_items, args)
    out["ours_with_dev_eval"] = bench_ours(items, dev_items, args, with_dev_eval=True)
    out["trl"] = bench_trl(items, args, packed=False)
    out["trl_no_recompute"] = bench_trl(items, args, packed=False, checkpointing=False)
    if args.trl_packed:
        out["trl_packed"] = bench_trl(items, args, packed=True)
    for peer in ("trl", "trl_no_recompute"):
        out[f"ratio_ours_over_{peer}"] = round(out["ours"]["tokens_per_s"] / out[peer]["tokens_per_s"], 2)
        out[f"ratio_median_step_over_{peer}"] = round(
            out["ours"]["median_step_tokens_per_s"] / out[peer]["median_step_tokens_per_s"], 2)
    after = [s for s in out["ours"]["loss_per_step"] if s > args.steps // 2]
    out["dev_eval_leaves_training_unchanged"] = all(
        abs(out["ours"]["loss_per_step"][s] - out["ours_with_dev_eval"]["loss_per_step"].get(s, float("nan"))) < 1e-3
        for s in after) if after else None
    if not args.skip_memory:
        out["memory"] = {}
        for quant in ("nf4", "none"):
            proc = subprocess.run([sys.executable, __file__, "--memory-child", quant, "--batch", str(args.batch),
                                   "--micro-batch", str(args.micro_batch), "--max-length", str(args.max_length)],
                                  capture_output=True, text=True)
            out["memory"]["4bit_nf4" if quant == "nf4" else "fp32"] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
