#!/usr/bin/env bash
# Reproduce the study's table (design notes, section 7) with Llama-2-7B-chat on a GPU, then add the
# graph modes trained with the same recipe, and print our table next to the study's published numbers.
#
#   bash scripts/reproduce_study.sh                      # meta-llama/Llama-2-7b-chat-hf from the local HF cache
#   bash scripts/reproduce_study.sh /models/Llama-2-7b-chat-hf   # or a checkpoint folder
#
# Needs: one NVIDIA GPU (the 4-bit 7B model with LoRA at 2048 tokens, micro-batch 8: a 40 GB card is
# comfortable; lower --train.micro_batch_size on a smaller one), the CUDA build of torch (scripts/setup.sh
# on the GPU machine) and the model downloaded beforehand: nothing is downloaded here. Llama-2 is gated:
# accept its licence on huggingface.co, then `huggingface-cli login` and
# `huggingface-cli download meta-llama/Llama-2-7b-chat-hf` on a machine with access.
# Time: hours (15 epochs of the 1,000 curated items per run, then an answer of up to 512 tokens per eval
# item and system; training.run prints the eval split's size when it starts). Every step can be stopped:
# running the script again skips what is finished and resumes the rest from its last checkpoint (training)
# or its cached predictions (evaluation).
#
# Environment: PYTHON (default .venv/bin/python), RUNS (default runs), MODES (modes of model.modes to add after
# the LoRA run; default "graph graph-text adapter"; "" for the study's table only), NVIDIA_SMI (default nvidia-smi).
set -euo pipefail
MODEL="${1:-meta-llama/Llama-2-7b-chat-hf}"
if [ -d "$MODEL" ]; then MODEL="$(cd "$MODEL" && pwd)"; fi  # a folder given relative to where the script was called
cd "$(dirname "$0")/.."

PY="${PYTHON:-.venv/bin/python}"
RUNS="${RUNS:-runs}"
MODES="${MODES-graph graph-text adapter}"
NVIDIA_SMI="${NVIDIA_SMI:-nvidia-smi}"
PRESET=study_llama2_7b
LORA_RUN="$RUNS/study-llama2-7b"

die() { echo "error: $*" >&2; exit 2; }

# Step 1. A GPU. The study trained on one; on a CPU the same recipe would take weeks. Checked first, so a
# machine without one stops here in a second.
if ! command -v "$NVIDIA_SMI" >/dev/null 2>&1; then
  die "no NVIDIA GPU: '$NVIDIA_SMI' is not on PATH. This script reproduces the study's Llama-2-7B-chat run and needs a GPU;
       on a CPU, run the documented CPU recipe instead: $PY -m training.run (preset cpu, the bundled model)."
fi
if ! GPUS="$("$NVIDIA_SMI" -L 2>&1)" || ! grep -q '^GPU ' <<<"$GPUS"; then
  die "no NVIDIA GPU: '$NVIDIA_SMI -L' lists none (${GPUS:-no output}). Check the driver (nvidia-smi) and CUDA_VISIBLE_DEVICES."
fi
echo "GPU: $(head -n 1 <<<"$GPUS")"
[ -x "$PY" ] || command -v "$PY" >/dev/null 2>&1 || die "no Python at $PY: run bash scripts/setup.sh first, or set PYTHON"

# Step 2. The model, from the local Hugging Face cache or a folder (model.resolve never downloads).
if ! MODEL_PATH="$("$PY" -c 'import sys; from model.resolve import resolve_model; print(resolve_model(sys.argv[1]).path)' "$MODEL" 2>&1)"; then
  why="$(tail -n 1 <<<"$MODEL_PATH")"
  why="${why#*Error: }"
  case "$MODEL" in
    /*|./*|../*|~*) die "model folder $MODEL cannot be used: $why" ;;
    *) die "model $MODEL is not in the local Hugging Face cache ($why)
       Download it first (Llama-2 is gated: accept the licence on https://huggingface.co/$MODEL, then
       huggingface-cli login && huggingface-cli download $MODEL), or pass its folder:
       bash scripts/reproduce_study.sh /path/to/Llama-2-7b-chat-hf" ;;
  esac
fi
echo "model: $MODEL ($MODEL_PATH)"

# Step 3. torch must see the GPU too (a CPU-only torch build next to a working driver is the usual miss).
"$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
  || die "torch in $PY has no CUDA (torch.cuda.is_available() is False): install the CUDA build (scripts/setup.sh on this machine)"

# How a step is started: finished (eval/metrics.json, or train_summary.json for --no_eval runs) -> skipped;
# checkpoints but not finished -> --resume; otherwise from the beginning.
train() {  # train RUN_DIR DONE_FILE ARGS...
  local run_dir="$1" done_file="$2"; shift 2
  if [ -e "$run_dir/$done_file" ]; then
    echo "== $run_dir: finished ($done_file exists), skipped"
    return 0
  fi
  local resume=()
  if compgen -G "$run_dir/checkpoints/checkpoint-*" >/dev/null; then resume=(--resume); fi
  echo "== $PY -m training.run $* --run_dir $run_dir ${resume[*]}"
  "$PY" -m training.run "$@" --run_dir "$run_dir" "${resume[@]}"
}

# Step 4. The study's run: 4-bit NF4 Llama-2-7B-chat, LoRA r=32 / alpha=64 on every projection and
# lm_head, LIMA's hyperparameters (training/presets/study_llama2_7b.yaml), checkpoint chosen on the dev
# split, then plain vs fine-tuned on the whole eval split. The preset sets no eval.sample, so EvalConfig's
# default (sample None: the whole eval split) holds; `--eval.sample none` is not passed because training.run drops
# eval flags whose value is None (it would keep the preset's value, which here is already "all").
train "$LORA_RUN" eval/metrics.json --preset "$PRESET" --model.name "$MODEL"

# Step 5. The graph modes on the same preset, each trained on the same items (the LoRA baseline above is
# the fine-tuned system, so --graph.train_baseline false), not evaluated on their own: step 6 evaluates them
# all together. The concept graph is built into artifacts/kg the first time a graph run needs it.
# Each mode's flag and system come from the mode table (python -m model.modes: name, system, flag).
declare -A FLAG=() SYSTEM=()
while IFS=$'\t' read -r name system flag; do
  FLAG[$name]="$flag" SYSTEM[$name]="$system"
done < <("$PY" -m model.modes)
runs=() systems=plain,finetuned
for mode in $MODES; do
  [ -n "${FLAG[$mode]:-}" ] || die "unknown mode '$mode' in MODES (modes with a flag: $(for m in "${!FLAG[@]}"; do [ -n "${FLAG[$m]}" ] && printf '%s ' "$m"; done))"
  train "$RUNS/study-llama2-7b-$mode" train_summary.json --preset "$PRESET" "${FLAG[$mode]}" \
    --graph.train_baseline false --model.name "$MODEL" --no_eval
  runs+=("$RUNS/study-llama2-7b-$mode")
  systems+=",${SYSTEM[$mode]}"
done

# Step 6. One evaluation of every system on the whole eval split with the LoRA run's generation settings.
# The plain and fine-tuned answers of step 4 are copied into its prediction cache (same model, prompts and
# decoding), so only the graph systems generate; paired-bootstrap intervals are against plain.
OUT="$LORA_RUN/eval"
if [ ${#runs[@]} -gt 0 ]; then
  OUT="$LORA_RUN/eval-graph"
  mkdir -p "$OUT/predictions"
  for s in plain finetuned; do
    [ -e "$OUT/predictions/$s.jsonl" ] || cp "$LORA_RUN/eval/predictions/$s.jsonl" "$OUT/predictions/$s.jsonl"
  done
  read -r -a EVAL_FLAGS <<<"$("$PY" - "$LORA_RUN" <<'EOF'
import sys
from model.rundir import RunDir
e = RunDir.open(sys.argv[1]).eval
flags = ["--max_new_tokens", e["max_new_tokens"], "--batch_size", e["batch_size"],
         "--repetition_penalty", e["repetition_penalty"], "--no_repeat_ngram", e.get("no_repeat_ngram", 0),
         "--sample_seed", e["sample_seed"]]
if e.get("sample") is not None:
    flags += ["--sample", e["sample"]]
print(" ".join(map(str, flags)))
EOF
)"
  echo "== $PY -m evaluation.run --run_dir $LORA_RUN --runs ${runs[*]} --systems $systems ${EVAL_FLAGS[*]} --out_dir $OUT"
  "$PY" -m evaluation.run --run_dir "$LORA_RUN" --runs "${runs[@]}" --systems "$systems" "${EVAL_FLAGS[@]}" --out_dir "$OUT"
fi

# Step 7. Our table next to the study's (its numbers: design notes, section 7; its G-Eval used GPT-4).
"$PY" - "$OUT/metrics.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
cols = [("ROUGE-1", "rouge", "rouge1"), ("ROUGE-2", "rouge", "rouge2"), ("ROUGE-L", "rouge", "rougeL"),
        ("BLEU-1", "bleu", "bleu1"), ("BLEU-4", "bleu", "bleu4"), ("BLEU", "bleu", "bleu"),
        ("METEOR", "meteor", "meteor"), ("BERTScore", "bertscore", "bertscore_f1")]
study = {"plain": [0.1297, 0.0132, 0.1206, 0.0967, 0.0002, 0.001], "fine-tuned": [0.2896, 0.0893, 0.2662, 0.1992, 0.0126, 0.0321]}
print(f"\nLlama-2-7B-chat, {m['n_items']} eval items ({sys.argv[1]}); study: its published table (G-Eval 3.922 plain, 3.664 fine-tuned)\n")
print("| system | " + " | ".join(c[0] for c in cols) + " |")
print("|---|" + "---|" * len(cols))
for name, vals in study.items():
    print(f"| study: {name} | " + " | ".join(f"{v:.4f}" for v in vals) + " | – | – |")
from model.modes import systems
order = systems()
for system, s in sorted(m["metrics"].items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
    print(f"| ours: {system} | " + " | ".join(f"{s[g][k]:.4f}" for _, g, k in cols) + " |")
print(f"\nPaired differences with 95% intervals, per-domain scores and the HTML report: {sys.argv[1].rsplit('/', 1)[0]}/report.md, report.html")
EOF
