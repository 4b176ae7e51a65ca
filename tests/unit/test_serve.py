"""The OpenAI-compatible server on a tiny random model: request checking, decoding, log-probabilities, and what a
model server must have (queue, limits, time limits, cancellation, API key), tried through the real openai client."""
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest

from evaluation.serving.app import ModelServer, ServeConfig
from evaluation.serving.generation import encode_messages, generate_choices
from evaluation.serving.protocol import CompletionParams, RequestError, parse_request

MSG = [{"role": "user", "content": "Rate this answer from 1 to 5."}]


@contextmanager
def serving(model, tokenizer, **limits):
    with ModelServer(model, tokenizer, "tiny", ServeConfig(**limits)) as srv:
        yield srv


@pytest.fixture
def server(tiny_model, tokenizer):
    with serving(tiny_model, tokenizer) as srv:
        yield srv


def openai_client(srv, **kw):
    import openai

    return openai.OpenAI(base_url=srv.url, **{"api_key": "unused", "max_retries": 0, **kw})


@pytest.fixture
def client(server):
    return openai_client(server)


@pytest.fixture
def slow_model(tiny_model):
    """The tiny model at 50 ms a forward pass (a step of a large model on a CPU); counts its forward passes."""
    tiny_model.forwards = 0

    def slow(module, args):
        module.forwards += 1
        time.sleep(0.05)

    handle = tiny_model.register_forward_pre_hook(slow)
    yield tiny_model
    handle.remove()


def health(srv) -> dict:
    with urllib.request.urlopen(srv.url.replace("/v1", "/health"), timeout=5) as r:
        return json.loads(r.read())


def wait_for(srv, timeout: float = 10.0, **counts) -> float:
    """Seconds until /health shows `counts` (e.g. running=0); fails after `timeout`."""
    start = time.monotonic()
    while True:
        now = health(srv)
        if all(now[k] == v for k, v in counts.items()):
            return time.monotonic() - start
        assert time.monotonic() - start < timeout, f"/health still says {now}, waiting for {counts}"
        time.sleep(0.02)


def post(url, payload: bytes, headers: dict | None = None):
    req = urllib.request.Request(url + "/chat/completions", data=payload,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize(
    "change, param",
    [
        ({"model": None}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 0}, "n"),
        ({"n": 1.5}, "n"),
        ({"n": 65}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": "ten"}, "max_completion_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"logprobs": "yes"}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),  # without logprobs=true
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"seed": "abc"}, "seed"),
        ({"stream": True}, "stream"),
    ],
)
def test_bad_requests_name_the_field(change, param):
    body = {"model": "tiny", "messages": MSG, **change}
    with pytest.raises(RequestError) as e:
        parse_request(body)
    assert e.value.param == param


def test_good_request_parses():
    body = {"model": "tiny", "messages": [{"role": "developer", "content": [{"type": "text", "text": "hi"}]}],
            "stop": "###", "n": 3, "temperature": 0, "logprobs": True, "top_logprobs": 5, "max_tokens": 2}
    name, messages, p = parse_request(body)
    assert name == "tiny" and messages == [{"role": "system", "content": "hi"}]
    assert (p.stop, p.n, p.temperature, p.top_logprobs, p.max_tokens) == (["###"], 3, 0.0, 5, 2)


def test_logprobs_are_the_models_own(tiny_model, tokenizer):
    import torch

    ids = encode_messages(tokenizer, MSG)
    params = CompletionParams(max_tokens=3, temperature=0, logprobs=True, top_logprobs=5)
    choices, used = generate_choices(tiny_model, tokenizer, ids, params)
    with torch.inference_mode():
        logp = torch.log_softmax(tiny_model(torch.tensor([ids])).logits[0, -1].float(), -1)
    first = choices[0]["logprobs"][0]
    top_lp, top_id = logp.topk(5)
    assert [t["logprob"] for t in first["top_logprobs"]] == pytest.approx(top_lp.tolist(), abs=1e-4)
    assert [t["token"] for t in first["top_logprobs"]] == [tokenizer.decode([int(i)]) for i in top_id]
    assert first["token"] == first["top_logprobs"][0]["token"]  # greedy picks the most likely token
    assert used == 3 and choices[0]["finish_reason"] == "length" and len(choices[0]["logprobs"]) == 3


def test_stop_strings_cut_the_text(tiny_model, tokenizer):
    ids = encode_messages(tokenizer, MSG)
    full = generate_choices(tiny_model, tokenizer, ids, CompletionParams(max_tokens=8, temperature=0))[0][0]["text"]
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    params = CompletionParams(max_tokens=8, temperature=0, stop=[stop], logprobs=True)
    cut, _ = generate_choices(tiny_model, tokenizer, ids, params)
    assert cut[0]["text"] == full[: full.find(stop)] and cut[0]["finish_reason"] == "stop"
    kept = "".join(e["token"] for e in cut[0]["logprobs"])
    assert kept == cut[0]["text"][: len(kept)]


def test_openai_client_gets_logprobs_n_and_usage(client):
    r = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=2, temperature=0, logprobs=True,
                                       top_logprobs=5)
    c = r.choices[0]
    assert len(c.logprobs.content) == 2 and len(c.logprobs.content[0].top_logprobs) == 5
    assert r.usage.completion_tokens == 2 and r.usage.prompt_tokens > 5
    assert r.usage.total_tokens == r.usage.prompt_tokens + 2
    r = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=3, temperature=2, top_p=1, n=4, seed=1)
    assert len(r.choices) == 4 and 4 <= r.usage.completion_tokens <= 12 and r.choices[0].logprobs is None
    again = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=3, temperature=2, top_p=1, n=4,
                                           seed=1)
    assert [ch.message.content for ch in again.choices] == [ch.message.content for ch in r.choices]  # seeded
    greedy = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=3, temperature=0, n=3)
    assert len({ch.message.content for ch in greedy.choices}) == 1 and greedy.usage.completion_tokens == 9


def test_http_errors_and_side_routes(server):
    status, body = post(server.url, b"{not json")
    assert status == 400 and "JSON" in body["error"]["message"]
    status, body = post(server.url, json.dumps({"model": "tiny", "messages": MSG, "temperature": 9}).encode())
    assert status == 400 and body["error"]["param"] == "temperature"
    status, body = post(server.url, json.dumps({"model": "gpt-9", "messages": MSG}).encode())
    assert status == 404 and body["error"]["code"] == "model_not_found"
    with urllib.request.urlopen(server.url.replace("/v1", "/health")) as r:
        assert json.loads(r.read())["status"] == "ok"
    with urllib.request.urlopen(server.url + "/models") as r:
        assert [m["id"] for m in json.loads(r.read())["data"]] == ["tiny"]


def test_serves_a_runs_adapter(tiny_model, tokenizer, tmp_path):
    """load_system: base from the run's config.json, plus adapter/ for the fine-tuned system."""
    from peft import LoraConfig, get_peft_model

    from evaluation.serve import load_system

    base_dir = tmp_path / "base"
    tiny_model.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    lora = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    peft_model = get_peft_model(tiny_model, lora)
    run = tmp_path / "run"
    peft_model.save_pretrained(run / "adapter")
    section = {"name": str(base_dir), "quantization": "none", "device": "cpu"}
    (run / "config.json").write_text(json.dumps({"model": section}))
    model, tok = load_system(str(run), "finetuned", None, {})
    assert type(model).__name__ == "PeftModelForCausalLM" and not model.training
    plain, _ = load_system(str(run), "plain", None, {})
    assert type(plain).__name__ == "LlamaForCausalLM"
    with pytest.raises(ValueError, match="not a training run"):
        load_system(str(tmp_path / "nowhere"), "plain", None, {})


def test_help(capsys):
    from evaluation.serve import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and "usage: python -m evaluation.serve" in capsys.readouterr().out


def test_an_abandoned_request_frees_the_model_within_2s(slow_model, tokenizer):
    """The issue's case: n=8 abandoned by its client; the model must be free for the next request at once."""
    import openai

    with serving(slow_model, tokenizer) as srv:
        impatient = openai_client(srv, timeout=1.5)
        with pytest.raises(openai.APITimeoutError):
            impatient.chat.completions.create(model="tiny", messages=MSG, n=8, temperature=1, max_tokens=400)
        assert wait_for(srv, timeout=5, running=0, waiting=0) < 2.0
        passes = slow_model.forwards
        assert passes < 60  # 400 steps would take 20 s: generation stopped soon after the client left
        r = openai_client(srv, timeout=10).chat.completions.create(model="tiny", messages=MSG, max_tokens=2,
                                                                     temperature=0)
        assert r.usage.completion_tokens == 2 and slow_model.forwards == passes + 2
        assert health(srv)["completions_served"] == 1


def test_a_full_queue_answers_503_and_the_admitted_finish(slow_model, tokenizer):
    import openai

    with serving(slow_model, tokenizer, max_queue=1) as srv:
        answers = {}

        def ask(key):
            answers[key] = openai_client(srv, timeout=30).chat.completions.create(
                model="tiny", messages=MSG, max_tokens=20, temperature=0)

        first = threading.Thread(target=ask, args=("first",))
        first.start()
        wait_for(srv, running=1)
        second = threading.Thread(target=ask, args=("second",))
        second.start()
        wait_for(srv, running=1, waiting=1)
        with pytest.raises(openai.InternalServerError) as full:
            openai_client(srv).chat.completions.create(model="tiny", messages=MSG, max_tokens=2)
        assert full.value.status_code == 503 and full.value.response.headers["retry-after"] == "1"
        assert "queue is full" in full.value.message
        first.join(30)
        second.join(30)
        assert [answers[k].usage.completion_tokens for k in ("first", "second")] == [20, 20]


def test_a_request_past_its_time_limit_answers_504_and_stops(slow_model, tokenizer):
    import openai

    with serving(slow_model, tokenizer, request_timeout=1.0) as srv:
        start = time.monotonic()
        with pytest.raises(openai.InternalServerError) as late:
            openai_client(srv, timeout=30).chat.completions.create(model="tiny", messages=MSG, max_tokens=400)
        assert late.value.status_code == 504 and "--request_timeout" in late.value.message
        assert time.monotonic() - start < 3.0
        wait_for(srv, timeout=2, running=0, waiting=0)


def test_limits_on_body_size_n_and_max_tokens(tiny_model, tokenizer):
    import openai

    with serving(tiny_model, tokenizer, max_body_bytes=8192, max_n=4, max_tokens_limit=16, default_max_tokens=8) as srv:
        client = openai_client(srv)
        with pytest.raises(openai.APIStatusError) as big:
            client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "x" * 20000}])
        assert big.value.status_code == 413 and "--max_body_bytes" in big.value.message
        with pytest.raises(openai.BadRequestError) as many:
            client.chat.completions.create(model="tiny", messages=MSG, n=5, max_tokens=2)
        assert many.value.body["param"] == "n"
        with pytest.raises(openai.BadRequestError) as long:
            client.chat.completions.create(model="tiny", messages=MSG, max_tokens=17)
        assert long.value.body["param"] == "max_tokens"
        # a chunked upload (no Content-Length) is counted as it arrives
        chunks = iter([b'{"model": "tiny", "messages": [{"role": "user", "content": "', b"y" * 9000, b'"}]}'])
        req = urllib.request.Request(srv.url + "/chat/completions", data=chunks,
                                     headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        with pytest.raises(urllib.error.HTTPError) as chunked:
            urllib.request.urlopen(req, timeout=10)
        assert chunked.value.code == 413
        assert client.chat.completions.create(model="tiny", messages=MSG, max_tokens=2).usage.completion_tokens == 2


def test_a_stalled_upload_answers_408_without_holding_the_model(tiny_model, tokenizer):
    with serving(tiny_model, tokenizer, body_timeout=1.0) as srv:
        stalled = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        head = ("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 500\r\n\r\n").encode()
        stalled.sendall(head + b'{"model": "tiny", ')
        # while that upload stalls, another client is served
        r = openai_client(srv, timeout=10).chat.completions.create(model="tiny", messages=MSG, max_tokens=2)
        assert r.usage.completion_tokens == 2
        start = time.monotonic()
        reply = b""
        while chunk := stalled.recv(4096):  # the server closes the connection after its answer
            reply += chunk
        stalled.close()
        reply = reply.decode()
        assert reply.startswith("HTTP/1.1 408") and "--body_timeout" in reply
        assert time.monotonic() - start < 2.0


def test_bad_bytes_a_lone_surrogate_and_deep_nesting_answer_400(server):
    import openai

    status, body = post(server.url, b'{"model": "tiny", "messages": [{"role": "user", "content": "a\\ud800b"}]}')
    assert status == 400 and body["error"]["param"] == "messages[0].content" and "surrogate" in body["error"]["message"]
    status, body = post(server.url, b'{"model": "tiny", "messages": [{"role": "user", "content": "\xff"}]}')
    assert status == 400 and "UTF-8" in body["error"]["message"]
    for depth in (40, 100_000):  # deeper than the server allows, and deeper than Python's json parser recurses
        payload = b'{"model": "tiny", "messages": ' + b"[" * depth + b"]" * depth + b"}"
        status, body = post(server.url, payload)
        assert status == 400 and "nests deeper" in body["error"]["message"], (depth, body)
    nested: list = []
    for _ in range(40):
        nested = [nested]
    with pytest.raises(openai.BadRequestError) as deep:
        openai_client(server).chat.completions.create(model="tiny", messages=MSG, extra_body={"metadata": nested})
    assert "nests deeper" in deep.value.message
    assert health(server)["completions_served"] == 0


def test_an_api_key_is_required_when_set(tiny_model, tokenizer):
    import openai

    with serving(tiny_model, tokenizer, api_key="s3cret") as srv:
        with pytest.raises(openai.AuthenticationError) as wrong:
            openai_client(srv, api_key="guess").chat.completions.create(model="tiny", messages=MSG, max_tokens=2)
        assert wrong.value.status_code == 401 and wrong.value.body["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            openai_client(srv, api_key="guess").models.list()
        status, body = post(srv.url, json.dumps({"model": "tiny", "messages": MSG, "max_tokens": 2}).encode())
        assert status == 401
        ok = openai_client(srv, api_key="s3cret")
        assert ok.chat.completions.create(model="tiny", messages=MSG, max_tokens=2).usage.completion_tokens == 2
        assert [m.id for m in ok.models.list()] == ["tiny"]
        assert health(srv)["status"] == "ok"  # probes need no key


def test_listening_beyond_loopback_needs_a_key(tiny_model, tokenizer, capsys, monkeypatch):
    from evaluation.serve import main

    with pytest.raises(ValueError, match="API key"):
        ModelServer(tiny_model, tokenizer, "tiny", host="0.0.0.0")
    ModelServer(tiny_model, tokenizer, "tiny", ServeConfig(api_key="k"), host="0.0.0.0")  # built, never started
    monkeypatch.delenv("STUDYLLAMA_API_KEY", raising=False)
    assert main(["--host", "0.0.0.0", "--port", "0"]) == 2  # refused before the model is loaded
    assert "reachable from other machines" in capsys.readouterr().err
    assert main(["--max_n", "0"]) == 2 and "max_n must be at least 1" in capsys.readouterr().err
