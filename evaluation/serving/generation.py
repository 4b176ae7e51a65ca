"""The model side of one chat-completions request: n choices through `model.generate`.

Log-probabilities are the model's own next-token distribution (log-softmax of its logits, before temperature and
top_p), the way G-Eval's probability-weighted score wants them. They are read by a logits processor that
`generate` runs before its sampling warpers; the decoding settings come from the request alone, so no processor
from the model's saved generation config (repetition penalty and the like) reshapes them first.

`should_stop` (a function of no arguments) is polled after every decoding step through a StoppingCriteria: the
server sets it when the client goes away or the request's time runs out, and the model is free one step later.
"""
from __future__ import annotations

import logging
from typing import Callable

from evaluation.serving.protocol import CompletionParams, RequestError

log = logging.getLogger(__name__)

# generate() would take these from the model's saved generation config when a request leaves them unset; each is
# set here to the value that switches its logits processor off (the second group only acts when sampling)
NEUTRAL_PROCESSORS = {"repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
                      "encoder_no_repeat_ngram_size": 0, "min_new_tokens": 0, "renormalize_logits": False,
                      "remove_invalid_values": False}
NEUTRAL_WARPERS = {"top_k": 0, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0}
# these have no "off" value but None, which generate() fills from the model's config: warn where a model sets them
UNNEUTRALISABLE = ("bad_words_ids", "forced_bos_token_id", "forced_eos_token_id", "suppress_tokens",
                   "begin_suppress_tokens", "sequence_bias", "exponential_decay_length_penalty", "min_p", "top_h")


class GenerationCancelled(RuntimeError):
    """Generation stopped because `should_stop` said so (client gone or time limit reached)."""


def encode_messages(tokenizer, messages: list[dict], use_chat_template: bool = True) -> list[int]:
    """Prompt token ids: the tokenizer's chat template with the assistant turn opened, or plain text."""
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    text = "\n\n".join(m["content"] for m in messages)
    return tokenizer(text)["input_ids"]


def _eos_ids(model, tokenizer) -> list[int]:
    ids = {tokenizer.eos_token_id}
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos] if gen_eos is not None else [])
    return sorted(i for i in ids if i is not None)


def _criteria_classes():
    """The processor and criteria classes, built on first use (transformers is a heavy import)."""
    from transformers import LogitsProcessor, StoppingCriteria

    class LogprobRecorder(LogitsProcessor):
        """Records, each step, the log-probability of the token chosen one step earlier and the top alternatives;
        it keeps one step's distribution at a time, not the whole (steps x rows x vocabulary) history."""

        def __init__(self, top: int):
            self.top, self.chosen, self.tops, self.last = top, [], [], None

        def __call__(self, input_ids, scores):
            import torch

            self._take(input_ids[:, -1])
            self.last = torch.log_softmax(scores.float(), dim=-1)
            if self.top:
                values, ids = self.last.topk(self.top, dim=-1)
                self.tops.append((values.cpu(), ids.cpu()))
            return scores

        def _take(self, tokens) -> None:
            if self.last is not None:
                self.chosen.append(self.last.gather(1, tokens.view(-1, 1)).squeeze(1).cpu())
                self.last = None

        def finish(self, sequences) -> None:
            self._take(sequences[:, -1])

    class StopWhen(StoppingCriteria):
        """Ends every row once `should_stop()` is true, and each row that has reached a stop string."""

        def __init__(self, should_stop, tokenizer, stop: list[str], prompt_len: int, eos_ids: list[int]):
            self.should_stop, self.tokenizer, self.stop = should_stop, tokenizer, stop
            self.prompt_len, self.eos_ids = prompt_len, set(eos_ids)
            self.fired = False
            self.hits: dict[int, tuple[int, int]] = {}  # row -> (step of the hit, where the text is cut)

        def __call__(self, input_ids, scores, **kwargs):
            import torch

            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            if self.should_stop():
                self.fired = True
                return done.fill_(True)
            if self.stop:
                step = input_ids.shape[1] - self.prompt_len - 1
                for row in range(input_ids.shape[0]):
                    new = input_ids[row, self.prompt_len:].tolist()
                    if row in self.hits or self.eos_ids.intersection(new):
                        done[row] = True
                        continue
                    text = self.tokenizer.decode(new, skip_special_tokens=True)
                    found = [text.find(s) for s in self.stop if s in text]
                    if found:
                        self.hits[row] = (step, min(found))
                        done[row] = True
            return done

    return LogprobRecorder, StopWhen


def _generation_config(model, tokenizer, params: CompletionParams, rows: int, eos_ids: list[int]):
    from transformers import GenerationConfig

    model_cfg = getattr(model, "generation_config", None)
    leaks = [k for k in UNNEUTRALISABLE if getattr(model_cfg, k, None) is not None]
    if leaks:
        log.warning("the model's generation config sets %s; the returned log-probabilities include their effect",
                    ", ".join(leaks))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    sampling = {"temperature": 1.0, "top_p": 1.0} if params.temperature == 0 else {
        **NEUTRAL_WARPERS, "do_sample": True, "temperature": float(params.temperature), "top_p": float(params.top_p)}
    return GenerationConfig(
        **NEUTRAL_PROCESSORS, **({"do_sample": False} | sampling), max_new_tokens=params.max_tokens, num_beams=1,
        num_return_sequences=rows, eos_token_id=eos_ids, pad_token_id=pad, use_cache=True, return_dict_in_generate=True,
    )


def _token_entry(tokenizer, token_id: int, logprob: float) -> dict:
    text = tokenizer.decode([token_id])
    return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}


def generate_choices(model, tokenizer, prompt_ids: list[int], params: CompletionParams,
                     should_stop: Callable[[], bool] | None = None) -> tuple[list[dict], int]:
    """n continuations of one prompt; returns (choices, completion tokens, the end-of-sequence tokens included).

    Each choice: {"text", "finish_reason" ("stop" | "length"), "logprobs" (list of token entries with
    top_logprobs, or None)}. Raises GenerationCancelled when `should_stop` ended the generation.
    """
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    eos_ids = _eos_ids(model, tokenizer)
    greedy = params.temperature == 0
    rows = 1 if greedy else params.n
    device = next(model.parameters()).device
    recorder_cls, stop_cls = _criteria_classes()
    recorder = recorder_cls(params.top_logprobs) if params.logprobs else None
    stopper = stop_cls(should_stop or (lambda: False), tokenizer, params.stop, len(prompt_ids), eos_ids)
    ids = torch.tensor([prompt_ids], device=device)
    # a seeded request draws from its own generator state and leaves the process's one as it found it
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, enabled=params.seed is not None), torch.inference_mode():
        if params.seed is not None:
            torch.manual_seed(params.seed)
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids),
            generation_config=_generation_config(model, tokenizer, params, rows, eos_ids),
            logits_processor=LogitsProcessorList([recorder] if recorder else []),
            stopping_criteria=StoppingCriteriaList([stopper]),
        )
    if stopper.fired:
        raise GenerationCancelled("generation was stopped before it finished")
    new_tokens = out.sequences[:, len(prompt_ids):].tolist()
    if recorder:
        recorder.finish(out.sequences)
    choices, completion_tokens = [], 0
    for row, tokens in enumerate(new_tokens):
        choice, used = _choice(tokenizer, row, tokens, set(eos_ids), stopper.hits.get(row), recorder)
        choices.append(choice)
        completion_tokens += used
    if greedy and params.n > 1:
        choices, completion_tokens = [dict(choices[0]) for _ in range(params.n)], completion_tokens * params.n
    return choices, completion_tokens


def _choice(tokenizer, row: int, tokens: list[int], eos_ids: set[int], hit, recorder) -> tuple[dict, int]:
    """One row's choice and the tokens it used, from the generated ids (rows that ended early are padded)."""
    kept, finish, used = [], "length", len(tokens)
    for step, token in enumerate(tokens):
        if token in eos_ids:
            finish, used = "stop", step + 1
            break
        kept.append(token)
        if hit is not None and step == hit[0]:
            finish, used = "stop", step + 1
            break
    text = tokenizer.decode(kept, skip_special_tokens=True)
    entries = None
    if recorder is not None:
        entries = []
        for step, token in enumerate(kept):
            entry = _token_entry(tokenizer, token, float(recorder.chosen[step][row]))
            if recorder.top:
                values, ids = recorder.tops[step]
                entry["top_logprobs"] = [_token_entry(tokenizer, int(j), float(v))
                                         for v, j in zip(values[row], ids[row])]
            else:
                entry["top_logprobs"] = []
            entries.append(entry)
    if hit is not None:
        cut = hit[1]
        text = text[:cut]
        if entries is not None:  # the tokens whose text lies wholly before the stop string
            entries = [e for k, e in enumerate(entries)
                       if len(tokenizer.decode(kept[: k + 1], skip_special_tokens=True)) <= cut]
    return {"text": text, "finish_reason": finish, "logprobs": entries}, used


def chat_completion(model, tokenizer, messages: list[dict], params: CompletionParams, use_chat_template: bool = True,
                    should_stop: Callable[[], bool] | None = None) -> dict:
    """The model side of one request: {"choices": [...], "prompt_tokens", "completion_tokens"}.

    Raises RequestError("messages") when the prompt leaves no room to generate in the model's context, and
    GenerationCancelled when `should_stop` ended it.
    """
    prompt_ids = encode_messages(tokenizer, messages, use_chat_template)
    context = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    params_used = params
    if context:
        room = context - len(prompt_ids)
        if room < 1:
            raise RequestError("messages", f"the prompt is {len(prompt_ids)} tokens; the model's context is {context}")
        if params.max_tokens > room:
            params_used = CompletionParams(**{**params.__dict__, "max_tokens": room})
    choices, completion_tokens = generate_choices(model, tokenizer, prompt_ids, params_used, should_stop)
    return {"choices": choices, "prompt_tokens": len(prompt_ids), "completion_tokens": completion_tokens}
