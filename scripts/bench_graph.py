"""Benchmark: what graph prompting costs, on this machine, in one run (prints JSON).

1. Per-answer latency (batch 1, greedy, exactly --new_tokens tokens so every system generates the same
   amount) of: the base model on the plain prompt; the same model with LoRA (what `graph` is built on);
   and graph prompting (LoRA + GNN soft tokens + numbered evidence), with retrieval included (subgraph,
   evidence, PyG tensors), once with an empty subgraph cache (cold) and once warm.
2. Training step time (forward + backward + AdamW on --batch training items, as micro-batches of
   --micro_batch, the CPU preset's) of LoRA without the graph vs graph prompting (soft tokens + evidence,
   with the default graph config's evidence limits, the ones training uses) and soft tokens alone. Every
   item gets its evidence here; training drops it for --graph.evidence_dropout of them, so a real step is a
   little cheaper.
Targets: graph latency <= 1.15x the same model without the graph (issue 5); evidence step <= 1.5x the LoRA
step (issue 11).

    .venv/bin/python scripts/bench_graph.py [--questions 6 --new_tokens 64 --batch 8 --micro_batch 2 --steps 5]
"""
from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    from data.cli import ArgumentParser

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--questions", type=int, default=6)
    p.add_argument("--new_tokens", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--micro_batch", type=int, default=2, help="examples per forward pass (training/presets/cpu.yaml)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--kg_work_dir", default="artifacts/kg", help="a built graph's work dir (python -m kg.build)")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()

    import logging

    import torch

    logging.basicConfig(level=logging.WARNING)
    from data.cli import quiet_third_party

    quiet_third_party()
    if args.threads:
        torch.set_num_threads(args.threads)
    from data.loaders import read_split
    from data.prepare import prepare
    from data.config import DataConfig
    from kg.config import KGConfig
    from model.config import ModelConfig
    from model.graph_config import GraphPromptConfig
    from model.graph_config import NUM_RELATIONS
    from model.graph_model import GraphLLM
    from model.load import attach_lora, load_model
    from prompting.graph_prompt import GraphContext
    from prompting.templates import build_prompt, encode_example, encode_prompt
    from training.sft import PadCollator

    prepared = prepare(DataConfig())
    eval_items = read_split(prepared.out_dir / "eval.jsonl")[: args.questions]
    train_items = prepared.splits.train[: args.batch]
    gcfg = GraphPromptConfig(mode="graph")
    model_cfg = ModelConfig(name="bundled", quantization="nf4", dtype="bfloat16")

    # contexts: the real graph, with a throwaway subgraph/PyG cache so the first pass is cold
    scratch = Path(tempfile.mkdtemp(prefix="bench-graph-"))
    work = scratch / "kg"
    work.mkdir()
    for f in ("embeddings.npz", "edge_embeddings.npz"):
        if (Path(args.kg_work_dir) / f).exists():
            shutil.copy2(Path(args.kg_work_dir) / f, work / f)
    from kg.store import StoreConfig

    store_cfg = StoreConfig(data_dir=str(Path(args.kg_work_dir) / "falkordb"))
    t_open, ctx = timed(lambda: GraphContext(KGConfig(work_dir=str(work)), store_cfg, build_if_missing=False).open())
    ctx.embedder.encode(["warm-up"])

    base, tok = load_model(model_cfg)
    lora_model = attach_lora(base, model_cfg)
    torch.manual_seed(0)
    graph_model = GraphLLM(lora_model, gcfg, ctx.node_dim, NUM_RELATIONS, tok.bos_token_id)
    n = args.new_tokens
    gen_kw = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id, temperature=None,
                  top_p=None, top_k=None)

    def plain_answer(model, question):
        ids = encode_prompt(build_prompt(question, tok, "study"), tok)
        x = torch.tensor([ids])
        return model.generate(input_ids=x, attention_mask=torch.ones_like(x), **gen_kw)

    def graph_answer(question):
        gp = ctx.prompts([question], text=True, graph=True, **gcfg.evidence_limits())[0]
        ids = encode_prompt(build_prompt(question, tok, "study", gp.context), tok)
        x = torch.tensor([ids])
        return graph_model.generate(x, torch.ones_like(x), graphs=[gp.data], **gen_kw), gp

    lora_model.eval()
    plain_answer(lora_model, "warm-up question about hashing?")
    # the systems take turns question by question, so load on the machine hits them alike; the first
    # graph pass per question is cold (nothing cached), the second warm
    base_times, lora_times, cold, warm, fallbacks, evidence_tokens = [], [], [], [], 0, []
    for rnd in range(2):
        for q in eval_items:
            with lora_model.disable_adapter():
                base_times.append(timed(lambda q=q: plain_answer(lora_model, q.question))[0])
            lora_times.append(timed(lambda q=q: plain_answer(lora_model, q.question))[0])
            t, (_, gp) = timed(lambda q=q: graph_answer(q.question))
            (cold if rnd == 0 else warm).append(t)
            if rnd == 0:
                fallbacks += gp.fallback
                evidence_tokens.append(len(tok(gp.context or "", add_special_tokens=False)["input_ids"]))
    retrieval_cold = []
    ctx2 = GraphContext(KGConfig(work_dir=str(scratch / "kg2")), store_cfg, build_if_missing=False)
    ctx2.index, ctx2._embedder = ctx.index, ctx.embedder
    ctx2._cache_path = scratch / "kg2" / "subgraphs.jsonl"
    for q in eval_items:
        retrieval_cold.append(timed(lambda q=q: ctx2.prompts([q.question], text=True, graph=True))[0])
    retrieval_warm = [timed(lambda q=q: ctx.prompts([q.question], text=True, graph=True))[0] for q in eval_items]

    # training step time
    # the items in length order (the trainer groups by length), the same grouping for every case
    train_items = sorted(train_items, key=lambda it: len(it.question) + len(it.answer))
    train_gps = ctx.prompts([it.question for it in train_items], text=True, graph=True, **gcfg.evidence_limits())

    def batches_for(with_text: bool, with_soft: bool):
        feats, graphs = [], {}
        for it, gp in zip(train_items, train_gps):
            ids, labels = encode_example(it.question, it.answer, tok, "study", 512, gp.context if with_text else None)
            feats.append({"id": it.id, "input_ids": ids, "labels": labels})
            graphs[it.id] = gp.data
        collate = PadCollator(tok.pad_token_id, graphs if with_soft else None, ctx.node_dim)
        return [collate(feats[i : i + args.micro_batch]) for i in range(0, len(feats), args.micro_batch)]

    def step_times(cases):
        """Median optimizer-step time per case (every micro-batch's forward and backward, then AdamW); the
        cases take turns every step, so drift and noise hit all alike."""
        opts = {name: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
                for name, (m, _) in cases.items()}
        times = {name: [] for name in cases}
        for k in range(args.steps + 1):
            for name, (model, micro_batches) in cases.items():
                model.train()
                t0 = time.perf_counter()
                opts[name].zero_grad()
                for batch in micro_batches:
                    model(**batch).loss.backward()
                opts[name].step()
                if k:  # the first round warms up allocators and kernels
                    times[name].append(time.perf_counter() - t0)
        return {name: statistics.median(v) for name, v in times.items()}

    plain_batches = batches_for(False, False)
    both_batches = batches_for(True, True)
    soft_batches = batches_for(False, True)
    st = step_times({"lora": (lora_model, plain_batches), "both": (graph_model, both_batches),
                     "soft": (graph_model, soft_batches)})
    t_lora, t_both, t_soft = st["lora"], st["both"], st["soft"]

    def ms(xs):
        return round(1000 * statistics.mean(xs), 1)

    lat = {"base_plain_prompt": ms(base_times), "lora_plain_prompt": ms(lora_times), "graph_cold_cache": ms(cold),
           "graph_warm_cache": ms(warm)}
    out = {
        "machine": f"{torch.get_num_threads()} torch threads, CPU",
        "model": "bundled SmolLM2-135M-Instruct, 4-bit NF4, bf16 compute",
        "questions": len(eval_items), "new_tokens_per_answer": n, "fallback_plain_prompt": fallbacks,
        "mean_evidence_tokens": round(statistics.mean(evidence_tokens), 1),
        "graph_open_s": round(t_open, 2),
        "latency_ms_per_answer": lat,
        "retrieval_ms_per_question": {"cold": ms(retrieval_cold), "warm": ms(retrieval_warm)},
        "latency_ratio": {
            "graph_warm_vs_lora": round(lat["graph_warm_cache"] / lat["lora_plain_prompt"], 3),
            "graph_cold_vs_lora": round(lat["graph_cold_cache"] / lat["lora_plain_prompt"], 3),
            "graph_warm_vs_base": round(lat["graph_warm_cache"] / lat["base_plain_prompt"], 3),
        },
        "latency_target": 1.15,
        "train_step_s": {"lora": round(t_lora, 3), "graph_soft_and_text": round(t_both, 3),
                         "graph_soft_only": round(t_soft, 3)},
        "train_batch": {"items": len(train_items), "micro_batch": args.micro_batch,
                        "evidence_limits": gcfg.evidence_limits()},
        "train_tokens_per_batch": {name: sum(int(b["attention_mask"].sum()) for b in bs)
                                   for name, bs in (("plain", plain_batches), ("with_text", both_batches))},
        "train_padded_tokens_per_batch": {name: sum(b["attention_mask"].numel() for b in bs)
                                          for name, bs in (("plain", plain_batches), ("with_text", both_batches))},
        "train_step_ratio": {"soft_and_text_vs_lora": round(t_both / t_lora, 3),
                             "soft_only_vs_lora": round(t_soft / t_lora, 3)},
        "train_step_target": {"soft_and_text_vs_lora": 1.5, "soft_only_vs_lora": 1.25},
    }
    print(json.dumps(out, indent=2))
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
