"""The OpenAI-compatible server on a tiny random model: request checking, decoding, log-probabilities."""
import json
import threading
import urllib.error
import urllib.request

import pytest

from evaluation.serve import CompletionParams, ModelServer, RequestError, encode_messages, generate_choices, parse_request

MSG = [{"role": "user", "content": "Rate this answer from 1 to 5."}]


@pytest.fixture
def server(tiny_model, tokenizer):
    srv = ModelServer(("127.0.0.1", 0), tiny_model, tokenizer, "tiny")
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def client(server):
    import openai

    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0)


def post(url, payload: bytes):
    req = urllib.request.Request(url + "/chat/completions", data=payload, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
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
    name, messages, p = parse_request({"model": "tiny", "messages": [{"role": "developer", "content": [{"type": "text", "text": "hi"}]}],
                                       "stop": "###", "n": 3, "temperature": 0, "logprobs": True, "top_logprobs": 5, "max_tokens": 2})
    assert name == "tiny" and messages == [{"role": "system", "content": "hi"}]
    assert (p.stop, p.n, p.temperature, p.top_logprobs, p.max_tokens) == (["###"], 3, 0.0, 5, 2)


def test_logprobs_are_the_models_own(tiny_model, tokenizer):
    import torch

    ids = encode_messages(tokenizer, MSG)
    choices, used = generate_choices(tiny_model, tokenizer, ids, CompletionParams(max_tokens=3, temperature=0, logprobs=True, top_logprobs=5))
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
    cut, _ = generate_choices(tiny_model, tokenizer, ids, CompletionParams(max_tokens=8, temperature=0, stop=[stop], logprobs=True))
    assert cut[0]["text"] == full[: full.find(stop)] and cut[0]["finish_reason"] == "stop"
    assert "".join(e["token"] for e in cut[0]["logprobs"]) == cut[0]["text"][: len("".join(e["token"] for e in cut[0]["logprobs"]))]


def test_openai_client_gets_logprobs_n_and_usage(client):
    r = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=2, temperature=0, logprobs=True, top_logprobs=5)
    c = r.choices[0]
    assert len(c.logprobs.content) == 2 and len(c.logprobs.content[0].top_logprobs) == 5
    assert r.usage.completion_tokens == 2 and r.usage.prompt_tokens > 5 and r.usage.total_tokens == r.usage.prompt_tokens + 2
    r = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=3, temperature=2, top_p=1, n=4, seed=1)
    assert len(r.choices) == 4 and 4 <= r.usage.completion_tokens <= 12 and r.choices[0].logprobs is None
    again = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=3, temperature=2, top_p=1, n=4, seed=1)
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
    peft_model = get_peft_model(tiny_model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    run = tmp_path / "run"
    peft_model.save_pretrained(run / "adapter")
    (run / "config.json").write_text(json.dumps({"model": {"name": str(base_dir), "quantization": "none", "device": "cpu"}}))
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
