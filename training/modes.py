"""Turn a loaded base model into what a mode trains, and gather the graph inputs its items need."""
from __future__ import annotations

import logging

from model.config import ModelConfig
from model.graph_config import GraphPromptConfig
from training.sft import GraphInputs

log = logging.getLogger(__name__)


def attach_prompt_tuning(model, model_path: str, cfg: GraphPromptConfig):
    """peft prompt tuning: `prompt_tokens` virtual tokens initialised from the study's instruction."""
    from peft import PromptTuningConfig, PromptTuningInit, get_peft_model

    from model.load import freeze
    from prompting.templates import STUDY_INSTRUCTION

    model = freeze(model)
    pt = PromptTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=cfg.prompt_tokens, prompt_tuning_init=PromptTuningInit.TEXT,
        prompt_tuning_init_text=STUDY_INSTRUCTION, tokenizer_name_or_path=str(model_path),
    )
    return get_peft_model(model, pt)


def build_for_mode(base, tokenizer, model_cfg: ModelConfig, gcfg: GraphPromptConfig, node_dim: int = 384):
    """(trainable model, learning-rate groups, files of a complete checkpoint) for the mode."""
    from kg.schema import RELATIONS
    from model.graph_model import GraphLLM
    from model.load import attach_lora, freeze
    from model.resolve import resolve_model
    from model.trainable import TrainableLM

    if gcfg.mode in ("lora", "graph-text"):
        model = TrainableLM(attach_lora(base, model_cfg))
        return model, [], model.saved_files()
    if gcfg.mode == "prompt-tuning":
        model = TrainableLM(attach_prompt_tuning(base, resolve_model(model_cfg.name, model_cfg.cache_dir).path, gcfg))
        virtual = [p for n, p in model.named_parameters() if p.requires_grad]
        return model, [(virtual, gcfg.prompt_tuning_lr)], model.saved_files()
    llm = attach_lora(base, model_cfg) if gcfg.uses_lora else freeze(base)
    model = GraphLLM(llm, gcfg, node_dim, len(RELATIONS), tokenizer.bos_token_id)
    return model, [(model.graph_parameters(), gcfg.module_lr)], model.saved_files()


def graph_inputs(ctx, items, gcfg: GraphPromptConfig, files, lr_groups, dropped: frozenset = frozenset()
                 ) -> tuple[GraphInputs, dict]:
    """Evidence text and PyG graphs for every item (by id), and a summary of how many fell back. Items in
    `dropped` (evidence dropout) get neither, like a question without a subgraph."""
    prompts = ctx.prompts([it.question for it in items], text=gcfg.uses_text, graph=gcfg.uses_gnn,
                          **gcfg.evidence_limits())
    contexts = {it.id: None if it.id in dropped else p.context for it, p in zip(items, prompts)}
    graphs = {it.id: None if it.id in dropped else p.data for it, p in zip(items, prompts)} if gcfg.uses_gnn else {}
    fallback = sum(p.fallback for p in prompts)
    summary = {"items": len(items), "fallback_plain_prompt": fallback, "evidence_dropped": len(dropped),
               "mean_evidence_lines": round(sum(len(p.evidence) for p in prompts) / max(len(prompts), 1), 2),
               "mean_nodes": round(sum(len(p.subgraph.nodes) for p in prompts) / max(len(prompts), 1), 2)}
    return GraphInputs(contexts=contexts, graphs=graphs, node_dim=ctx.node_dim, files=files, lr_groups=lr_groups), summary


def evidence_dropout(items, share: float, seed: int) -> frozenset:
    """The ids of the training items that get the plain prompt (a fixed draw for a given seed)."""
    import random

    if share <= 0:
        return frozenset()
    rng = random.Random(seed)
    ids = sorted(it.id for it in items)
    return frozenset(rng.sample(ids, round(share * len(ids))))
