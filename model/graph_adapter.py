"""The graph-conditioned adapter: LLaMA-Adapter's zero-initialised gate, but instead of static learned
prompts the top L decoder layers attend to the GNN's node states of the question's subgraph.

    h_out = h + gate * CrossAttention(RMSNorm(h), node states)       gate initialised to 0

With gate = 0 the model computes exactly what the base computes, so training starts from the plain
model's behaviour. A learned "null" key/value is always attendable, so a question without a subgraph
(all nodes masked) gets a finite output instead of NaNs. Note what a zero gate implies: on the very
first optimiser step only the gate receives a gradient (everything behind it is multiplied by 0);
from the second step on, the attention and the GNN learn too.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class GraphCrossAttention(nn.Module):
    def __init__(self, llm_dim: int, graph_dim: int, dim: int, heads: int, eps: float = 1e-6):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.norm_weight = nn.Parameter(torch.ones(llm_dim))
        self.eps = eps
        self.q = nn.Linear(llm_dim, dim, bias=False)
        self.k = nn.Linear(graph_dim, dim, bias=False)
        self.v = nn.Linear(graph_dim, dim, bias=False)
        self.o = nn.Linear(dim, llm_dim, bias=False)
        self.null_kv = nn.Parameter(torch.randn(2, dim) * 0.02)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, h: torch.Tensor, nodes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """h (B, T, llm_dim); nodes (B, N, graph_dim); mask (B, N) True where a node exists."""
        x = h.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.norm_weight
        b, t, _ = x.shape
        q = self.q(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = torch.cat([self.null_kv[0].expand(b, 1, -1), self.k(nodes.float())], dim=1)
        v = torch.cat([self.null_kv[1].expand(b, 1, -1), self.v(nodes.float())], dim=1)
        k = k.view(b, -1, self.heads, self.head_dim).transpose(1, 2)
        v = v.view(b, -1, self.heads, self.head_dim).transpose(1, 2)
        allowed = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)[:, None, None, :]  # (B,1,1,N+1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        out = self.o(out.transpose(1, 2).reshape(b, t, -1))
        return h + (self.gate * out).to(h.dtype)


class GraphAdapter(nn.Module):
    """Cross-attention blocks for the top `n_layers` decoder layers, applied through forward hooks.

    The node states of the current batch are set with `set_context` before a forward pass or a whole
    `generate` call (every decoding step reuses them) and cleared afterwards.
    """

    def __init__(self, llm_dim: int, graph_dim: int, n_layers: int, dim: int, heads: int, total_layers: int):
        super().__init__()
        if n_layers > total_layers:
            raise ValueError(f"adapter_layers={n_layers} but the model has only {total_layers} decoder layers")
        self.layer_ids = list(range(total_layers - n_layers, total_layers))
        self.blocks = nn.ModuleList(GraphCrossAttention(llm_dim, graph_dim, dim, heads) for _ in self.layer_ids)
        self._context: tuple[torch.Tensor, torch.Tensor] | None = None
        self._handles: list = []

    def set_context(self, nodes: torch.Tensor | None, mask: torch.Tensor | None) -> None:
        self._context = None if nodes is None else (nodes, mask)

    def attach(self, decoder_layers) -> None:
        """Register the hooks on the model's decoder layers (model.model.layers for Llama)."""
        self.detach()
        for block, i in zip(self.blocks, self.layer_ids):
            self._handles.append(decoder_layers[i].register_forward_hook(self._hook(block)))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, block: GraphCrossAttention):
        def hook(module, args, output):
            if self._context is None:
                return output
            nodes, mask = self._context
            if isinstance(output, tuple):
                return (block(output[0], nodes, mask),) + tuple(output[1:])
            return block(output, nodes, mask)

        return hook


def decoder_layers(llm) -> nn.ModuleList:
    """The decoder layer list of a Llama-family model, under PEFT wrappers or not."""
    base = llm
    for attr in ("get_base_model",):
        if hasattr(base, attr):
            base = base.get_base_model()
    inner = getattr(base, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ValueError(f"{type(base).__name__} has no model.layers: the graph adapter supports Llama-family decoders")
    return layers


def lora_parameter_count(hidden: int, intermediate: int, layers: int, vocab: int, r: int, targets: list[str],
                         kv_dim: int | None = None) -> int:
    """LoRA's trainable parameters from a Llama config (A: r x in, B: out x r per target module)."""
    kv = kv_dim or hidden
    shapes = {"q_proj": (hidden, hidden), "k_proj": (hidden, kv), "v_proj": (hidden, kv), "o_proj": (hidden, hidden),
              "gate_proj": (hidden, intermediate), "up_proj": (hidden, intermediate),
              "down_proj": (intermediate, hidden)}
    per_layer = sum(r * (i + o) for name, (i, o) in shapes.items() if name in targets)
    head = r * (hidden + vocab) if "lm_head" in targets else 0
    return per_layer * layers + head


def count_graph_modules(cfg, llm_dim: int, total_layers: int, node_dim: int | None = None,
                        num_relations: int | None = None) -> dict[str, int]:
    """Trainable parameters of the graph modules a GraphPromptConfig builds for an LLM of the given shape,
    counted on the meta device (no memory, no weights). Node features default to the bundled MiniLM's width."""
    from model.gnn import GraphEncoder, SoftTokenProjector
    from model.graph_config import MINILM_WIDTH, NUM_RELATIONS

    node_dim = node_dim or MINILM_WIDTH
    num_relations = num_relations or NUM_RELATIONS

    with torch.device("meta"):
        out = {}
        if cfg.uses_gnn:
            out["gnn"] = sum(p.numel() for p in GraphEncoder(cfg, node_dim, num_relations).parameters())
        if cfg.spec.soft_tokens and cfg.soft_tokens:
            out["projector"] = sum(p.numel() for p in SoftTokenProjector(cfg, node_dim, llm_dim).parameters())
        if cfg.mode == "adapter":
            adapter = GraphAdapter(llm_dim, cfg.gnn_hidden, cfg.adapter_layers, cfg.adapter_dim, cfg.adapter_heads,
                                   total_layers)
            out["adapter"] = sum(p.numel() for p in adapter.parameters())
    return out


# Llama-2-7B's shape (its config.json): what the study trained, used to size our modules without weights.
LLAMA2_7B = {"hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "vocab_size": 32000,
             "num_attention_heads": 32, "num_key_value_heads": 32}


def llama2_7b_report(cfg, model_cfg=None) -> str:
    """The trainable-parameter line of a graph mode's modules on Llama-2-7B, next to the LoRA this run configures
    (model_cfg's rank and target modules; the study's r=32 on every projection and lm_head by default)."""
    from model.config import ModelConfig

    model_cfg = model_cfg or ModelConfig()
    c = LLAMA2_7B
    parts = count_graph_modules(cfg, c["hidden_size"], c["num_hidden_layers"])
    ours = sum(parts.values())
    kv = c["num_key_value_heads"] * (c["hidden_size"] // c["num_attention_heads"])
    lora = lora_parameter_count(c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"],
                                model_cfg.lora_r, list(model_cfg.lora_targets), kv)
    detail = ", ".join(f"{k} {v:,}" for k, v in parts.items())
    both = f"; with its LoRA, {ours + lora:,} in all" if cfg.uses_lora else ""
    return (f"on Llama-2-7B: {cfg.mode} trainable params: {ours:,} ({detail}) vs LoRA r={model_cfg.lora_r} on "
            f"{','.join(model_cfg.lora_targets)}: {lora:,} ({100 * ours / max(lora, 1):.1f}% of it){both}")
