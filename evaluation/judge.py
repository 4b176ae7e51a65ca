"""G-Eval through any OpenAI-compatible endpoint, and `judge_rows`: either judge over prediction rows.

`OpenAIJudge` asks a chat-completions endpoint (OpenAI, vLLM, llama.cpp, or our own
`python -m evaluation.serve`) through the `openai` client and scores the reply with the same functions
the local judge uses (`evaluation.geval`):
- "probability": temperature 0, `logprobs=True`, `top_logprobs=5`, a few tokens at most; the score is
  sum p(s) * s over the score token's top log-probabilities;
- "sampling": the study's 10 samples at temperature 2, top_p 1; the score is the mean of parsed samples.

Retries are ours (the client's own are switched off so there is one policy): 408, 409, 429, 5xx,
timeouts, dropped connections and unreadable bodies are retried with exponential backoff and jitter
(honouring Retry-After). When the attempts run out, or the reply holds no score, the item gets a failure
record and the run goes on. Successful judgements go to an append-only JSONL cache keyed by judge model,
base URL, prompt name, method (and its settings) and the hash of the rendered prompt, so a rerun only
asks for what is missing or failed, and nothing is paid for twice.

`python -m evaluation.judge --predictions predictions.jsonl` scores a predictions file on its own.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import random
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

from data.secrets import mask_url
from evaluation.geval import METHODS, PROMPTS, Judgement, judgement_from_logprobs, judgement_from_samples, render

log = logging.getLogger(__name__)

RETRYABLE_STATUS = (408, 409, 429)  # and every 5xx
ENV_MODEL, ENV_BASE_URL, ENV_API_KEY = "STUDYLLAMA_JUDGE_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY"
CACHE_FILE = "geval_judgements.jsonl"


@dataclass
class JudgeConfig:
    """An OpenAI-compatible G-Eval judge. Also usable as a flag group (`add_dataclass_args(parser, JudgeConfig, "judge")`)."""

    model: str | None = None
    """Judge model name as the endpoint knows it; default $STUDYLLAMA_JUDGE_MODEL."""
    base_url: str | None = None
    """Endpoint base URL, e.g. http://127.0.0.1:8000/v1; default $OPENAI_BASE_URL, else OpenAI's."""
    api_key: str | None = field(default=None, repr=False)
    """API key; default $OPENAI_API_KEY (a placeholder is sent to a custom base URL when neither is set). Never written to results."""
    prompts: list[str] = field(default_factory=lambda: ["study_v2"])
    """G-Eval prompts to score with: study_v1, study_v2 (the study's rubric prompt), reference."""
    methods: list[str] = field(default_factory=lambda: ["probability"])
    """Scoring methods: probability (the G-Eval paper) and/or sampling (the study)."""
    concurrency: int = 4
    """Requests in flight at once."""
    max_attempts: int = 6
    """Attempts per request before the item is recorded as failed (1 = no retry)."""
    backoff_base: float = 1.0
    """First retry waits about this many seconds; each further retry doubles it (with jitter)."""
    backoff_max: float = 60.0
    """Longest wait between attempts, in seconds."""
    timeout: float = 60.0
    """Seconds before one request counts as timed out (and is retried)."""
    prob_max_tokens: int = 3
    """Tokens generated for the probability method (1-3); the first one whose alternatives hold a score is used."""
    top_logprobs: int = 5
    """Alternatives per token for the probability method (1-20; the paper: 5)."""
    samples: int = 10
    """Samples per item for the sampling method (the study: 10)."""
    sample_temperature: float = 2.0
    """Temperature for the sampling method (the study: 2)."""
    sample_top_p: float = 1.0
    """top_p for the sampling method (the study: 1)."""
    sample_max_tokens: int = 5
    """Tokens per sample for the sampling method."""
    message_role: str = "user"
    """Role of the message that carries the G-Eval prompt (user, or system as the G-Eval code sent it)."""
    price_prompt_per_1k: float = 0.0
    """Price of 1000 prompt tokens, for the cost report."""
    price_completion_per_1k: float = 0.0
    """Price of 1000 completion tokens, for the cost report."""
    cache_dir: str | None = None
    """Folder of the judgement cache; default $STUDYLLAMA_CACHE/geval (~/.cache/studyllama/geval)."""

    def __post_init__(self) -> None:
        problems = []
        unknown = [p for p in self.prompts if p not in PROMPTS]
        if unknown or not self.prompts:
            problems.append(f"prompts must name one or more of {', '.join(PROMPTS)}; got {self.prompts}")
        if not self.methods or any(m not in METHODS for m in self.methods):
            problems.append(f"methods must name one or more of {', '.join(METHODS)}; got {self.methods}")
        if self.concurrency < 1 or self.max_attempts < 1 or self.samples < 1:
            problems.append("concurrency, max_attempts and samples must be at least 1")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.timeout <= 0:
            problems.append("backoff_base and backoff_max must be >= 0 and timeout > 0")
        if not 1 <= self.prob_max_tokens <= 3:
            problems.append(f"prob_max_tokens must be 1, 2 or 3, got {self.prob_max_tokens}")
        if not 1 <= self.top_logprobs <= 20:
            problems.append(f"top_logprobs must be in 1..20, got {self.top_logprobs}")
        if not 0 <= self.sample_temperature <= 2 or not 0 < self.sample_top_p <= 1 or self.sample_max_tokens < 1:
            problems.append("sample_temperature must be in [0, 2], sample_top_p in (0, 1], sample_max_tokens >= 1")
        if self.message_role not in ("user", "system"):
            problems.append(f"message_role must be user or system, got {self.message_role!r}")
        if self.price_prompt_per_1k < 0 or self.price_completion_per_1k < 0:
            problems.append("prices must be >= 0")
        if problems:
            raise ValueError("Invalid JudgeConfig:\n  - " + "\n  - ".join(problems))

    def public_dict(self) -> dict:
        """The settings for a results file: everything but the API key."""
        d = asdict(self)
        d["api_key"] = "<set>" if self.api_key else None
        d["base_url"] = mask_url(self.base_url)
        return d


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

    def __init__(self, config: JudgeConfig | None = None, client=None, sleep=time.sleep, seed: int | None = None):
        self.config = cfg = config or JudgeConfig()
        self.model = cfg.model or os.environ.get(ENV_MODEL)
        if not self.model:
            raise ValueError(f"no judge model: pass --model (or --judge.model) or set ${ENV_MODEL}")
        base_url = cfg.base_url or os.environ.get(ENV_BASE_URL) or None
        if client is None:
            import openai

            api_key = cfg.api_key or os.environ.get(ENV_API_KEY)
            if not api_key:
                if not base_url:
                    raise ValueError(f"no API key for OpenAI's endpoint: set ${ENV_API_KEY} or pass --api_key (or give --base_url)")
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
            return {"temperature": 0, "max_tokens": c.prob_max_tokens, "top_logprobs": c.top_logprobs, "role": c.message_role}
        return {"temperature": c.sample_temperature, "top_p": c.sample_top_p, "n": c.samples,
                "max_tokens": c.sample_max_tokens, "role": c.message_role}

    def judge(self, prompt: str, method: str = "probability") -> Judgement:
        """Score one rendered G-Eval prompt; raises JudgeError when no usable reply could be had."""
        c = self.config
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        if method == "probability":
            reply = self._create(prompt, usage, temperature=0, max_tokens=c.prob_max_tokens, logprobs=True, top_logprobs=c.top_logprobs)
            choice = reply.choices[0]
            content = getattr(choice.logprobs, "content", None) if choice.logprobs is not None else None
            if not content:
                raise JudgeError("no_logprobs", "the reply carries no log-probabilities (does the endpoint support logprobs?)", usage=usage)
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
                    model=self.model, messages=[{"role": cfg.message_role, "content": prompt}], timeout=cfg.timeout, **params)
                if not isinstance(reply, ChatCompletion) or not reply.choices or any(ch.message is None for ch in reply.choices):
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
            log.warning("judge request failed (%s, attempt %d of %d); retrying in %.2fs", message, attempt, cfg.max_attempts, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")


def _retry_after_seconds(response) -> float | None:
    try:
        value = response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


class JudgeCache:
    """Successful judgements, one JSON line each, appended as they arrive (thread-safe).

    A line broken by a kill mid-write is skipped on reading (that item is simply asked again).
    Failures are never cached, so a rerun retries them.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._records: dict[str, dict] = {}
        if self.path.exists():
            with open(self.path, encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    try:
                        rec = json.loads(line)
                        self._records[rec["key"]] = rec
                    except (json.JSONDecodeError, KeyError, TypeError):
                        log.warning("%s:%d: unreadable cache line (interrupted write?); skipped", self.path, lineno)

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> dict | None:
        """The cached record for `key`, or None."""
        return self._records.get(key)

    def put(self, key: str, record: dict) -> None:
        """Store a record under `key` and append it to the file at once."""
        record = {**record, "key": key}
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
            self._records[key] = record


def open_cache(cache_dir: str | Path | None = None) -> JudgeCache:
    """The judgement cache in `cache_dir` (default: $STUDYLLAMA_CACHE/geval, i.e. ~/.cache/studyllama/geval)."""
    if cache_dir is None:
        from model.resolve import cache_root

        cache_dir = cache_root() / "geval"
    return JudgeCache(Path(cache_dir) / CACHE_FILE)


def cache_key(identity: dict, prompt_name: str, method: str, settings: dict, prompt_text: str) -> str:
    """sha256 over judge model, base URL, prompt name, method, its settings and the rendered prompt's hash."""
    text_hash = hashlib.sha256(prompt_text.encode("utf-8")).hexdigest()
    blob = json.dumps({"judge": identity, "prompt": prompt_name, "method": method, "settings": settings, "text": text_hash},
                      sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def score_name(prompt_name: str, method: str) -> str:
    """The per-item field a score lands in, e.g. "geval_study_v2_probability"."""
    return f"geval_{prompt_name}_{method}"


def judge_rows(rows: list[dict], judge, prompt_names=("study_v2",), method: str = "probability", progress: bool = False,
               cache: JudgeCache | None = None, workers: int | None = None,
               answer_key: str = "prediction") -> tuple[list[dict], dict]:
    """Score every row with every prompt by one method; failures are recorded, never raised.

    rows: dicts with "id", "question", the answer under `answer_key` ("prediction"), "reference" (needed by
    the reference prompt) and optionally "system". judge: an `OpenAIJudge`, a `geval.LocalJudge`, or
    anything with `judge(prompt, method) -> Judgement`, `cache_identity()` and `method_settings(method)`.
    Cached judgements are reused; identical prompts are asked once. `workers` defaults to the judge's
    `max_workers` (1 for a local model).

    Returns (scores, summary). scores[i] belongs to rows[i]: {"id", "system", score_name(prompt, method):
    float or None}. summary: judge, base_url, method, prompts, settings, n_items (row x prompt pairs),
    n_scored, n_failed, n_cached, n_asked (distinct prompts sent), requests (HTTP attempts, where the
    judge counts them), failures [{id, system, prompt, method, error, message, attempts}], tokens
    {prompt, completion, total} and cost {prompt, completion, total} of this call's replies, mean
    per score name, seconds.
    """
    if method not in METHODS:
        raise ValueError(f"unknown G-Eval method {method!r}; use one of {METHODS}")
    prompt_names = list(prompt_names)
    for p in prompt_names:
        if p not in PROMPTS:
            raise ValueError(f"unknown G-Eval prompt {p!r}; known: {', '.join(PROMPTS)}")
    started = time.monotonic()
    identity, settings = judge.cache_identity(), judge.method_settings(method)
    requests_before = getattr(judge, "requests", 0)

    tasks: list[tuple[int, str, str]] = []  # (row index, prompt name, cache key)
    texts: dict[str, str] = {}
    for i, row in enumerate(rows):
        needed = ["id", "question", answer_key] + (["reference"] if "reference" in prompt_names else [])
        missing = [k for k in needed if row.get(k) is None]
        if missing:
            raise ValueError(f"row {row.get('id', i)!r} lacks {missing}")
        for p in prompt_names:
            text = render(p, row["question"], row[answer_key], row.get("reference") or "")
            key = cache_key(identity, p, method, settings, text)
            texts[key] = text
            tasks.append((i, p, key))

    scored: dict[str, float] = {}
    for key in texts:
        rec = cache.get(key) if cache is not None else None
        if rec is not None and rec.get("score") is not None:
            scored[key] = rec["score"]
    n_cached = sum(1 for _, _, k in tasks if k in scored)
    todo = [k for k in texts if k not in scored]
    prompt_of = {k: p for _, p, k in tasks}
    errors: dict[str, JudgeError] = {}
    tokens = {"prompt_tokens": 0, "completion_tokens": 0}
    log.info("G-Eval (%s, %s, %s): %d cached, %d to ask",
             identity["model"], method, ",".join(prompt_names), len(texts) - len(todo), len(todo))

    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"G-Eval {method}", unit="item")
    pool = ThreadPoolExecutor(max_workers=max(1, workers or getattr(judge, "max_workers", 1)))
    try:
        pending = {pool.submit(judge.judge, texts[k], method): k for k in todo}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                key = pending.pop(fut)
                try:
                    j = fut.result()
                except JudgeError as exc:
                    errors[key] = exc
                    _add_usage(tokens, exc.usage)
                except Exception as exc:  # a local judge's crash is one item's failure, not the run's
                    log.warning("judge raised %s on one item", type(exc).__name__, exc_info=True)
                    errors[key] = JudgeError(type(exc).__name__, str(exc))
                else:
                    _add_usage(tokens, j.detail.get("usage") or {})
                    if j.score is None:
                        errors[key] = JudgeError("no_score", f"no score in the reply: {_reply_excerpt(j)}")
                    else:
                        scored[key] = j.score
                        if cache is not None:
                            cache.put(key, {**identity, "prompt": prompt_of[key], "method": method, "settings": settings,
                                            "text_sha256": hashlib.sha256(texts[key].encode()).hexdigest(),
                                            "score": j.score, "detail": j.detail, "time": time.time()})
                if bar is not None:
                    bar.update(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()

    scores = [{"id": row["id"], "system": row.get("system")} for row in rows]
    failures = []
    for i, p, key in tasks:
        scores[i][score_name(p, method)] = scored.get(key)
        if key in errors:
            e = errors[key]
            failures.append({"id": rows[i]["id"], "system": rows[i].get("system"), "prompt": p, "method": method,
                             "error": e.kind, "message": e.message, "attempts": e.attempts})
    means = {}
    for p in prompt_names:
        vals = [s[score_name(p, method)] for s in scores if s[score_name(p, method)] is not None]
        means[score_name(p, method)] = sum(vals) / len(vals) if vals else None
    price_in, price_out = getattr(judge, "prices", (0.0, 0.0))
    cost_in, cost_out = tokens["prompt_tokens"] / 1000 * price_in, tokens["completion_tokens"] / 1000 * price_out
    summary = {
        "judge": identity["model"], "base_url": identity["base_url"], "method": method, "prompts": prompt_names,
        "settings": settings, "n_items": len(tasks), "n_scored": len(tasks) - len(failures), "n_failed": len(failures),
        "n_cached": n_cached, "n_asked": len(todo), "requests": getattr(judge, "requests", 0) - requests_before,
        "failures": failures,
        "tokens": {"prompt": tokens["prompt_tokens"], "completion": tokens["completion_tokens"],
                   "total": tokens["prompt_tokens"] + tokens["completion_tokens"]},
        "cost": {"prompt": cost_in, "completion": cost_out, "total": cost_in + cost_out,
                 "price_prompt_per_1k": price_in, "price_completion_per_1k": price_out},
        "mean": means, "seconds": round(time.monotonic() - started, 3),
    }
    if failures:
        log.warning("G-Eval (%s): %d of %d judgements failed; rerun to retry only those", method, len(failures), len(tasks))
    return scores, summary


def _add_usage(total: dict, usage: dict) -> None:
    total["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
    total["completion_tokens"] += int(usage.get("completion_tokens") or 0)


def _reply_excerpt(j: Judgement) -> str:
    d = j.detail
    if "samples" in d:
        return repr(d["samples"][:3])[:200]
    return f"text {d.get('text', '')!r}, top tokens {list(d.get('logprobs', {}))[:5]}"[:200]


def main(argv: list[str] | None = None) -> int:
    """Score a predictions JSONL file; exit 0 when every item was scored, 3 when some failed, 2 on bad input."""
    from data.cli import add_dataclass_args, dataclass_from_args

    parser = argparse.ArgumentParser(prog="python -m evaluation.judge", description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", required=True,
                        help="JSONL rows with id, question, prediction, reference (e.g. an evaluation's predictions.jsonl)")
    parser.add_argument("--out", help="where to write geval_scores.jsonl and geval_summary.json (default: next to --predictions)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    add_dataclass_args(parser, JudgeConfig)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        cfg = dataclass_from_args(JudgeConfig, args)
        judge = OpenAIJudge(cfg)
        path = Path(args.predictions)
        if not path.exists():
            raise ValueError(f"{path} does not exist")
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        cache = open_cache(cfg.cache_dir)
        merged = [{"id": r.get("id"), "system": r.get("system")} for r in rows]
        summaries = []
        for method in cfg.methods:
            scores, summary = judge_rows(rows, judge, cfg.prompts, method, progress=not args.no_progress, cache=cache)
            for m, s in zip(merged, scores):
                m.update(s)
            summaries.append(summary)
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else path.parent
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "geval_scores.jsonl", "w", encoding="utf-8") as fh:
        for m in merged:
            fh.write(json.dumps(m, ensure_ascii=False, sort_keys=True) + "\n")
    (out / "geval_summary.json").write_text(json.dumps({"config": cfg.public_dict(), "runs": summaries}, indent=2) + "\n")
    failed = 0
    for s in summaries:
        failed += s["n_failed"]
        means = ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} n/a" for k, v in s["mean"].items())
        print(f"{s['method']}: {s['n_scored']}/{s['n_items']} scored ({s['n_cached']} cached, {s['n_failed']} failed); {means}; "
              f"tokens {s['tokens']['total']}, cost {s['cost']['total']:.4f}")
        for f in s["failures"][:10]:
            print(f"  failed: {f['id']} ({f['system']}, {f['prompt']}): {f['error']}: {f['message'][:120]}")
    print(f"scores in {out / 'geval_scores.jsonl'}, summary in {out / 'geval_summary.json'}")
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
