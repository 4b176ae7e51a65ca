"""G-Eval judges: any OpenAI-compatible chat-completions endpoint (`OpenAIJudge`) and any causal LM loaded here
(`LocalJudge`, `LazyLocalJudge`), and `build_judge`, which makes the one a JudgeConfig (evaluation.geval.config) names.

`OpenAIJudge` asks an endpoint (OpenAI, vLLM, llama.cpp, or our own `python -m evaluation.serve`) through the
`openai` client:
- "probability": temperature 0, `logprobs=True`, `top_logprobs=5`, a few tokens at most; the score is
  sum p(s) * s over the score token's top log-probabilities;
- "sampling": the study's 10 samples at temperature 2, top_p 1; the score is the mean of parsed samples.
Retries are ours (the client's own are switched off so there is one policy): 408, 409, 429, 5xx,
timeouts, dropped connections and unreadable bodies are retried with exponential backoff and jitter
(honouring Retry-After). When the attempts run out, or the reply holds no score, the item gets a failure
record (evaluation.geval.runner) and the run goes on.

The API key is never a config field: it is read from $OPENAI_API_KEY (or given to `OpenAIJudge` directly), so
it can never reach metrics.json or a report.
"""
from __future__ import annotations

import logging
import math
import os
import random
import threading
import time

from data.secrets import mask_url
from evaluation.geval.config import JudgeConfig
from evaluation.geval.prompts import METHODS, SCORES, Judgement, judgement_from_logprobs, judgement_from_samples

log = logging.getLogger(__name__)

RETRYABLE_STATUS = (408, 409, 429)  # and every 5xx
ENV_MODEL, ENV_BASE_URL, ENV_API_KEY = "STUDYLLAMA_JUDGE_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY"
LOCAL_SAMPLING = {"temperature": 2.0, "top_p": 1.0, "max_new_tokens": 4, "seed": 0}  # the study's sampling


class JudgeError(RuntimeError):
    """A judgement that could not be had: `kind` says why (rate_limited, server_error, timeout, ...)."""

    def __init__(self, kind: str, message: str, attempts: int = 1, usage: dict | None = None):
        super().__init__(f"{kind}: {message}")
        self.kind, self.message, self.attempts = kind, message, attempts
        self.usage = usage or {"prompt_tokens": 0, "completion_tokens": 0}


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): base * 2^(attempt-1), capped, with jitter.

    "Equal jitter": half the exponential step is kept and the other half drawn at random, so parallel
    workers that failed together spread out, yet none retries almost at once. A server's Retry-After
    raises the wait (still capped).
    """
    step = min(cap, base * 2 ** (attempt - 1))
    delay = step / 2 + rng.uniform(0, step / 2)
    if retry_after is not None:
        delay = max(delay, min(cap, retry_after))
    return delay


def score_token_logprobs(content) -> tuple[dict[str, float], int | None]:
    """Top log-probabilities at the first generated position whose alternatives include a score token.

    `content` is a choice's `logprobs.content` (a list of tokens with `top_logprobs`). Returns the
    alternatives there as {token: logprob} (equal token strings merged) and the position, or, when no
    position offers a score, the first position's alternatives and None.
    """
    first: dict[str, float] | None = None
    for pos, tok in enumerate(content or []):
        alts: dict[str, float] = {}
        pairs = [(t.token, t.logprob) for t in (tok.top_logprobs or [])] or [(tok.token, tok.logprob)]
        for text, lp in pairs:
            alts[text] = float(lp) if text not in alts else _logaddexp(alts[text], float(lp))
        if first is None:
            first = alts
        if any(t.strip() in ("1", "2", "3", "4", "5") for t in alts):
            return alts, pos
    return first or {}, None


def _logaddexp(a: float, b: float) -> float:
    hi, lo = max(a, b), min(a, b)
    return hi + math.log1p(math.exp(lo - hi))


class OpenAIJudge:
    """G-Eval judge behind an OpenAI-compatible chat-completions endpoint; thread-safe.

    `client` may be given (tests, custom transports); otherwise one is built from the config, with the
    client's own retries off so that `max_attempts` and the backoff here are the whole retry policy.
    """

    def __init__(self, config: JudgeConfig | None = None, client=None, sleep=time.sleep, seed: int | None = None,
                 api_key: str | None = None):
        self.config = cfg = config or JudgeConfig(kind="openai")
        self.model = cfg.model or os.environ.get(ENV_MODEL)
        if not self.model:
            raise ValueError(f"no judge model: pass --judge.model (--model to evaluation.judge) or set ${ENV_MODEL}")
        base_url = cfg.base_url or os.environ.get(ENV_BASE_URL) or None
        if client is None:
            import openai

            api_key = api_key or os.environ.get(ENV_API_KEY)
            if not api_key:
                if not base_url:
                    raise ValueError(f"no API key for OpenAI's endpoint: set ${ENV_API_KEY} (or give a "
                                     "--judge.base_url)")
                api_key = "not-needed"  # local servers ignore it, but the client insists on one
            client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=cfg.timeout)
        self.client = client
        self.base_url = mask_url(str(client.base_url).rstrip("/"))  # what results and caches record: no credentials
        self.name = self.model
        self.max_workers = cfg.concurrency
        self.prices = (cfg.price_prompt_per_1k, cfg.price_completion_per_1k)
        self._sleep, self._rng, self._lock = sleep, random.Random(seed), threading.Lock()
        self.requests = 0  # HTTP attempts made, retries included

    def cache_identity(self) -> dict:
        """Model and endpoint: two judges with the same identity give interchangeable judgements."""
        return {"model": self.model, "base_url": self.base_url}

    def method_settings(self, method: str) -> dict:
        """The request settings a judgement with `method` depends on (part of the cache key)."""
        c = self.config
        if method == "probability":
            return {"temperature": 0, "max_tokens": c.prob_max_tokens, "top_logprobs": c.top_logprobs,
                    "role": c.message_role}
        return {"temperature": c.sample_temperature, "top_p": c.sample_top_p, "n": c.samples,
                "max_tokens": c.sample_max_tokens, "role": c.message_role}

    def judge(self, prompt: str, method: str = "probability") -> Judgement:
        """Score one rendered G-Eval prompt; raises JudgeError when no usable reply could be had."""
        c = self.config
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        if method == "probability":
            reply = self._create(prompt, usage, temperature=0, max_tokens=c.prob_max_tokens, logprobs=True,
                                 top_logprobs=c.top_logprobs)
            choice = reply.choices[0]
            content = getattr(choice.logprobs, "content", None) if choice.logprobs is not None else None
            if not content:
                raise JudgeError("no_logprobs",
                                 "the reply carries no log-probabilities (does the endpoint support logprobs?)",
                                 usage=usage)
            lps, pos = score_token_logprobs(content)
            return judgement_from_logprobs(lps, position=pos, text=choice.message.content or "", usage=usage)
        if method == "sampling":
            samples: list[str] = []
            for _ in range(c.samples):  # some endpoints return fewer choices than n: ask again for the rest
                reply = self._create(prompt, usage, temperature=c.sample_temperature, top_p=c.sample_top_p,
                                     n=c.samples - len(samples), max_tokens=c.sample_max_tokens)
                samples += [ch.message.content or "" for ch in reply.choices]
                if len(samples) >= c.samples:
                    break
            return judgement_from_samples(samples[: c.samples], usage=usage)
        raise ValueError(f"unknown G-Eval method {method!r}; use one of {METHODS}")

    def _create(self, prompt: str, usage: dict, **params):
        """One chat completion with our retry policy; adds the reply's token usage to `usage`."""
        import openai
        from openai.types.chat import ChatCompletion

        cfg = self.config
        for attempt in range(1, cfg.max_attempts + 1):
            with self._lock:
                self.requests += 1
            retry_after = None
            try:
                reply = self.client.chat.completions.create(
                    model=self.model, messages=[{"role": cfg.message_role, "content": prompt}], timeout=cfg.timeout,
                    **params)
                readable = isinstance(reply, ChatCompletion) and reply.choices
                if not readable or any(ch.message is None for ch in reply.choices):
                    raise JudgeError("bad_response", f"unreadable reply body: {str(reply)[:120]!r}")
                if reply.usage is not None:
                    usage["prompt_tokens"] += reply.usage.prompt_tokens or 0
                    usage["completion_tokens"] += reply.usage.completion_tokens or 0
                return reply
            except JudgeError as exc:
                kind, message, retryable = exc.kind, exc.message, True
            except openai.APITimeoutError as exc:  # before APIConnectionError: it is a subclass
                kind, message, retryable = "timeout", str(exc), True
            except openai.APIConnectionError as exc:
                kind, message, retryable = "connection", str(exc), True
            except openai.APIStatusError as exc:
                status = exc.status_code
                retryable = status in RETRYABLE_STATUS or status >= 500
                kind = "rate_limited" if status == 429 else "server_error" if status >= 500 else f"http_{status}"
                message = f"HTTP {status}: {exc.message}"
                retry_after = _retry_after_seconds(exc.response)
            except openai.APIError as exc:  # e.g. a body that does not validate
                kind, message, retryable = "bad_response", str(exc), True
            if not retryable or attempt == cfg.max_attempts:
                raise JudgeError(kind, message, attempt, usage)
            delay = backoff_delay(attempt, cfg.backoff_base, cfg.backoff_max, self._rng, retry_after)
            log.warning("judge request failed (%s, attempt %d of %d); retrying in %.2fs", message, attempt,
                        cfg.max_attempts, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")


def _retry_after_seconds(response) -> float | None:
    try:
        value = response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


class LocalJudge:
    """A causal LM as judge: next-token probabilities of "1".."5" after the prompt, or samples from it.

    Not thread-safe: `evaluation.judge.judge_rows` runs it with one worker. The sampling defaults are the
    study's (10 samples at temperature 2, top_p 1).
    """

    max_workers = 1

    def __init__(self, model, tokenizer, name: str = "local", samples: int = 10, temperature: float = 2.0,
                 top_p: float = 1.0, max_new_tokens: int = 4, seed: int = 0):
        self.model, self.tok, self.name = model, tokenizer, name
        self.samples, self.temperature, self.top_p = samples, temperature, top_p
        self.max_new_tokens, self.seed = max_new_tokens, seed
        self.score_ids = {}
        for s in SCORES:
            ids = (tokenizer(f" {s}", add_special_tokens=False)["input_ids"]
                   + tokenizer(str(s), add_special_tokens=False)["input_ids"])
            self.score_ids[s] = sorted(set(i for i in ids if tokenizer.decode([i]).strip() == str(s)))

    def cache_identity(self) -> dict:
        """What distinguishes this judge in a judgement cache: its name and the checkpoint it was loaded from."""
        source = getattr(getattr(self.model, "config", None), "_name_or_path", "") or ""
        return {"model": self.name, "base_url": f"local:{source}"}

    def method_settings(self, method: str) -> dict:
        """The settings a judgement with `method` depends on (part of the cache key)."""
        if method == "probability":
            return {}
        return {"n": self.samples, "temperature": self.temperature, "top_p": self.top_p,
                "max_new_tokens": self.max_new_tokens, "seed": self.seed}

    def score_logprobs(self, prompt: str) -> dict[str, float]:
        import torch

        enc = self.tok(prompt, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(**{k: v.to(self.model.device) for k, v in enc.items()}).logits[0, -1].float()
        logp = torch.log_softmax(logits, dim=-1)
        out = {}
        for s, ids in self.score_ids.items():
            if ids:
                out[str(s)] = float(torch.logsumexp(logp[ids], dim=0))
        return out

    def judge(self, prompt: str, method: str = "probability", n: int | None = None, temperature: float | None = None,
              top_p: float | None = None, seed: int | None = None) -> Judgement:
        """Score one rendered prompt; arguments left None take the judge's own settings."""
        if method == "probability":
            lps = self.score_logprobs(prompt)
            n_prompt = len(self.tok(prompt)["input_ids"])
            return judgement_from_logprobs(lps, usage={"prompt_tokens": n_prompt, "completion_tokens": 0})
        if method == "sampling":
            import torch

            torch.manual_seed(self.seed if seed is None else seed)
            enc = self.tok(prompt, return_tensors="pt").to(self.model.device)
            out = self.model.generate(**enc, do_sample=True,
                                      temperature=self.temperature if temperature is None else temperature,
                                      top_p=self.top_p if top_p is None else top_p, max_new_tokens=self.max_new_tokens,
                                      num_return_sequences=self.samples if n is None else n,
                                      pad_token_id=self.tok.pad_token_id)
            width = enc["input_ids"].shape[1]
            samples = [self.tok.decode(o[width:], skip_special_tokens=True) for o in out]
            usage = {"prompt_tokens": width, "completion_tokens": int((out[:, width:] != self.tok.pad_token_id).sum())}
            return judgement_from_samples(samples, usage=usage)
        raise ValueError(f"unknown G-Eval method {method!r}; use 'probability' or 'sampling'")


class LazyLocalJudge:
    """A `geval.LocalJudge` whose model is loaded on the first judgement; identity known without loading.

    The identity (the cache key's judge part) is the model spec, quantization, dtype and the resolved
    checkpoint folder, so judgements made with another checkpoint or precision are never reused.
    """

    max_workers = 1
    prices = (0.0, 0.0)

    def __init__(self, model_cfg, samples: int = 10):
        from model.load import pick_device, pick_dtype
        from model.resolve import resolve_model

        self.model_cfg, self.samples = model_cfg, samples
        resolved = resolve_model(model_cfg.name, model_cfg.cache_dir)  # ModelNotFoundError now, not after generation
        dtype = str(pick_dtype(model_cfg, pick_device(model_cfg))).removeprefix("torch.")
        self.name = f"{model_cfg.name} (local, quantization {model_cfg.quantization}, {dtype})"
        self._identity = {"model": self.name, "base_url": f"local:{resolved.path}"}
        self._judge, self._error = None, None

    def cache_identity(self) -> dict:
        return dict(self._identity)

    def method_settings(self, method: str) -> dict:
        return {} if method == "probability" else {"n": self.samples, **LOCAL_SAMPLING}

    def loaded(self):
        if self._judge is None:
            if self._error is not None:  # one failed load fails every item at once, not one load per item
                raise self._error
            from model.load import load_model

            try:
                model, tok = load_model(self.model_cfg)
            except Exception as exc:
                self._error = exc
                raise
            model.eval()
            self._judge = LocalJudge(model, tok, name=self.name, samples=self.samples, **LOCAL_SAMPLING)
        return self._judge

    def judge(self, prompt: str, method: str = "probability"):
        return self.loaded().judge(prompt, method)

    def close(self) -> None:
        self._judge = None


def build_judge(jc: JudgeConfig, run_model=None):
    """(judge, its public settings) for jc.kind; raises ValueError / ModelNotFoundError before any work is done.
    run_model: the evaluated run's ModelConfig (a local judge's default model), None for a plain-only evaluation."""
    if jc.kind == "openai":
        judge = OpenAIJudge(jc)
        key = f"<from ${ENV_API_KEY}>" if os.environ.get(ENV_API_KEY) else None
        return judge, {**jc.public_dict(), "api_key": key, "kind": "openai", "model": judge.model,
                       "base_url": judge.base_url}
    from dataclasses import replace

    from model.config import ModelConfig

    if jc.model:
        model_cfg = ModelConfig(name=jc.model, quantization=jc.quantization or "none")
    else:
        model_cfg = run_model or ModelConfig()
        if jc.quantization:
            model_cfg = replace(model_cfg, quantization=jc.quantization)
    judge = LazyLocalJudge(model_cfg, jc.samples)
    return judge, {"kind": "local", "model": model_cfg.name, "quantization": model_cfg.quantization,
                   "dtype": model_cfg.dtype, "device": model_cfg.device,
                   "checkpoint": judge.cache_identity()["base_url"],
                   "prompts": list(jc.prompts), "methods": list(jc.methods),
                   "sampling": {"n": jc.samples, **LOCAL_SAMPLING}}
