"""The shipped modes' model functions: how each is built on a loaded base model for training, and how a
trained one is loaded back from a run's `adapter/` folder. model.modes names them; heavy imports stay
inside the functions so the table itself is cheap to import.

Every build function takes (base, tokenizer, model_cfg, gcfg, node_dim) and returns (TrainableLM, learning-rate
groups): the parameters that train at a rate other than `train.learning_rate`, as [(parameters, rate)]. The
base comes from model.load.load_model (4-bit layers already prepared for training there).
"""
from __future__ import annotations

from pathlib import Path


def build_lora(base, tokenizer, model_cfg, gcfg, node_dim: int | None = None):
    """The study's LoRA (model_cfg's rank, alpha, dropout and targets) on the frozen base."""
    from model.load import attach_lora
    from model.trainable import TrainableLM

    return TrainableLM(attach_lora(base, model_cfg)), []


def attach_prompt_tuning(model, tokenizer, gcfg):
    """peft prompt tuning: `prompt_tokens` virtual tokens initialised from the study's instruction."""
    from peft import PromptTuningConfig, PromptTuningInit, get_peft_model

    from model.load import freeze
    from prompting.templates import STUDY_INSTRUCTION

    pt = PromptTuningConfig(
        task_type="CAUSAL_LM", num_virtual_tokens=gcfg.prompt_tokens, prompt_tuning_init=PromptTuningInit.TEXT,
        prompt_tuning_init_text=STUDY_INSTRUCTION, tokenizer_name_or_path=tokenizer.name_or_path,
    )
    return get_peft_model(freeze(model), pt)


def build_prompt_tuning(base, tokenizer, model_cfg, gcfg, node_dim: int | None = None):
    from model.trainable import TrainableLM

    model = TrainableLM(attach_prompt_tuning(base, tokenizer, gcfg))
    virtual = [p for p in model.parameters() if p.requires_grad]
    return model, [(virtual, gcfg.prompt_tuning_lr)]


def build_graph_llm(base, tokenizer, model_cfg, gcfg, node_dim: int | None = None):
    """GraphLLM (model.graph_model): graph modules around the base, with LoRA when the mode's settings say so."""
    from model.graph_config import NUM_RELATIONS
    from model.graph_model import GraphLLM
    from model.load import attach_lora, freeze

    if node_dim is None:
        raise ValueError(f"mode {gcfg.mode!r} needs the node feature width of the concept graph (node_dim)")
    llm = attach_lora(base, model_cfg) if gcfg.uses_lora else freeze(base)
    model = GraphLLM(llm, gcfg, node_dim, NUM_RELATIONS, tokenizer.bos_token_id)
    return model, [(model.graph_parameters(), gcfg.module_lr)]


def load_peft(base, tokenizer, weights_dir: str | Path, gcfg=None):
    """A PEFT adapter (LoRA or prompt tuning) saved by a run, on a freshly loaded base model."""
    from model.load import load_adapter

    return load_adapter(base, weights_dir)


def load_graph_llm(base, tokenizer, weights_dir: str | Path, gcfg=None):
    from model.graph_model import load_graph_llm

    return load_graph_llm(base, tokenizer, weights_dir)
