"""Graph prompting on tiny random Llamas and tiny graphs: soft-token splicing, the zero-initialised
adapter, what one training step changes, save/load, generation and the empty-subgraph fallback."""
import copy

import pytest
import torch

from model.graph_config import GraphPromptConfig

NODE_DIM = 16


def tiny_graph(n_nodes: int = 4, seed: int = 0):
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(seed)
    src = torch.arange(n_nodes - 1)
    return Data(
        x=torch.randn(n_nodes, NODE_DIM, generator=g),
        edge_index=torch.stack([src, src + 1]),
        edge_attr=torch.randn(n_nodes - 1, NODE_DIM, generator=g),
        edge_type=torch.arange(n_nodes - 1) % 8,
        question=torch.randn(1, NODE_DIM, generator=g),
        num_nodes=n_nodes,
    )


def small_cfg(**kw) -> GraphPromptConfig:
    base = dict(gnn_hidden=16, gnn_heads=2, projector_hidden=24, adapter_layers=1, adapter_dim=8, adapter_heads=2,
                soft_tokens=3)
    base.update(kw)
    return GraphPromptConfig(**base)


def batch_inputs(tokenizer, texts, graphs):
    from model.graph_model import collate_graphs

    enc = [tokenizer(t)["input_ids"] for t in texts]
    width = max(map(len, enc))
    ids = torch.full((len(enc), width), tokenizer.pad_token_id)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(enc):
        ids[i, : len(e)] = torch.tensor(e)
        mask[i, : len(e)] = 1
    labels = torch.where(mask.bool(), ids, torch.full_like(ids, -100))
    return dict(input_ids=ids, attention_mask=mask, labels=labels, **collate_graphs(graphs, NODE_DIM))


def make(tiny_model, tokenizer, cfg):
    from model.graph_model import GraphLLM

    torch.manual_seed(1)
    return GraphLLM(tiny_model, cfg, NODE_DIM, 8, tokenizer.bos_token_id)


def test_soft_tokens_are_spliced_after_bos_with_mask_and_labels(tiny_model, tokenizer):
    model = make(tiny_model, tokenizer, small_cfg(mode="graph"))
    b = batch_inputs(tokenizer, ["What is a hash map?", "Define entropy please now"], [tiny_graph(), None])
    g = {k: b[k] for k in b if k.startswith("graph_") or k == "has_graph"}
    embeds, mask, labels, _ = model._prepare(b["input_ids"], b["attention_mask"], b["labels"], g, left_pad=False)
    n0, n1 = int(b["attention_mask"][0].sum()), int(b["attention_mask"][1].sum())
    assert mask[0].sum() == n0 + 3 and mask[1].sum() == n1  # the row without a graph gets no tokens
    at = 1 if b["input_ids"][0, 0] == tokenizer.bos_token_id else 0
    assert (labels[0, at : at + 3] == -100).all()
    assert labels[0, at + 3] == b["labels"][0, at]  # the prompt continues after the soft tokens
    emb = tiny_model.get_input_embeddings()
    assert torch.equal(embeds[1, :n1], emb(b["input_ids"][1, :n1]))
    tokens = model._soft_tokens(model._encode(g), g)
    assert torch.allclose(embeds[0, at : at + 3], tokens[0])


def test_adapter_starts_as_the_base_model(tiny_model, tokenizer):
    base = copy.deepcopy(tiny_model)
    model = make(tiny_model, tokenizer, small_cfg(mode="adapter", adapter_layers=2))
    b = batch_inputs(tokenizer, ["What is overfitting?", "Explain TCP"], [tiny_graph(), tiny_graph(5, 1)])
    with torch.no_grad():
        ours = model(**{k: v for k, v in b.items() if k != "labels"}).logits
        theirs = base(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    keep = b["attention_mask"].bool()
    assert torch.equal(ours[keep], theirs[keep])
    with torch.no_grad():  # and the adapter is really in the computation: an open gate changes the logits
        for blk in model.adapter.blocks:
            blk.gate.fill_(0.5)
        opened = model(**{k: v for k, v in b.items() if k != "labels"}).logits
    assert not torch.allclose(opened[keep], theirs[keep])


def _train_steps(model, b, steps, lr=1e-2):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(**b).loss.backward()
        opt.step()


def test_one_step_moves_graph_modules_not_the_frozen_base(tiny_model, tokenizer):
    for p in tiny_model.parameters():
        p.requires_grad_(False)
    model = make(tiny_model, tokenizer, small_cfg(mode="graph", lora=False, link_loss_weight=0.5))
    b = batch_inputs(tokenizer, ["What is a heap?", "Why normalise?"], [tiny_graph(), tiny_graph(6, 2)])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _train_steps(model, b, 1)
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    graph_names = {n for n, _ in model.named_parameters() if n.startswith(("encoder.", "projector."))}
    base_names = {n for n, _ in model.named_parameters() if n.startswith("llm.")}
    assert graph_names <= changed, sorted(graph_names - changed)
    assert not (base_names & changed)


def test_adapter_gate_moves_first_then_everything_behind_it(tiny_model, tokenizer):
    for p in tiny_model.parameters():
        p.requires_grad_(False)
    model = make(tiny_model, tokenizer, small_cfg(mode="adapter", adapter_layers=2))
    b = batch_inputs(tokenizer, ["What is a heap?", "Why normalise?"], [tiny_graph(), tiny_graph(6, 2)])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _train_steps(model, b, 1)
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert {n for n in before if n.endswith(".gate")} <= changed
    assert not any(n.startswith("llm.") for n in changed)
    _train_steps(model, b, 1)
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    # null_kv and the final RMSNorm weight aside, every adapter and GNN weight has moved after two steps
    assert {n for n in trainable if n.startswith("encoder.") and "relation" not in n} <= changed
    assert {n for n in trainable
            if n.startswith("adapter.") and (".q." in n or ".k." in n or ".v." in n or ".o." in n)} <= changed
    assert not any(n.startswith("llm.") for n in changed)


@pytest.mark.parametrize("kind", ["gat", "transformer", "gcn"])
@pytest.mark.parametrize("pooling", ["attention", "mean"])
def test_every_gnn_and_pooling_trains_and_generates(tiny_model, tokenizer, kind, pooling):
    from model.generate import GenerationSettings, generate_answers

    model = make(tiny_model, tokenizer, small_cfg(mode="graph", gnn=kind, pooling=pooling, lora=False))
    b = batch_inputs(tokenizer, ["What is a heap?", "Why normalise?"], [tiny_graph(), tiny_graph(3, 4)])
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    _train_steps(model, b, 1)
    moved = {n for n, p in model.named_parameters() if n in before and not torch.equal(before[n], p)}
    # the GNN's input and message-passing weights and the projector to soft tokens learn; edge features only
    # where the GNN reads them (not GCN), the question-aware pooling only when it is used
    required = {n for n in before if n.endswith("weight") and n.startswith(("encoder.node_in", "encoder.convs.",
                                                                           "projector.mlp."))}
    if kind != "gcn":
        required.add("encoder.edge_in.weight")
    if pooling == "attention":
        required |= {n for n in before if n.startswith("projector.question")}
    assert len(required) >= 5 and required <= moved, sorted(required - moved)
    prompts = [tokenizer("Question one?")["input_ids"], tokenizer("A longer second question here?")["input_ids"]]
    gens = generate_answers(model, tokenizer, prompts, GenerationSettings(max_new_tokens=5, batch_size=2), [],
                            graphs=[tiny_graph(), None])
    assert len(gens) == 2 and all(0 < g.new_tokens <= 5 for g in gens)


def test_graph_with_empty_row_generates_like_the_plain_model(tiny_model, tokenizer):
    """A question without a subgraph must get exactly the plain model's answer (fallback, nothing invented)."""
    from model.generate import GenerationSettings, generate_answers

    base = copy.deepcopy(tiny_model)
    model = make(tiny_model, tokenizer, small_cfg(mode="graph", lora=False))
    prompts = [tokenizer("What is a Bloom filter?")["input_ids"]]
    s = GenerationSettings(max_new_tokens=8, batch_size=1)
    ours = generate_answers(model, tokenizer, prompts, s, [], graphs=[None])
    plain = generate_answers(base, tokenizer, prompts, s, [])
    assert ours[0].raw_text == plain[0].raw_text


def test_save_and_load_restore_graph_modules_and_lora(tiny_model, tokenizer, tmp_path):
    from peft import LoraConfig, get_peft_model

    from model.graph_model import load_graph_llm

    fresh = copy.deepcopy(tiny_model)
    llm = get_peft_model(tiny_model,
                         LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    cfg = small_cfg(mode="graph")
    model = make(llm, tokenizer, cfg)
    b = batch_inputs(tokenizer, ["What is a heap?"], [tiny_graph()])
    _train_steps(model, b, 2)
    model.eval()
    model.save_trainable(tmp_path)
    assert all((tmp_path / f).exists() for f in cfg.spec.files(cfg))
    loaded = load_graph_llm(fresh, tokenizer, tmp_path)
    feed = {k: v for k, v in b.items() if k != "labels"}
    with torch.no_grad():
        assert torch.allclose(model(**feed).logits, loaded(**feed).logits, atol=1e-5)


def test_parameter_counts_on_llama2_7b_stay_far_below_the_study_lora():
    from model.graph_adapter import LLAMA2_7B, count_graph_modules, lora_parameter_count
    from model.config import STUDY_LORA_TARGETS

    c = LLAMA2_7B
    lora = lora_parameter_count(c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"], 32,
                                STUDY_LORA_TARGETS)
    assert 80_000_000 < lora < 82_000_000  # the study printed 81M trainable for its LoRA
    adapter = count_graph_modules(GraphPromptConfig(mode="adapter"), c["hidden_size"], c["num_hidden_layers"])
    per_block = 4096 * 128 + 2 * 256 * 128 + 128 * 4096 + 4096 + 2 * 128 + 1
    assert adapter["adapter"] == 8 * per_block
    assert sum(adapter.values()) < 81_000_000 / 5


def test_lora_count_formula_matches_peft_on_a_tiny_model(tiny_model):
    from peft import LoraConfig, get_peft_model

    from model.config import STUDY_LORA_TARGETS
    from model.graph_adapter import lora_parameter_count

    c = tiny_model.config
    peft_model = get_peft_model(tiny_model,
                                LoraConfig(r=4, lora_alpha=8, target_modules=STUDY_LORA_TARGETS, task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    kv = c.num_key_value_heads * (c.hidden_size // c.num_attention_heads)
    assert trainable == lora_parameter_count(c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.vocab_size, 4,
                                             STUDY_LORA_TARGETS, kv)


def test_config_rejects_conflicts_all_at_once():
    with pytest.raises(ValueError) as err:
        GraphPromptConfig(mode="graphs", gnn="gin", pooling="max")
    msg = str(err.value)
    assert "mode" in msg and "gnn" in msg and "pooling" in msg
    assert GraphPromptConfig(mode="graph").uses_text and GraphPromptConfig(mode="graph").uses_gnn
    assert not GraphPromptConfig(mode="adapter").uses_text and GraphPromptConfig(mode="adapter").uses_gnn
    assert GraphPromptConfig(mode="graph-text").uses_text and not GraphPromptConfig(mode="graph-text").uses_gnn


def test_on_a_4bit_base_one_step_moves_lora_and_graph_modules_but_not_the_quantised_weights(
    tiny_model, tokenizer, tmp_path
):
    """The same checks on a real bitsandbytes NF4 model (the tiny Llama saved and reloaded in 4-bit)."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from model.config import ModelConfig
    from model.load import attach_lora

    tiny_model.save_pretrained(tmp_path / "tiny")
    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.bfloat16)
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "tiny", quantization_config=q, dtype=torch.bfloat16,
                                                device_map={"": "cpu"})
    assert base.is_loaded_in_4bit
    llm = attach_lora(base, ModelConfig(lora_r=4, lora_alpha=8))
    model = make(llm, tokenizer, small_cfg(mode="graph"))
    b = batch_inputs(tokenizer, ["What is a heap?", "Why normalise?"], [tiny_graph(), tiny_graph(6, 2)])
    packed = {n: p.detach().clone() for n, p in model.named_parameters() if p.__class__.__name__ == "Params4bit"}
    assert packed, "no 4-bit weights found"
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    _train_steps(model, b, 1, lr=1e-3)
    params = dict(model.named_parameters())
    assert all(torch.equal(packed[n], params[n]) for n in packed)
    moved = {n for n in before if not torch.equal(before[n], params[n])}
    assert any("lora_" in n for n in moved)
    assert {n for n in before if n.startswith(("encoder.", "projector."))} <= moved
