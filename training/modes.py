"""Turn a loaded base model into what a mode trains, and gather the graph inputs its items need."""
from __future__ import annotations

import logging

from model.config import ModelConfig
from model.graph_config import GraphPromptConfig
from training.sft import ADAPTER_FILES, GraphInputs

log = logging.getLogger(__name__)


def freeze_base(model):
    """Freeze every base weight; for a 4-bit model, also put norms in fp32 as QLoRA does."""
    if getattr(model, "is_loaded_in_4bit", False):
        from peft import prepare_model_for_kbit_training

        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def attach_prompt_tuning(model, model_path: str, cfg: GraphPromptConfig):
    """peft prompt tuning: `prompt_tokens` virtual tokens initialised from the study's instruction."""
    from peft import PromptTuningConfig, PromptTuningInit, get_peft_model

    from prompting.templates import STUDY_INSTRUCTION

    model = freeze_base(model)
    pt = PromptTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=cfg.prompt_tokens, prompt_tuning_init=PromptTuningInit.TEXT,
        prompt_tuning_init_text=STUDY_INSTRUCTION, tokenizer_name_or_path=str(model_path),
    )
    return get_peft_model(model, pt)


def build_for_mode(base, tokenizer, model_cfg: ModelConfig, gcfg: GraphPromptConfig, node_dim: int = 384):
    """(trainable model, learning-rate groups, files of a complete checkpoint) for the mode."""
    from model.graph_model import GraphLLM, saved_files
    from model.load import attach_lora
    from model.resolve import resolve_model

    from kg.schema import RELATIONS

    if gcfg.mode in ("lora", "graph-text"):
        return attach_lora(base, model_cfg), [], ADAPTER_FILES
    if gcfg.mode == "prompt-tuning":
        model = attach_prompt_tuning(base, resolve_model(model_cfg.name, model_cfg.cache_dir).path, gcfg)
        virtual = [p for n, p in model.named_parameters() if p.requires_grad]
        return model, [(virtual, gcfg.prompt_tuning_lr)], ADAPTER_FILES
    llm = attach_lora(base, model_cfg) if gcfg.uses_lora else freeze_base(base)
    model = GraphLLM(llm, gcfg, node_dim, len(RELATIONS), tokenizer.bos_token_id)
    return model, [(model.graph_parameters(), gcfg.module_lr)], saved_files(gcfg)


def graph_inputs(ctx, items, gcfg: GraphPromptConfig, files, lr_groups) -> tuple[GraphInputs, dict]:
    """Evidence text and PyG graphs for every item (by id), and a summary of how many fell back."""
    prompts = ctx.prompts([it.question for it in items], text=gcfg.uses_text, graph=gcfg.uses_gnn,
                          max_triples=gcfg.evidence_triples, max_definitions=gcfg.evidence_definitions)
    contexts = {it.id: p.context for it, p in zip(items, prompts)}
    graphs = {it.id: p.data for it, p in zip(items, prompts)} if gcfg.uses_gnn else {}
    fallback = sum(p.fallback for p in prompts)
    summary = {"items": len(items), "fallback_plain_prompt": fallback,
               "mean_evidence_lines": round(sum(len(p.evidence) for p in prompts) / max(len(prompts), 1), 2),
               "mean_nodes": round(sum(len(p.subgraph.nodes) for p in prompts) / max(len(prompts), 1), 2)}
    return GraphInputs(contexts=contexts, graphs=graphs, node_dim=ctx.node_dim, files=files, lr_groups=lr_groups), summary
