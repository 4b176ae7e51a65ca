"""Load a causal LM and its tokenizer (4-bit NF4 or full precision), attach LoRA, load adapters."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from model.config import ModelConfig
from model.resolve import resolve_model
from model.weight_files import ADAPTER_FILES, check_weights
from model.weight_files import AdapterNotFoundError as AdapterNotFoundError  # where callers have always found it

log = logging.getLogger(__name__)


def pick_device(cfg: ModelConfig) -> str:
    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda was asked for, but no CUDA device is available on this machine.")
    return cfg.device


def pick_dtype(cfg: ModelConfig, device: str) -> torch.dtype:
    if cfg.dtype == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return getattr(torch, cfg.dtype)


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.eos_token_id is None:
        raise ValueError(f"tokenizer at {path} has no EOS token; answers could never end")
    if tok.pad_token_id is None:
        # Llama-2 has no pad token; padding is masked out of attention and loss, so EOS serves
        tok.pad_token = tok.eos_token
    return tok


def load_model(cfg: ModelConfig):
    """Return (model, tokenizer) loaded as cfg says: 4-bit NF4 + double quantisation, or full precision."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    resolved = resolve_model(cfg.name, cfg.cache_dir)
    device = pick_device(cfg)
    dtype = pick_dtype(cfg, device)
    tok = load_tokenizer(resolved.path)
    kwargs: dict = {"device_map": {"": device}}
    if cfg.quantization == "nf4":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
        kwargs["dtype"] = dtype
    else:
        kwargs["dtype"] = dtype
    log.info("loading %s (%s) from %s: %s, %s on %s", cfg.name, resolved.kind, resolved.path, cfg.quantization, dtype,
             device)
    model = AutoModelForCausalLM.from_pretrained(resolved.path, **kwargs)
    if cfg.quantization == "nf4":
        prepare_4bit(model)
    model.config.use_cache = True
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def prepare_4bit(model):
    """A 4-bit model as QLoRA trains it, for training and inference alike (so a reloaded adapter gives the
    logits it gave in training): base weights frozen, the unquantised ones (norms, embedding) in fp32, and
    the 4-bit layers kept trainable after any inference on a CPU (model.quant)."""
    from peft import prepare_model_for_kbit_training

    from model.quant import keep_trainable_after_inference

    prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)  # the trainer decides recomputation
    keep_trainable_after_inference(model)
    return model


def freeze(model):
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def ties_output_to_input(model, targets) -> bool:
    """Whether a LoRA on these targets touches an output head that shares its weight with the input
    embedding (SmolLM2 ties them; Llama-2 does not)."""
    return bool(getattr(model.config, "tie_word_embeddings", False)) and any(
        t in ("lm_head", "embed_tokens") for t in targets)


def lora_config(cfg: ModelConfig, tied: bool = False):
    """The study's LoRA. On a model whose lm_head is tied to its input embedding, peft ties the adapters as
    well (`ensure_weight_tying`): the embedding gets the transposed LoRA of the head, as the tie implies."""
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.lora_targets),
        bias="none",
        task_type="CAUSAL_LM",
        ensure_weight_tying=tied,
    )


def attach_lora(model, cfg: ModelConfig):
    """Wrap the model with a fresh LoRA adapter (the base stays frozen)."""
    from peft import get_peft_model

    freeze(model)
    return get_peft_model(model, lora_config(cfg, ties_output_to_input(model, cfg.lora_targets)))


def count_parameters(model) -> tuple[int, int]:
    """(trainable, all) parameters, counting 4-bit packed weights as bitsandbytes stores them (as peft does)."""
    trainable = total = 0
    for p in model.parameters():
        n = p.numel()
        if p.__class__.__name__ == "Params4bit":
            n *= 2  # two 4-bit values per stored uint8
        total += n
        if p.requires_grad:
            trainable += n
    return trainable, total


def trainable_report(model) -> str:
    """The study's line: `trainable params: N || all params: M || trainable%: P`."""
    trainable, total = count_parameters(model)
    return f"trainable params: {trainable} || all params: {total} || trainable%: {100 * trainable / total}"


def load_adapter(model, adapter_dir: str | Path, is_trainable: bool = False):
    """Load a PEFT adapter saved by a run onto a base model."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    check_weights(adapter_dir, ADAPTER_FILES)
    return PeftModel.from_pretrained(model, adapter_dir, is_trainable=is_trainable)
