"""Training that does not depend on what ran before it, a loss over the answer only, and adapters that hold
only what trained. On a real bitsandbytes NF4 model (a tiny random Llama quantised by bitsandbytes)."""
import copy
import warnings

import pytest
import torch

from model.config import ModelConfig
from model.graph_config import GraphPromptConfig
from model.load import attach_lora, prepare_4bit
from model.quant import autograd_fallback_is_an_error, packed_layers
from model.trainable import TrainableLM

NODE_DIM = 16


def tiny_4bit(tokenizer, tmp_path, tied=False, guard=True):
    """A 2-layer Llama (widths that bitsandbytes' CPU packing accepts) saved and reloaded in NF4."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=tied, bos_token_id=tokenizer.bos_token_id,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path / "tiny")
    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "tiny", quantization_config=q, dtype=torch.bfloat16,
                                                 device_map={"": "cpu"})
    if guard:
        return prepare_4bit(model)
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def graph(n_nodes=4, seed=0):
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(seed)
    src = torch.arange(n_nodes - 1)
    return Data(x=torch.randn(n_nodes, NODE_DIM, generator=g), edge_index=torch.stack([src, src + 1]),
                edge_attr=torch.randn(n_nodes - 1, NODE_DIM, generator=g), edge_type=torch.arange(n_nodes - 1) % 8,
                question=torch.randn(1, NODE_DIM, generator=g), num_nodes=n_nodes)


def batch(tokenizer, with_graphs: bool):
    from model.graph_model import collate_graphs
    from training.sft import PadCollator

    rows = []
    for q, a in (("What is a heap?", "A tree with the heap property."),
                 ("Why normalise inputs?", "So steps are even.")):
        p = tokenizer(f"### Question:\n{q}\n\n### Answer and Explanation:\n")["input_ids"]
        ans = tokenizer(a, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append({"input_ids": p + ans, "labels": [-100] * len(p) + ans})
    b = PadCollator(tokenizer.pad_token_id)(rows)
    if with_graphs:
        b.update(collate_graphs([graph(), graph(5, 1)], NODE_DIM))
    return b


def build(mode, tokenizer, tmp_path, guard=True):
    base = tiny_4bit(tokenizer, tmp_path, guard=guard)
    torch.manual_seed(3)
    if mode == "lora":
        return TrainableLM(attach_lora(base, ModelConfig(lora_r=4, lora_alpha=8)))
    from model.graph_model import GraphLLM

    cfg = GraphPromptConfig(mode=mode, gnn_hidden=16, gnn_heads=2, projector_hidden=24, adapter_layers=2,
                            adapter_dim=8, adapter_heads=2, soft_tokens=2)
    llm = attach_lora(base, ModelConfig(lora_r=4, lora_alpha=8)) if cfg.uses_lora else base
    model = GraphLLM(llm, cfg, NODE_DIM, 8, tokenizer.bos_token_id)
    if mode == "adapter":  # open the zero gate, so the attention and GNN get a gradient on this very step
        with torch.no_grad():
            for name, p in model.adapter.named_parameters():
                if "gate" in name:
                    p.fill_(0.5)
    return model


def grads(model, b):
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)  # the same LoRA dropout masks every time
    with autograd_fallback_is_an_error():
        model(**b).loss.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def generate_once(model, tokenizer, with_graphs):
    from model.generate import GenerationSettings, generate_answers

    prompts = [tokenizer("### Question:\nWhat is a stack?\n\n### Answer and Explanation:\n")["input_ids"]]
    generate_answers(model, tokenizer, prompts, GenerationSettings(max_new_tokens=6, batch_size=1), [],
                     graphs=[graph()] if with_graphs else None)


def has_cpu_packing() -> bool:
    import bitsandbytes.functional as bf

    return bool(bf.has_avx512bf16())


@pytest.mark.parametrize("mode,owners", [
    ("lora", ("lora_",)),
    ("graph", ("lora_", "encoder.", "projector.")),
    ("adapter", ("encoder.", "adapter.")),
])
def test_gradients_after_a_generation_equal_those_before(mode, owners, tokenizer, tmp_path):
    with_graphs = mode != "lora"
    model = build(mode, tokenizer, tmp_path)
    b = batch(tokenizer, with_graphs)
    before = grads(model, b)
    generate_once(model, tokenizer, with_graphs)
    if has_cpu_packing():
        assert packed_layers(model) > 0, "generation should have used bitsandbytes' packed CPU layout"
    after = grads(model, b)
    for prefix in owners:
        names = [n for n in before if prefix in n]
        assert names, f"no gradient reached any {prefix} parameter"
    assert set(before) == set(after)
    for n in before:
        torch.testing.assert_close(after[n], before[n], rtol=1e-2, atol=1e-6, msg=f"{n} changed after generation")


@pytest.mark.skipif(not has_cpu_packing(), reason="this CPU has no AVX-512 BF16: bitsandbytes never packs here")
def test_without_the_guard_a_backward_through_the_packed_layout_is_an_error(tokenizer, tmp_path):
    """What the guard prevents: bitsandbytes' packed layout has no backward, and inside training that is an
    error, not torch's "may lead to silently incorrect behavior" warning."""
    model = build("lora", tokenizer, tmp_path, guard=False)
    b = batch(tokenizer, False)
    grads(model, b)
    generate_once(model, tokenizer, False)
    assert packed_layers(model) > 0
    with pytest.raises(UserWarning, match="autograd kernel was not registered"):
        grads(model, b)


def test_answer_only_loss_equals_the_models_own_loss(tokenizer, tiny_model):
    peft = attach_lora(tiny_model, ModelConfig(lora_r=4, lora_alpha=8, lora_dropout=0.0))
    model = TrainableLM(peft).eval()
    b = batch(tokenizer, False)
    ours = model(**b).loss
    theirs = peft(**b).loss
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    n = int((b["labels"][:, 1:] != -100).sum())
    # with Trainer's token count over an accumulated batch, the sum is divided by that count instead
    torch.testing.assert_close(model(**b, num_items_in_batch=2 * n).loss, theirs / 2, rtol=1e-5, atol=1e-6)


def test_a_tied_head_gets_no_lora_and_the_adapter_holds_only_what_trained(tokenizer, tmp_path):
    from safetensors.torch import load_file

    from model.load import load_adapter

    base = tiny_4bit(tokenizer, tmp_path, tied=True)
    reload_base = copy.deepcopy(base)
    with warnings.catch_warnings():
        # peft warns about a tied layer in the adapter, or about saving the embedding
        warnings.filterwarnings("error", message=".*(tie|tied|embedding).*")
        model = TrainableLM(attach_lora(base, ModelConfig(lora_r=4, lora_alpha=8)))
        for n, p in model.named_parameters():
            if "lora_B" in n:
                torch.nn.init.normal_(p, std=0.2)
        model.save_trainable(tmp_path / "adapter")
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and not [n for n in trained if "lm_head" in n or "embed" in n]
    saved = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    assert saved and all("lora" in k for k in saved), [k for k in saved if "lora" not in k]
    assert sum(v.numel() for v in saved.values()) == sum(p.numel() for p in model.parameters() if p.requires_grad)
    x = torch.randint(0, len(tokenizer), (1, 9))
    model.eval()
    with torch.no_grad():
        want = model(input_ids=x, attention_mask=torch.ones_like(x)).logits
        got = load_adapter(reload_base, tmp_path / "adapter").eval()(input_ids=x).logits
    torch.testing.assert_close(got, want)


def test_an_untied_head_keeps_the_studys_lora(tokenizer, tmp_path):
    model = attach_lora(tiny_4bit(tokenizer, tmp_path, tied=False), ModelConfig(lora_r=4, lora_alpha=8))
    assert any("lm_head.lora_A" in n for n, p in model.named_parameters() if p.requires_grad)
