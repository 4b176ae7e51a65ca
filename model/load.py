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
    """"cpu", or this process's own GPU: under `accelerate launch` (or torchrun) every process loads the model
    onto the GPU of its local rank (the QLoRA-under-DDP pattern), never all onto GPU 0."""
    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda was asked for, but no CUDA device is available on this machine.")
    if device == "cuda":
        return f"cuda:{local_rank()}"
    return device


def local_rank() -> int:
    """This process's index on its machine under a distributed launch (0 otherwise)."""
    import os

    return int(os.environ.get("LOCAL_RANK", "0"))


def pick_dtype(cfg: ModelConfig, device: str) -> torch.dtype:
    if cfg.dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
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


def tied_targets(model, targets) -> list[str]:
    """The LoRA targets that are tied layers: lm_head (and embed_tokens) on a model whose output head shares its
    weight with the input embedding (SmolLM2 does; Llama-2 does not)."""
    if not getattr(model.config, "tie_word_embeddings", False):
        return []
    return [t for t in targets if t in ("lm_head", "embed_tokens")]


def lora_config(cfg: ModelConfig, targets: list[str] | None = None):
    """The study's LoRA (on `targets` when given)."""
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(targets if targets is not None else cfg.lora_targets),
        bias="none",
        task_type="CAUSAL_LM",
    )


def attach_lora(model, cfg: ModelConfig):
    """Wrap the model with a fresh LoRA adapter (the base stays frozen).

    On a model whose lm_head is tied to its input embedding, the head gets no LoRA: an adapter on a tied head
    either unties it in effect (peft warns) or, with peft's `ensure_weight_tying`, trains one shared matrix
    through two parameters, which AdamW updates twice a step and which drift apart under DDP (measured: the two
    copies' cosine 0.12 after two steps on two processes). The study's recipe keeps lm_head on untied models
    such as Llama-2."""
    from peft import get_peft_model

    freeze(model)
    tied = tied_targets(model, cfg.lora_targets)
    targets = [t for t in cfg.lora_targets if t not in tied]
    if not targets:
        raise ValueError(f"every LoRA target ({', '.join(cfg.lora_targets)}) is tied to the input embedding in this "
                         "model; add others with --model.lora_targets")
    if tied:
        log.info("LoRA: %s left out, tied to the input embedding in this model (LoRA on %s)", ", ".join(tied),
                 ", ".join(targets))
    return get_peft_model(model, lora_config(cfg, targets))


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
