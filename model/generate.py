"""Batched generation with stop strings, and an honest record of why each answer ended."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from model.decoding import GenerationSettings  # noqa: F401  (re-exported: callers import it from here)

log = logging.getLogger(__name__)


@dataclass
class Generation:
    text: str  # the answer: generated text cut at the first stop string
    raw_text: str  # everything generated before EOS (or the limit), stop strings included
    new_tokens: int  # tokens generated, EOS included
    stop_reason: str  # "eos" | "stop_string" | "length"


class AnswerNoRepeatNGram:
    """A logits processor that bans the token which would repeat an n-gram the answer already holds.

    transformers' `no_repeat_ngram_size` counts the prompt too, so it would forbid copying a phrase of the
    question or of the graph evidence, and it sees a different sequence when the prompt comes as embeddings
    (graph systems) than as ids. This one counts only the generated tokens, the same way for every system. A
    loop needs a repeated n-gram, so it cannot start; the model has to go on or end."""

    def __init__(self, n: int):
        if n < 2:
            raise ValueError(f"no_repeat_ngram must be at least 2 (or 0 for off), got {n}")
        self.n = n
        self.start: int | None = None  # prompt width at the first call: what follows is the answer

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.start is None:
            self.start = input_ids.shape[1]
        answer = input_ids[:, self.start :].tolist()
        k = self.n - 1
        for row, toks in enumerate(answer):
            if len(toks) < self.n:
                continue
            tail = toks[len(toks) - k :]
            banned = {toks[i + k] for i in range(len(toks) - k) if toks[i : i + k] == tail}
            if banned:
                scores[row, list(banned)] = -float("inf")
        return scores


class PromptTooLongError(ValueError):
    """A prompt that leaves the model no room to answer within its context."""


def context_length(model) -> int | None:
    """The most positions the model attends over (its config's max_position_embeddings), None when unknown."""
    return getattr(getattr(model, "config", None), "max_position_embeddings", None)


def added_positions(model) -> int:
    """Positions a trained system puts before the prompt: peft's virtual tokens, a GraphLLM's soft graph tokens."""
    peft_cfg = getattr(model, "active_peft_config", None)
    if getattr(peft_cfg, "is_prompt_learning", False):
        return int(peft_cfg.num_virtual_tokens)
    projector = getattr(model, "projector", None)
    return int(getattr(projector, "k", 0) or 0)


def check_fits(model, prompt_ids: list[list[int]], max_new_tokens: int, names: list[str] | None = None) -> None:
    """PromptTooLongError naming every prompt that, with max_new_tokens, does not fit the model's context."""
    limit = context_length(model)
    if not limit:
        return
    extra = added_positions(model)
    too_long = [(names[i] if names else str(i), len(ids)) for i, ids in enumerate(prompt_ids)
                if len(ids) + extra + max_new_tokens > limit]
    if too_long:
        which = ", ".join(f"{name} ({n} tokens)" for name, n in too_long[:5])
        raise PromptTooLongError(
            f"{len(too_long)} prompt(s) do not fit the model's context of {limit} positions with max_new_tokens "
            f"{max_new_tokens}{f' and {extra} added soft or virtual tokens' if extra else ''}: {which}. Shorten the "
            f"question (at most about {max(limit - extra - max_new_tokens, 0)} prompt tokens) or lower max_new_tokens.")


def classify_stop(new_ids: list[int], text_before_eos: str, eos_ids: set[int], stops: list[str], max_new_tokens: int):
    """(answer text, stop reason, tokens used) for one generated sequence (pad tokens already stripped)."""
    cut = [text_before_eos.find(s) for s in stops if s in text_before_eos]
    if cut:
        return text_before_eos[: min(cut)].strip(), "stop_string"
    if any(t in eos_ids for t in new_ids):
        return text_before_eos.strip(), "eos"
    return text_before_eos.strip(), "length" if len(new_ids) >= max_new_tokens else "eos"


@torch.inference_mode()
def generate_batch(model, tokenizer, prompt_ids: list[list[int]], settings: GenerationSettings, stops: list[str],
                   graphs: list | None = None) -> list[Generation]:
    """Generate for prompts already tokenised; left padding, one call to model.generate.

    graphs: one PyG Data (or None) per prompt, for a GraphLLM (model.graph_model)."""
    device = next(model.parameters()).device
    width = max(len(p) for p in prompt_ids)
    pad = tokenizer.pad_token_id
    input_ids = torch.full((len(prompt_ids), width), pad, dtype=torch.long)
    attention = torch.zeros((len(prompt_ids), width), dtype=torch.long)
    for i, ids in enumerate(prompt_ids):
        input_ids[i, width - len(ids) :] = torch.tensor(ids)
        attention[i, width - len(ids) :] = 1
    eos_ids = {tokenizer.eos_token_id}
    gen_eos = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(gen_eos, int):
        eos_ids.add(gen_eos)
    elif gen_eos:
        eos_ids.update(gen_eos)
    kwargs = dict(
        max_new_tokens=settings.max_new_tokens,
        do_sample=settings.do_sample,
        repetition_penalty=settings.repetition_penalty,
        pad_token_id=pad,
        eos_token_id=sorted(eos_ids),
        stop_strings=stops or None,
        tokenizer=tokenizer,
    )
    if settings.do_sample:
        kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if settings.no_repeat_ngram:
        from transformers import LogitsProcessorList

        kwargs["logits_processor"] = LogitsProcessorList([AnswerNoRepeatNGram(settings.no_repeat_ngram)])
    if graphs is not None:
        kwargs["graphs"] = graphs
    out = model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device), **kwargs)
    new = out if getattr(model, "returns_new_tokens_only", False) else out[:, width:]
    results = []
    for row in new.tolist():
        first_eos = next((k for k, t in enumerate(row) if t in eos_ids), None)
        used = row if first_eos is None else row[: first_eos + 1]
        raw = tokenizer.decode(used if first_eos is None else used[:-1], skip_special_tokens=True)
        text, reason = classify_stop(used, raw, eos_ids, stops, settings.max_new_tokens)
        results.append(Generation(text=text, raw_text=raw, new_tokens=len(used), stop_reason=reason))
    return results


def generate_answers(model, tokenizer, prompt_ids: list[list[int]], settings: GenerationSettings, stops: list[str],
                     progress: bool = False, graphs: list | None = None):
    """Generate for many prompts in length-sorted batches (less padding); results in input order."""
    if settings.do_sample:
        torch.manual_seed(settings.seed)
    was_training = model.training
    model.eval()
    order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]))
    results: list[Generation | None] = [None] * len(prompt_ids)
    starts = range(0, len(order), settings.batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="generating", unit="batch")
    for start in starts:
        idx = order[start : start + settings.batch_size]
        batch_graphs = None if graphs is None else [graphs[i] for i in idx]
        batch = generate_batch(model, tokenizer, [prompt_ids[i] for i in idx], settings, stops, batch_graphs)
        for i, gen in zip(idx, batch):
            results[i] = gen
    if was_training:
        model.train()
    return results
