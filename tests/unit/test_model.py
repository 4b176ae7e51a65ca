import pytest
import torch

from model.config import ModelConfig
from model.generate import GenerationSettings, classify_stop, generate_answers
from model.load import attach_lora, count_parameters, load_adapter, trainable_report, AdapterNotFoundError
from model.resolve import ModelNotFoundError, resolve_model


def test_lora_defaults_are_the_studys():
    cfg = ModelConfig()
    assert (cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout) == (32, 64, 0.05)
    assert cfg.lora_targets == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head"]


def test_lora_on_tiny_model_counts_like_peft(tiny_model):
    cfg = ModelConfig(lora_r=4, lora_alpha=8)
    m = attach_lora(tiny_model, cfg)
    trainable, total = count_parameters(m)
    expected_t = sum(p.numel() for p in m.parameters() if p.requires_grad)
    assert trainable == expected_t and total == sum(p.numel() for p in m.parameters())
    line = trainable_report(m)
    assert line.startswith(f"trainable params: {trainable} || all params: {total} || trainable%: ")
    names = {n for n, p in m.named_parameters() if p.requires_grad}
    assert any("lm_head.lora_A" in n for n in names) and any("gate_proj.lora_B" in n for n in names)


def test_adapter_save_and_reload_roundtrip(tiny_model, tmp_path):
    import copy

    base = copy.deepcopy(tiny_model)
    m = attach_lora(tiny_model, ModelConfig(lora_r=4, lora_alpha=8))
    for n, p in m.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.5)
    m.save_pretrained(tmp_path / "adapter")
    x = torch.randint(0, 1000, (1, 9))
    m.eval()
    want = m(input_ids=x).logits
    got = load_adapter(base, tmp_path / "adapter").eval()(input_ids=x).logits
    torch.testing.assert_close(got, want)


def test_missing_adapter_is_a_clear_error(tiny_model, tmp_path):
    with pytest.raises(AdapterNotFoundError, match="No adapter at"):
        load_adapter(tiny_model, tmp_path / "nothing")


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="never downloads"):
        resolve_model("no-such-org/no-such-model-xyz", cache_dir=str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(str(tmp_path / "x.gguf"))


def test_classify_stop():
    assert classify_stop([5, 2], "An answer.", {2}, ["### Question"], 10) == ("An answer.", "eos")
    assert classify_stop([5] * 10, "A.\n\n### Question: more", {2}, ["### Question"], 10) == ("A.", "stop_string")
    assert classify_stop([5] * 10, "A rambling", {2}, ["### Question"], 10) == ("A rambling", "length")


def test_batched_generation_matches_one_by_one(tiny_model, tokenizer):
    prompts = [tokenizer("short one")["input_ids"], tokenizer("a somewhat longer prompt with more tokens")["input_ids"],
               tokenizer("mid length prompt")["input_ids"]]
    s = GenerationSettings(max_new_tokens=6, batch_size=3)
    batched = generate_answers(tiny_model, tokenizer, prompts, s, [])
    single = [generate_answers(tiny_model, tokenizer, [p],
                               GenerationSettings(max_new_tokens=6, batch_size=1), [])[0] for p in prompts]
    assert [g.raw_text for g in batched] == [g.raw_text for g in single]
    assert all(g.stop_reason in ("length", "eos") for g in batched)


def test_answer_no_repeat_ngram_ignores_the_prompt_and_bans_repeats_in_the_answer():
    from model.generate import AnswerNoRepeatNGram

    proc = AnswerNoRepeatNGram(3)
    prompt = torch.tensor([[7, 8, 9, 7, 8]])  # the prompt repeats "7 8": copying it stays allowed
    scores = proc(prompt, torch.zeros(1, 12))
    assert torch.isfinite(scores).all()
    # the answer so far: 1 2 3 1 2 -> "1 2" was followed by 3 once, so 3 is banned now, nothing else
    ids = torch.cat([prompt, torch.tensor([[1, 2, 3, 1, 2]])], dim=1)
    scores = proc(ids, torch.zeros(1, 12))
    assert torch.isinf(scores[0, 3]) and torch.isfinite(scores[0, [i for i in range(12) if i != 3]]).all()
    with pytest.raises(ValueError):
        AnswerNoRepeatNGram(1)


def test_generation_with_the_ngram_ban_never_repeats_an_ngram(tiny_model, tokenizer):
    from transformers import LogitsProcessorList

    from model.generate import AnswerNoRepeatNGram

    with torch.no_grad():  # a model that loops: one token is always the likeliest
        tiny_model.lm_head.weight.mul_(0.01)
        tiny_model.lm_head.weight[5] += 1.0
    x = torch.tensor([tokenizer("a prompt")["input_ids"]])

    def answer(processors):
        out = tiny_model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=30, do_sample=False,
                                  logits_processor=processors, pad_token_id=tokenizer.pad_token_id, eos_token_id=None)
        ids = out[0, x.shape[1]:].tolist()
        return [tuple(ids[i:i + 3]) for i in range(len(ids) - 2)]

    looping = answer(LogitsProcessorList())
    assert len(set(looping)) < len(looping)
    grams = answer(LogitsProcessorList([AnswerNoRepeatNGram(3)]))
    assert len(grams) == 28 and len(set(grams)) == len(grams)
