"""The chat-completions request and response, as OpenAI's API defines them (the subset served here).

Supported request fields: model, messages, max_tokens (or max_completion_tokens), temperature (0 = greedy),
top_p, n, stop, seed, logprobs and top_logprobs. A request the server refuses raises `RequestError`, whose
`param` names the offending field the way OpenAI's errors do.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

ROLES = ("system", "developer", "user", "assistant")
MAX_TOP_LOGPROBS = 20
MAX_STOP_STRINGS = 4
# OpenAI request bodies nest about five levels (messages -> message -> content parts -> part); a body nested far
# deeper is malformed or hostile, and walking it would only cost time
MAX_JSON_DEPTH = 32


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


def decode_json_body(raw: bytes, max_depth: int = MAX_JSON_DEPTH):
    """The parsed body, or RequestError for bytes that are not UTF-8 JSON, nest deeper than `max_depth`,
    or hold a lone UTF-16 surrogate (valid JSON escapes, but no text: the tokenizer could not encode it)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(None, f"the body is not UTF-8: byte {exc.start} is invalid") from None
    try:
        body = json.loads(text or "null")
    except json.JSONDecodeError as exc:
        raise RequestError(None, f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # the parser's own recursion limit: nested far beyond max_depth
        raise RequestError(None, f"the body nests deeper than {max_depth} levels") from None
    _check_json_tree(body, max_depth)
    return body


def _check_json_tree(body, max_depth: int) -> None:
    """Walk the parsed body without recursion (a deep body must not overflow the stack here either)."""
    stack = [(body, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, (dict, list)) and depth > max_depth:
            raise RequestError(None, f"the body nests deeper than {max_depth} levels (at {path or 'the top'})")
        if isinstance(node, dict):
            for key, value in node.items():
                _check_text(key, f"{path} key" if path else "a key")
                stack.append((value, depth + 1, f"{path}.{key}" if path else key))
        elif isinstance(node, list):
            stack.extend((value, depth + 1, f"{path}[{i}]") for i, value in enumerate(node))
        elif isinstance(node, str):
            _check_text(node, path)


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        where = path or "the body"
        raise RequestError(path or None, f"{where} holds a lone surrogate (\\u{ord(text[exc.start]):04x}), which is "
                                         "not text") from None


def _number(body: dict, name: str, default, lo: float, hi: float, integer: bool = False):
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not float(value).is_integer()):
        raise RequestError(name, f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    if not lo <= value <= hi:
        raise RequestError(name, f"{name} must be between {lo} and {hi}, got {value!r}")
    return int(value) if integer else float(value)


def _messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages", "messages must be a non-empty list of {role, content} objects")
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise RequestError(f"messages[{i}].role", f"role must be one of {', '.join(ROLES)}")
        content = m.get("content")
        if isinstance(content, list):  # content parts: only text is understood
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise RequestError(f"messages[{i}].content", "only text content parts are supported")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise RequestError(f"messages[{i}].content", "content must be a string or a list of text parts")
        clean.append({"role": "system" if m["role"] == "developer" else m["role"], "content": content})
    return clean


def parse_request(body, default_max_tokens: int = 256, max_tokens_limit: int = 4096,
                  max_n: int = 64) -> tuple[str, list[dict], CompletionParams]:
    """(model name, messages, params) from a request body; raises RequestError naming the first bad field."""
    if not isinstance(body, dict):
        raise RequestError(None, "the request body must be a JSON object")
    if body.get("stream"):
        raise RequestError("stream", "streaming is not supported; send stream=false")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("model", "model is required (a string; see GET /v1/models)")
    messages = _messages(body)
    limit_name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _number(body, limit_name, default_max_tokens, 1, max_tokens_limit, integer=True)
    stop = body.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or len(stop) > MAX_STOP_STRINGS or not all(isinstance(s, str) and s for s in stop):
        raise RequestError("stop", f"stop must be a non-empty string or a list of up to {MAX_STOP_STRINGS} of them")
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
        n=_number(body, "n", 1, 1, max_n, integer=True),
        stop=stop, logprobs=logprobs, top_logprobs=top, seed=seed,
    )
    if params.top_p <= 0:
        raise RequestError("top_p", "top_p must be greater than 0")
    return model, messages, params


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


def error_body(message: str, param: str | None = None, kind: str = "invalid_request_error",
               code: str | None = None) -> dict:
    """OpenAI's error object, which its clients read into the exception they raise."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
