"""GraphLLM: a (4-bit, optionally LoRA-wrapped) causal LM with graph modules around it.

graph mode: a GNN encodes the question's subgraph and a projector turns it into K soft tokens that are
placed right after BOS and before the embedded prompt (as G-Retriever does); attention mask and labels
grow with them (labels -100, so the loss stays on the answer). adapter mode: the GNN's node states
feed zero-gated cross-attention in the top decoder layers (model.graph_adapter). A row whose question
has no subgraph gets neither: it is the plain model on the plain prompt.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutputWithPast

from model.gnn import GraphEncoder, SoftTokenProjector, link_prediction_loss
from model.graph_adapter import GraphAdapter, decoder_layers
from model.graph_config import GraphPromptConfig
from model.trainable import TrainableLM
from model.weight_files import ADAPTER_CONFIG, GRAPH_CONFIG, GRAPH_FILES, GRAPH_WEIGHTS

log = logging.getLogger(__name__)
GRAPH_KEYS = ("graph_x", "graph_edge_index", "graph_edge_attr", "graph_edge_type", "graph_batch", "graph_question",
              "has_graph")


def collate_graphs(graphs: list, node_dim: int) -> dict[str, torch.Tensor]:
    """PyG Data objects (None for a question without a subgraph) -> one disjoint-union batch as plain
    tensors (so Trainer moves them to the device like any other input). A missing graph becomes a
    single zero node that `has_graph` masks out everywhere."""
    xs, eis, eas, ets, batch, qs, has = [], [], [], [], [], [], []
    offset = 0
    for i, g in enumerate(graphs):
        if g is None or g.num_nodes == 0:
            x = torch.zeros((1, node_dim))
            ei = torch.zeros((2, 0), dtype=torch.long)
            ea = torch.zeros((0, node_dim))
            et = torch.zeros((0,), dtype=torch.long)
            q = torch.zeros((1, node_dim))
            has.append(False)
        else:
            x, ei, ea, et, q = g.x, g.edge_index, g.edge_attr, g.edge_type, g.question
            has.append(True)
        xs.append(x.float())
        eis.append(ei + offset)
        eas.append(ea.float())
        ets.append(et)
        qs.append(q.float().reshape(1, -1))
        batch.append(torch.full((x.shape[0],), i, dtype=torch.long))
        offset += x.shape[0]
    return {
        "graph_x": torch.cat(xs), "graph_edge_index": torch.cat(eis, dim=1), "graph_edge_attr": torch.cat(eas),
        "graph_edge_type": torch.cat(ets), "graph_batch": torch.cat(batch), "graph_question": torch.cat(qs),
        "has_graph": torch.tensor(has, dtype=torch.bool),
    }


class GraphLLM(TrainableLM):
    returns_new_tokens_only = True  # generate() returns the generated tokens without the prompt

    def __init__(self, llm, cfg: GraphPromptConfig, node_dim: int, num_relations: int, bos_token_id: int | None):
        super().__init__(llm)
        if cfg.mode not in ("graph", "adapter"):
            raise ValueError(f"GraphLLM is for the graph and adapter modes, not {cfg.mode!r}")
        self.cfg = cfg
        self.node_dim, self.num_relations, self.bos_token_id = node_dim, num_relations, bos_token_id
        conf = llm.config
        self.encoder = GraphEncoder(cfg, node_dim, num_relations) if cfg.uses_gnn else None
        with_tokens = cfg.mode == "graph" and cfg.soft_tokens
        self.projector = SoftTokenProjector(cfg, node_dim, conf.hidden_size) if with_tokens else None
        self.adapter = None
        if cfg.mode == "adapter":
            self.adapter = GraphAdapter(conf.hidden_size, cfg.gnn_hidden, cfg.adapter_layers, cfg.adapter_dim,
                                        cfg.adapter_heads, conf.num_hidden_layers)
            self.adapter.attach(decoder_layers(llm))
        device = next(llm.parameters()).device
        for m in self.graph_modules().values():
            m.to(device)

    def graph_modules(self) -> dict[str, nn.Module]:
        return {k: m for k, m in (("encoder", self.encoder), ("projector", self.projector),
                                  ("adapter", self.adapter)) if m is not None}

    def graph_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.graph_modules().values() for p in m.parameters()]

    # --- graph encoding and splicing --------------------------------------------------------------
    def _encode(self, g: dict[str, torch.Tensor]):
        nodes = self.encoder(g["graph_x"], g["graph_edge_index"], g["graph_edge_attr"], g["graph_edge_type"])
        return nodes

    def _soft_tokens(self, nodes, g) -> torch.Tensor:
        return self.projector(nodes, g["graph_batch"], g["graph_question"], len(g["has_graph"]))

    def _set_adapter_context(self, nodes, g) -> None:
        from torch_geometric.utils import to_dense_batch

        dense, mask = to_dense_batch(nodes, g["graph_batch"], batch_size=len(g["has_graph"]))
        self.adapter.set_context(dense, mask & g["has_graph"][:, None])

    def _splice(self, input_ids, attention_mask, labels, tokens, has_graph, left_pad: bool):
        """Embed the prompt and insert each row's soft tokens after its BOS (or first token position when
        the tokenizer adds no BOS); re-pad the rows to one width on the side given."""
        emb_layer = self.llm.get_input_embeddings()
        embeds = emb_layer(input_ids)
        rows, masks, labs = [], [], []
        for i in range(input_ids.shape[0]):
            keep = attention_mask[i].bool()
            e, ids = embeds[i][keep], input_ids[i][keep]
            lab = labels[i][keep] if labels is not None else None
            if tokens is not None and bool(has_graph[i]):
                at = 1 if (self.bos_token_id is not None and len(ids) and int(ids[0]) == self.bos_token_id) else 0
                t = tokens[i].to(e.dtype)
                e = torch.cat([e[:at], t, e[at:]])
                if lab is not None:
                    lab = torch.cat([lab[:at], torch.full((t.shape[0],), -100, dtype=lab.dtype, device=lab.device),
                                     lab[at:]])
            rows.append(e)
            masks.append(torch.ones(e.shape[0], dtype=attention_mask.dtype, device=e.device))
            labs.append(lab)
        width = max(r.shape[0] for r in rows)
        out_e = embeds.new_zeros((len(rows), width, embeds.shape[-1]))
        out_m = attention_mask.new_zeros((len(rows), width))
        out_l = None if labels is None else labels.new_full((len(rows), width), -100)
        for i, (e, m) in enumerate(zip(rows, masks)):
            sl = slice(width - e.shape[0], width) if left_pad else slice(0, e.shape[0])
            out_e[i, sl] = e
            out_m[i, sl] = m
            if out_l is not None:
                out_l[i, sl] = labs[i]
        return out_e, out_m, out_l

    def _prepare(self, input_ids, attention_mask, labels, g, left_pad: bool):
        tokens, nodes = None, None
        if self.encoder is not None and g is not None:
            nodes = self._encode(g)
            if self.projector is not None:
                tokens = self._soft_tokens(nodes, g)
            if self.adapter is not None:
                self._set_adapter_context(nodes, g)
        has = g["has_graph"] if g is not None else torch.zeros(input_ids.shape[0], dtype=torch.bool)
        embeds, mask, labels = self._splice(input_ids, attention_mask, labels, tokens, has, left_pad)
        return embeds, mask, labels, nodes

    def forward(self, input_ids, attention_mask, labels=None, num_items_in_batch=None, **graph):
        g = {k: graph[k] for k in GRAPH_KEYS} if graph.get("graph_x") is not None else None
        try:
            embeds, mask, labels, nodes = self._prepare(input_ids, attention_mask, labels, g, left_pad=False)
            if labels is None:
                return self.llm(inputs_embeds=embeds, attention_mask=mask, use_cache=False)
            loss, n_tokens = self._loss(labels, mask, num_items_in_batch, inputs_embeds=embeds)
        finally:
            if self.adapter is not None:
                self.adapter.set_context(None, None)
        if self.cfg.link_loss_weight > 0 and nodes is not None:
            real = g["has_graph"][g["graph_batch"]]
            keep_edges = real[g["graph_edge_index"][0]]
            lp = link_prediction_loss(nodes, g["graph_edge_index"][:, keep_edges], g["graph_batch"])
            # a per-batch mean: weighted by this batch's share of the accumulated answer tokens, like the loss
            share = 1.0 if num_items_in_batch is None else n_tokens / max(float(num_items_in_batch), 1.0)
            loss = loss + self.cfg.link_loss_weight * lp * share
        return CausalLMOutputWithPast(loss=loss)

    @torch.inference_mode()
    def generate(self, input_ids, attention_mask, graphs: list | None = None, **kwargs):
        """Left-padded prompts + their graphs -> generated token ids only (not the prompt)."""
        g = None
        if graphs is not None:
            g = {k: v.to(self.device) for k, v in collate_graphs(graphs, self.node_dim).items()}
        try:
            embeds, mask, _, _ = self._prepare(input_ids, attention_mask, None, g, left_pad=True)
            return self.llm.generate(inputs_embeds=embeds, attention_mask=mask, **kwargs)
        finally:
            if self.adapter is not None:
                self.adapter.set_context(None, None)

    # --- saving and loading -------------------------------------------------------------------------
    def save_trainable(self, out_dir: str | Path) -> None:
        """PEFT adapter (when the LLM is LoRA-wrapped), graph-module weights and their config."""
        from safetensors.torch import save_file

        out = Path(out_dir)
        super().save_trainable(out)
        state = {f"{name}.{k}": v.detach().contiguous().cpu()
                 for name, m in self.graph_modules().items() for k, v in m.state_dict().items()}
        save_file(state, out / GRAPH_WEIGHTS)
        meta = {"graph": self.cfg.to_dict(), "node_dim": self.node_dim, "num_relations": self.num_relations}
        (out / GRAPH_CONFIG).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")

    def load_trainable(self, in_dir: str | Path, with_peft: bool = True) -> None:
        """Restore graph modules (and, with_peft, the LoRA weights) from a checkpoint or adapter folder."""
        from safetensors.torch import load_file

        src = Path(in_dir)
        if with_peft:
            super().load_trainable(src)
        state = load_file(str(src / GRAPH_WEIGHTS))
        for name, m in self.graph_modules().items():
            part = {k.split(".", 1)[1]: v for k, v in state.items() if k.split(".", 1)[0] == name}
            m.load_state_dict(part)

    def saved_files(self) -> tuple[str, ...]:
        return super().saved_files() + GRAPH_FILES


def load_graph_llm(base_model, tokenizer, weights_dir: str | Path) -> GraphLLM:
    """Rebuild a trained GraphLLM on a freshly loaded base model from a run's `adapter/` folder."""
    from model.weight_files import AdapterNotFoundError, check_weights

    src = Path(weights_dir)
    try:
        check_weights(src, GRAPH_FILES)
    except AdapterNotFoundError as exc:
        raise AdapterNotFoundError(f"No graph modules at {src}: {exc}") from None
    meta = json.loads((src / GRAPH_CONFIG).read_text())
    cfg = GraphPromptConfig(**meta["graph"])
    llm = base_model
    if (src / ADAPTER_CONFIG).exists():
        from peft import PeftModel

        llm = PeftModel.from_pretrained(base_model, src)
    model = GraphLLM(llm, cfg, meta["node_dim"], meta["num_relations"], tokenizer.bos_token_id)
    model.load_trainable(src, with_peft=False)  # PeftModel.from_pretrained has loaded the LoRA weights already
    return model.eval()
