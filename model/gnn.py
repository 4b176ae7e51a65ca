"""The graph side of graph prompting: a GNN over a subgraph's node text embeddings, pooling into K
soft tokens in the LLM's embedding space, and GNP's link-prediction auxiliary loss.

Tensors in, tensors out; the subgraph -> PyG `Data` conversion lives in kg.textualize.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from model.graph_config import GraphPromptConfig


class GraphEncoder(nn.Module):
    """Node text embeddings -> node states, with relation-typed edge features.

    Each triple is used in both directions (a reverse edge gets its own relation embedding), so a node
    hears from its heads and its tails. Edge features are the edge text embedding plus a learned
    relation-type embedding; GCN has no edge features, so it sees only the structure.
    """

    def __init__(self, cfg: GraphPromptConfig, in_dim: int, num_relations: int):
        super().__init__()
        from torch_geometric.nn import GATConv, GCNConv, TransformerConv

        h = cfg.gnn_hidden
        self.kind = cfg.gnn
        self.num_relations = num_relations
        self.node_in = nn.Linear(in_dim, h)
        self.edge_in = nn.Linear(in_dim, h)
        self.relation = nn.Embedding(2 * num_relations, h)
        self.convs = nn.ModuleList()
        for _ in range(cfg.gnn_layers):
            if cfg.gnn == "gat":
                conv = GATConv(h, h // cfg.gnn_heads, heads=cfg.gnn_heads, edge_dim=h, add_self_loops=True)
            elif cfg.gnn == "transformer":
                conv = TransformerConv(h, h // cfg.gnn_heads, heads=cfg.gnn_heads, edge_dim=h)
            else:
                conv = GCNConv(h, h)
            self.convs.append(conv)
        self.norms = nn.ModuleList(nn.LayerNorm(h) for _ in range(cfg.gnn_layers))
        self.dropout = cfg.gnn_dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
                edge_type: torch.Tensor) -> torch.Tensor:
        rev = edge_index.flip(0)
        ei = torch.cat([edge_index, rev], dim=1)
        ea = torch.cat([edge_attr, edge_attr], dim=0)
        et = torch.cat([edge_type, edge_type + self.num_relations], dim=0)
        e = self.edge_in(ea) + self.relation(et)
        h = self.node_in(x)
        for conv, norm in zip(self.convs, self.norms):
            msg = conv(h, ei) if self.kind == "gcn" else conv(h, ei, edge_attr=e)
            h = norm(h + F.dropout(F.gelu(msg), self.dropout, self.training))
        return h


class SoftTokenProjector(nn.Module):
    """Node states of each graph -> K vectors in the LLM's embedding space.

    attention (GNP's question-aware pooling): K learned queries, each shifted by the projected question
    embedding, attend over the graph's nodes; mean: the mean node state plus a learned offset per token.
    One MLP (as G-Retriever's projector) maps the pooled states to the LLM's width.
    """

    def __init__(self, cfg: GraphPromptConfig, question_dim: int, llm_dim: int):
        super().__init__()
        h = cfg.gnn_hidden
        self.k = cfg.soft_tokens
        self.pooling = cfg.pooling
        self.queries = nn.Parameter(torch.randn(self.k, h) / math.sqrt(h))
        self.question = nn.Linear(question_dim, h)
        self.mlp = nn.Sequential(nn.Linear(h, cfg.projector_hidden), nn.GELU(),
                                 nn.Linear(cfg.projector_hidden, llm_dim))

    def forward(self, nodes: torch.Tensor, batch: torch.Tensor, question: torch.Tensor, n_graphs: int) -> torch.Tensor:
        from torch_geometric.utils import scatter, softmax

        if self.pooling == "mean":
            pooled = scatter(nodes, batch, dim=0, dim_size=n_graphs, reduce="mean")  # (B, h)
            tokens = pooled[:, None, :] + self.queries[None]  # (B, K, h)
        else:
            q = self.queries[None] + self.question(question)[:, None, :]  # (B, K, h)
            scores = (nodes[:, None, :] * q[batch]).sum(-1) / math.sqrt(nodes.shape[-1])  # (N, K)
            weights = softmax(scores, batch, num_nodes=n_graphs, dim=0)  # per graph, per token
            tokens = scatter(weights[..., None] * nodes[:, None, :], batch, dim=0, dim_size=n_graphs, reduce="sum")
        return self.mlp(tokens)  # (B, K, llm_dim)


def link_prediction_loss(nodes: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor,
                         generator=None) -> torch.Tensor:
    """GNP's auxiliary task: score the subgraph's edges above random non-edges of the same graphs
    (dot product of node states, binary cross-entropy). Zero when no graph has an edge."""
    from torch_geometric.utils import batched_negative_sampling

    if edge_index.shape[1] == 0:
        return nodes.sum() * 0.0
    neg = batched_negative_sampling(edge_index, batch, num_neg_samples=1)
    pos_logit = (nodes[edge_index[0]] * nodes[edge_index[1]]).sum(-1) / math.sqrt(nodes.shape[-1])
    neg_logit = (nodes[neg[0]] * nodes[neg[1]]).sum(-1) / math.sqrt(nodes.shape[-1])
    logits = torch.cat([pos_logit, neg_logit])
    target = torch.cat([torch.ones_like(pos_logit), torch.zeros_like(neg_logit)])
    return F.binary_cross_entropy_with_logits(logits, target)
