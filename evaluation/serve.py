"""`python -m evaluation.serve`: a loaded model behind an OpenAI-compatible chat-completions endpoint.

Serves the base model ("plain") or base + a training run's LoRA adapter ("finetuned") at
`POST /v1/chat/completions`, with `GET /v1/models` and `GET /health`. Supported request fields:
model, messages, max_tokens (or max_completion_tokens), temperature (0 = greedy), top_p, n, stop,
seed, logprobs and top_logprobs. Log-probabilities are the model's own next-token distribution
(log-softmax of its logits, before temperature and top_p), the way G-Eval's probability-weighted score
wants them. Standard library HTTP only; one request at a time reaches the model (a lock), the others wait.

`chat_completion(model, tokenizer, messages, params)` is the whole model side, so other systems
(graph-prompted ones) can be served by swapping what is loaded or wrapping that function.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from model.modes import MODES, PLAIN

log = logging.getLogger(__name__)

# the systems a chat request can reach: plain and every mode that reads no graph (graph systems need evidence)
SYSTEMS = tuple([PLAIN] + [m.system for m in MODES.values() if not m.reads_graph])
ROLES = ("system", "developer", "user", "assistant")
MAX_TOP_LOGPROBS = 20
MAX_N = 64
MAX_BODY_BYTES = 8 << 20


@dataclass
class CompletionParams:
    """Decoding settings of one chat-completions request."""

    max_tokens: int = 256
    temperature: float = 1.0  # 0: greedy (every one of the n choices is then the same)
    top_p: float = 1.0
    n: int = 1
    stop: list[str] = field(default_factory=list)
    logprobs: bool = False
    top_logprobs: int = 0
    seed: int | None = None


class RequestError(ValueError):
    """A request the server refuses (HTTP 400): `param` names the offending field."""

    def __init__(self, param: str | None, message: str):
        super().__init__(message)
        self.param = param


def _number(body: dict, name: str, default, lo: float, hi: float, integer: bool = False):
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        raise RequestError(name, f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    if not lo <= value <= hi:
        raise RequestError(name, f"{name} must be between {lo} and {hi}, got {value!r}")
    return int(value) if integer else float(value)


def parse_request(body, default_max_tokens: int = 256, max_tokens_limit: int = 4096) -> tuple[str, list[dict], CompletionParams]:
    """(model name, messages, params) from a request body; raises RequestError naming the first bad field."""
    if not isinstance(body, dict):
        raise RequestError(None, "the request body must be a JSON object")
    if body.get("stream"):
        raise RequestError("stream", "streaming is not supported; send stream=false")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("model", "model is required (a string; see GET /v1/models)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages", "messages must be a non-empty list of {role, content} objects")
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise RequestError(f"messages[{i}].role", f"role must be one of {', '.join(ROLES)}")
        content = m.get("content")
        if isinstance(content, list):  # content parts: only text is understood
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
                raise RequestError(f"messages[{i}].content", "only text content parts are supported")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise RequestError(f"messages[{i}].content", "content must be a string or a list of text parts")
        clean.append({"role": "system" if m["role"] == "developer" else m["role"], "content": content})
    limit_name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _number(body, limit_name, default_max_tokens, 1, max_tokens_limit, integer=True)
    stop = body.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
        raise RequestError("stop", "stop must be a non-empty string or a list of up to 4 of them")
    logprobs = body.get("logprobs", False)
    if logprobs is None:
        logprobs = False
    if not isinstance(logprobs, bool):
        raise RequestError("logprobs", "logprobs must be true or false")
    top = _number(body, "top_logprobs", 0, 0, MAX_TOP_LOGPROBS, integer=True)
    if top and not logprobs:
        raise RequestError("top_logprobs", "top_logprobs needs logprobs=true")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError("seed", "seed must be an integer")
    params = CompletionParams(
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
        n=_number(body, "n", 1, 1, MAX_N, integer=True),
        stop=stop, logprobs=logprobs, top_logprobs=top, seed=seed,
    )
    if params.top_p <= 0:
        raise RequestError("top_p", "top_p must be greater than 0")
    return model, clean, params


def encode_messages(tokenizer, messages: list[dict], use_chat_template: bool = True) -> list[int]:
    """Prompt token ids: the tokenizer's chat template with the assistant turn opened, or plain text."""
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    text = "\n\n".join(m["content"] for m in messages)
    return tokenizer(text)["input_ids"]


def _token_entry(tokenizer, token_id: int, logprob: float) -> dict:
    text = tokenizer.decode([token_id])
    return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}


def generate_choices(model, tokenizer, prompt_ids: list[int], params: CompletionParams) -> tuple[list[dict], int]:
    """Decode n continuations of one prompt token by token (KV cache); returns (choices, completion tokens).

    Each choice: {"text", "finish_reason" ("stop" | "length"), "logprobs" (list of token entries with
    top_logprobs, or None)}. Finished rows keep decoding until all are done (they are ignored).
    """
    import torch

    eos_ids = {tokenizer.eos_token_id}
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos_ids.update(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos] if gen_eos is not None else [])
    greedy = params.temperature == 0
    rows = 1 if greedy else params.n
    rng = torch.Generator()
    if params.seed is not None:
        rng.manual_seed(params.seed)
    else:
        rng.seed()
    device = next(model.parameters()).device
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([prompt_ids], device=device), use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1, :].float()
        if rows > 1:  # one prefill, then the cache copied per sampled row
            past.batch_repeat_interleave(rows)
            logits = logits.expand(rows, -1)
        tokens: list[list[int]] = [[] for _ in range(rows)]
        ends: list[list[int]] = [[] for _ in range(rows)]  # text length after each kept token
        entries: list[list[dict]] = [[] for _ in range(rows)]
        finish: list[str | None] = [None] * rows
        cut: list[int | None] = [None] * rows
        used = [0] * rows
        for _ in range(params.max_tokens):
            logp = torch.log_softmax(logits, dim=-1).cpu()
            if greedy:
                nxt = logp.argmax(dim=-1)
            else:
                probs = torch.softmax(logits.cpu() / params.temperature, dim=-1)
                if params.top_p < 1.0:
                    sorted_p, order = probs.sort(dim=-1, descending=True)
                    drop = sorted_p.cumsum(dim=-1) - sorted_p >= params.top_p  # keep the smallest set reaching top_p
                    sorted_p[drop] = 0.0
                    probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
                nxt = torch.multinomial(probs, 1, generator=rng).squeeze(-1)
            for i in range(rows):
                if finish[i] is not None:
                    continue
                t = int(nxt[i])
                used[i] += 1
                if t in eos_ids:
                    finish[i] = "stop"
                    continue
                tokens[i].append(t)
                if params.logprobs:
                    entry = _token_entry(tokenizer, t, float(logp[i, t]))
                    if params.top_logprobs:
                        top_lp, top_id = logp[i].topk(params.top_logprobs)
                        entry["top_logprobs"] = [_token_entry(tokenizer, int(j), float(v)) for v, j in zip(top_lp, top_id)]
                    else:
                        entry["top_logprobs"] = []
                    entries[i].append(entry)
                text = tokenizer.decode(tokens[i], skip_special_tokens=True)
                ends[i].append(len(text))
                hits = [text.find(s) for s in params.stop if s in text]
                if hits:
                    finish[i], cut[i] = "stop", min(hits)
            if all(f is not None for f in finish):
                break
            out = model(input_ids=nxt.view(-1, 1).to(device), past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[:, -1, :].float()
    choices = []
    for i in range(rows):
        text = tokenizer.decode(tokens[i], skip_special_tokens=True)
        kept = entries[i]
        if cut[i] is not None:
            text = text[: cut[i]]
            kept = [e for e, end in zip(entries[i], ends[i]) if end <= cut[i]]
        choices.append({"text": text, "finish_reason": finish[i] or "length", "logprobs": kept if params.logprobs else None})
    completion_tokens = sum(used)
    if greedy and params.n > 1:
        choices, completion_tokens = [dict(choices[0]) for _ in range(params.n)], completion_tokens * params.n
    return choices, completion_tokens


def chat_completion(model, tokenizer, messages: list[dict], params: CompletionParams, use_chat_template: bool = True) -> dict:
    """The model side of one request: {"choices": [...], "prompt_tokens", "completion_tokens"}.

    Raises RequestError("messages") when the prompt leaves no room to generate in the model's context.
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
    choices, completion_tokens = generate_choices(model, tokenizer, prompt_ids, params_used)
    return {"choices": choices, "prompt_tokens": len(prompt_ids), "completion_tokens": completion_tokens}


def completion_response(name: str, result: dict) -> dict:
    """The OpenAI `chat.completion` object for a `chat_completion` result."""
    choices = []
    for i, c in enumerate(result["choices"]):
        choices.append({
            "index": i,
            "message": {"role": "assistant", "content": c["text"]},
            "logprobs": {"content": c["logprobs"]} if c["logprobs"] is not None else None,
            "finish_reason": c["finish_reason"],
        })
    p, q = result["prompt_tokens"], result["completion_tokens"]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()), "model": name,
        "choices": choices, "usage": {"prompt_tokens": p, "completion_tokens": q, "total_tokens": p + q},
        "system_fingerprint": None,
    }


class ModelServer(ThreadingHTTPServer):
    """An HTTP server holding one model; `generate` is called under a lock (one request at a time on the model).

    `generate(model, tokenizer, messages, params, use_chat_template=...)` returns what `chat_completion` returns;
    pass another function (e.g. one that adds graph evidence to the messages) to serve another system.
    """

    daemon_threads = True

    def __init__(self, address, model, tokenizer, name: str, generate=chat_completion, use_chat_template: bool = True,
                 default_max_tokens: int = 256, max_tokens_limit: int = 4096):
        super().__init__(address, _Handler)
        self.model, self.tokenizer, self.model_name, self.generate = model, tokenizer, name, generate
        self.use_chat_template, self.default_max_tokens, self.max_tokens_limit = use_chat_template, default_max_tokens, max_tokens_limit
        self.model_lock = threading.Lock()
        self.completions_served = 0
        self.started = int(time.time())

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # route the access log through logging, quietly
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error", code: str | None = None):
        self._send(status, {"error": {"message": message, "type": kind, "param": param, "code": code}})

    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        srv = self.server
        if path == "/health":
            self._send(200, {"status": "ok", "model": srv.model_name, "completions_served": srv.completions_served})
        elif path in ("/v1/models", "/models"):
            card = {"id": srv.model_name, "object": "model", "created": srv.started, "owned_by": "studyllama"}
            self._send(200, {"object": "list", "data": [card]})
        else:
            self._error(404, f"no route GET {path}", kind="not_found_error")

    def do_POST(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        srv = self.server
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return self._error(413, f"request body over {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(length) if length else b""
        if path not in ("/v1/chat/completions", "/chat/completions"):
            return self._error(404, f"no route POST {path}", kind="not_found_error")
        try:
            body = json.loads(raw or b"null")
        except json.JSONDecodeError as exc:
            return self._error(400, f"the body is not valid JSON: {exc}")
        try:
            name, messages, params = parse_request(body, srv.default_max_tokens, srv.max_tokens_limit)
            if name != srv.model_name:
                return self._error(404, f"model {name!r} is not served here; this server has {srv.model_name!r}",
                                   param="model", code="model_not_found")
            with srv.model_lock:
                result = srv.generate(srv.model, srv.tokenizer, messages, params, use_chat_template=srv.use_chat_template)
                srv.completions_served += 1
        except RequestError as exc:
            return self._error(400, str(exc), param=exc.param)
        except Exception as exc:  # the server stays up for the next request
            log.exception("generation failed")
            return self._error(500, f"generation failed: {type(exc).__name__}: {exc}", kind="server_error")
        self._send(200, completion_response(name, result))


def load_system(run_dir: str | None, system: str, model_name: str | None, overrides: dict):
    """(model, tokenizer) for a system: the run's base model (+ the trained weights of the run providing `system`,
    model.rundir), or `model_name`. ValueError when the run directory cannot be read."""
    from dataclasses import replace

    from model.config import ModelConfig
    from model.load import load_model
    from model.modes import PLAIN
    from model.rundir import RunDir, find_system_runs

    run = RunDir.open(run_dir) if run_dir else None
    if run is not None and system != PLAIN:
        run = find_system_runs(run_dir, [], [system])[system]
        run.check_weights()  # before the model is loaded
    cfg = run.model if run is not None else ModelConfig(name=model_name or "bundled")
    cfg = replace(cfg, **({"name": model_name} if run is not None and model_name else {}),
                  **{k: v for k, v in overrides.items() if v is not None})
    model, tok = load_model(cfg)
    if run is not None and system != PLAIN:
        model = run.load_trained(model, tok)
    model.eval()
    return model, tok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", help="training run directory: its config.json's model section (and adapter/ for finetuned)")
    parser.add_argument("--system", choices=SYSTEMS, default="plain", help="plain: the base model; another: the run's trained system (finetuned: base + LoRA)")
    parser.add_argument("--model", help="model to serve without a run dir (bundled, an HF id in the local cache, "
                                        "a folder, a .gguf); default bundled")
    parser.add_argument("--quantization", choices=("nf4", "none"), help="default: the run's setting, else none")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: the run's setting, else auto")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), help="default: the run's setting, else auto")
    parser.add_argument("--served_name", help="model name clients must send (default: the system name with --run_dir, else the model name)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port; the URL is printed)")
    parser.add_argument("--raw_prompt", action="store_true", help="join message texts instead of applying the chat template")
    parser.add_argument("--default_max_tokens", type=int, default=256, help="max_tokens when a request gives none")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from data.cli import quiet_third_party

    quiet_third_party()
    if args.system != PLAIN and not args.run_dir:
        print(f"error: --system {args.system} needs --run_dir (the run whose adapter to load)", file=sys.stderr)
        return 2
    overrides = {"quantization": args.quantization or (None if args.run_dir else "none"), "device": args.device, "dtype": args.dtype}
    try:
        model, tok = load_system(args.run_dir, args.system, args.model, overrides)
    except Exception as exc:  # ModelNotFoundError, AdapterNotFoundError, bad config: say it and stop
        print(f"error: could not load the model: {exc}", file=sys.stderr)
        return 2
    name = args.served_name or (args.system if args.run_dir else (args.model or "bundled"))
    try:
        server = ModelServer((args.host, args.port), model, tok, name, use_chat_template=not args.raw_prompt,
                             default_max_tokens=args.default_max_tokens)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    worker.start()
    print(f"serving {name!r} at {server.url} (POST {server.url}/chat/completions); Ctrl-C stops", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    print("server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
