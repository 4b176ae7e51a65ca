"""TrainableLM: what a run trains, as one module whose forward gives the answer-only loss.

The loss runs the decoder on every position but the output head only on the positions that have a label
(the answer and its EOS). On SmolLM2 the head is a 49,152-word projection with the study's LoRA on it:
computing it over the prompt (and the graph evidence) cost a quarter of each step and the largest tensors
of the backward pass. Because the loss lives in `forward`, Trainer, DDP and `accelerate` see an ordinary
module.

`TrainableLM` wraps a LoRA or prompt-tuning `PeftModel` (or a frozen base); `model.graph_model.GraphLLM`
extends it with graph modules. `save_trainable` / `load_trainable` write and read only what trained.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import CausalLMOutputWithPast

from model.weight_files import ADAPTER_FILES, ADAPTER_WEIGHTS

log = logging.getLogger(__name__)


def _causal_lm(lm):
    """The transformers model inside a PeftModel (LoRA layers injected), or lm itself."""
    return lm.get_base_model() if hasattr(lm, "get_base_model") else lm


def _is_prompt_learning(lm) -> bool:
    cfg = getattr(lm, "active_peft_config", None)
    return bool(getattr(cfg, "is_prompt_learning", False))


def answer_only_loss(lm, labels: torch.Tensor, attention_mask: torch.Tensor, input_ids=None, inputs_embeds=None):
    """(sum of the token losses, number of answer tokens) of a causal LM, the head applied only where a
    label is. Models whose logits are not a plain head over the last hidden state (prompt learning, which
    prepends virtual tokens inside peft's forward; final-logit soft-capping) take the ordinary full path."""
    n_tokens = int((labels[:, 1:] != -100).sum())
    model = _causal_lm(lm)
    body = model.get_decoder() if hasattr(model, "get_decoder") else None
    head = model.get_output_embeddings()
    softcapped = getattr(model.config, "final_logit_softcapping", None)
    if _is_prompt_learning(lm) or body is None or head is None or softcapped:
        out = lm(input_ids=input_ids, inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels,
                 use_cache=False)
        return out.loss * n_tokens, n_tokens
    hidden = body(input_ids=input_ids, inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                  use_cache=False).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != -100
    logits = head(hidden[:, :-1][keep]).float()
    return F.cross_entropy(logits, targets[keep], reduction="sum"), n_tokens


class TrainableLM(nn.Module):
    """A causal LM made trainable by a run: `forward(..., labels)` gives the answer-only loss (divided by
    `num_items_in_batch`, Trainer's count of answer tokens over the accumulated batch, when given);
    without labels, the model's ordinary output."""

    accepts_loss_kwargs = True  # Trainer passes num_items_in_batch and leaves gradient accumulation to us
    returns_new_tokens_only = False  # generate() returns prompt + answer, as transformers' generate does

    def __init__(self, llm):
        super().__init__()
        self.llm = llm

    # --- what Trainer, generation and PEFT expect of a model -------------------------------------------
    @property
    def config(self):
        return self.llm.config

    @property
    def generation_config(self):
        return self.llm.generation_config

    @property
    def device(self):
        return next(self.llm.parameters()).device

    def gradient_checkpointing_enable(self, **kw):
        self.llm.gradient_checkpointing_enable(**kw)

    @property
    def has_peft(self) -> bool:
        return hasattr(self.llm, "peft_config")

    # --- loss and generation -----------------------------------------------------------------------------
    def _loss(self, labels, attention_mask, num_items_in_batch=None, input_ids=None, inputs_embeds=None):
        total, n = answer_only_loss(self.llm, labels, attention_mask, input_ids=input_ids, inputs_embeds=inputs_embeds)
        denom = num_items_in_batch if num_items_in_batch is not None else max(n, 1)
        if isinstance(denom, torch.Tensor):
            denom = denom.to(total.device)
        return total / denom, n

    def forward(self, input_ids, attention_mask, labels=None, num_items_in_batch=None, **kw):
        if labels is None:
            return self.llm(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        loss, _ = self._loss(labels, attention_mask, num_items_in_batch, input_ids=input_ids)
        return CausalLMOutputWithPast(loss=loss)

    @torch.inference_mode()
    def generate(self, input_ids, attention_mask, **kwargs):
        return self.llm.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    # --- saving and loading --------------------------------------------------------------------------------
    def save_trainable(self, out_dir: str | Path) -> None:
        """The PEFT adapter only: its own weights, never the base model's embedding (a tied LoRA on lm_head
        is the adapter's, not a reason to store the 49,152 x 576 embedding again)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if self.has_peft:
            self.llm.save_pretrained(out, save_embedding_layers=False)

    def load_trainable(self, in_dir: str | Path) -> None:
        """Put a checkpoint's or adapter folder's PEFT weights back into this model (resume)."""
        src = Path(in_dir)
        if self.has_peft and (src / ADAPTER_WEIGHTS).exists():
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            result = set_peft_model_state_dict(self.llm, load_file(str(src / ADAPTER_WEIGHTS)))
            missing = [k for k in getattr(result, "unexpected_keys", []) if "lora" in k or "prompt" in k]
            if missing:
                raise RuntimeError(f"{src / ADAPTER_WEIGHTS} holds weights this model does not have: {missing[:3]}")

    def saved_files(self) -> tuple[str, ...]:
        """The files a complete checkpoint of this model holds."""
        return ADAPTER_FILES if self.has_peft else ()
