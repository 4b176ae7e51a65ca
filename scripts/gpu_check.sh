#!/usr/bin/env bash
# GPU check: the project's CUDA path end to end in at most 8 minutes on one GPU, through the normal entry
# points. QLoRA in 4-bit NF4 on CUDA with the study's LoRA (r=32 on q,k,v,o,gate,up,down and lm_head), the
# graph-prompted model next to it, generation of the three systems, then a JSON summary (trained tokens/s,
# peak GPU memory, generation time, scores, warnings) in $OUT/gpu_check.json (or runs/gpu-check/).
#   bash scripts/gpu_check.sh [MODEL]     # default: the bundled SmolLM2-135M; any local folder or cached HF id
# Fails at once, saying why, without an NVIDIA GPU or without a CUDA build of torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
MODEL=${1:-bundled}
OUT_DIR=${OUT:-runs}/gpu-check
LIMIT_S=${GPU_CHECK_LIMIT_S:-480}

die() { echo "gpu_check: $*" >&2; exit 2; }
command -v nvidia-smi >/dev/null 2>&1 || die "no nvidia-smi on this machine: there is no NVIDIA GPU to check (the CPU path is what the README's commands run)"
nvidia-smi -L >/dev/null 2>&1 || die "nvidia-smi cannot list a GPU: $(nvidia-smi -L 2>&1 | head -n 1)"
[ -x "$PY" ] || die "$PY not found: run bash scripts/setup.sh first"
"$PY" - <<'EOF' || die "torch cannot use the GPU (a CPU-only build of torch?); install a CUDA build of torch==2.13.0 in .venv"
import sys, torch
sys.exit(0 if torch.cuda.is_available() else 1)
EOF

rm -rf "$OUT_DIR"
mkdir -p "$OUT_DIR"
start=$(date +%s)
log="$OUT_DIR/training_run.log"
# 20 optimiser steps of 8 for each of the LoRA baseline and the graph model, dev selection at step 10 (so the
# run also shows that training after a generation keeps its gradients), 24 eval questions for each system
set +e
timeout "$LIMIT_S" "$PY" -m training.run --graph-prompt --run_dir "$OUT_DIR/run" --model.name "$MODEL" \
  --model.device cuda --train.max_steps 20 --train.save_steps 10 --train.micro_batch_size 8 \
  --train.dev_limit 8 --eval.sample 24 >"$log" 2>&1
rc=$?
set -e
end=$(date +%s)
"$PY" - "$OUT_DIR" "$rc" "$((end - start))" "$MODEL" <<'EOF'
import json, re, sys
from pathlib import Path

out, rc, seconds, model = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
import torch

run = out / "run"
summary = {"exit_code": rc, "wall_seconds": seconds, "model": model, "gpu": torch.cuda.get_device_name(0),
           "torch": torch.__version__, "cuda": torch.version.cuda}
for name, d in (("finetuned", run / "systems" / "finetuned"), ("graph", run)):
    f = d / "train_summary.json"
    if f.exists():
        s = json.loads(f.read_text())
        summary[f"train_{name}"] = {k: s.get(k) for k in ("global_step", "train_seconds", "tokens_seen", "peak_cuda_mb",
                                                           "peak_rss_mb", "chosen_checkpoint")}
        if s.get("train_seconds"):
            summary[f"train_{name}"]["tokens_per_s"] = round(s["tokens_seen"] / s["train_seconds"], 1)
metrics = run / "eval" / "metrics.json"
if metrics.exists():
    m = json.loads(metrics.read_text())
    flat = {s: {k: x for part in v.values() if isinstance(part, dict) for k, x in part.items()}
            for s, v in m["metrics"].items()}
    summary["eval"] = {s: {k: v.get(k) for k in ("rougeL", "bertscore_f1", "hit_limit_rate", "follow_up_count")}
                       for s, v in flat.items()}
log = (out / "training_run.log").read_text(errors="replace")
summary["warnings"] = sorted({l.strip()[:200] for l in log.splitlines() if re.search(r"warn|silently", l, re.I)})
(out / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
EOF
[ "$rc" = 0 ] || die "training.run exited $rc (124: over the ${LIMIT_S}s limit); see $log"
