"""GraphPromptConfig: which mode a run trains (model.modes) and the shape of its graph modules."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from data.embedding import EMBEDDING_DIM
from kg.schema import EVIDENCE_DEFINITIONS, EVIDENCE_PATHS, EVIDENCE_TRIPLES, RELATIONS

MINILM_WIDTH = EMBEDDING_DIM
"""Width of the bundled all-MiniLM-L6-v2 sentence embeddings (data.embedding, the one source): the GNN's node, edge
and question features when no graph context is open, as for the 7B report (a context reports its index's width)."""
NUM_RELATIONS = len(RELATIONS)
"""Relation types of the closed set (kg.schema): the GNN learns one embedding per type and direction."""
GNN_KINDS = ("gat", "transformer", "gcn")
POOLINGS = ("attention", "mean")


@dataclass
class GraphPromptConfig:
    mode: str = "lora"
    """What the run trains: one of the modes of model.modes (`python -m model.modes` lists them; training.run has a
    flag for each)."""
    text_evidence: bool | None = None
    """Numbered triples and paths from the question's subgraph in the prompt. Default: on for graph and
    graph-text, off for adapter (it reads the graph through its cross-attention) and the graph-free modes."""
    soft_tokens: int = 4
    """K soft graph tokens placed after BOS in graph mode (0: none, which makes graph mode text-only)."""
    lora: bool = True
    """Graph mode: train LoRA together with the graph modules (False: frozen base, GNN and projector only)."""
    gnn: str = "gat"
    """GNN over the subgraph: gat (GATConv with edge features), transformer (TransformerConv), gcn (GCNConv)."""
    gnn_layers: int = 2
    """Message-passing layers (G-Retriever uses 4 on a GPU; 2 cover a 2-hop subgraph)."""
    gnn_hidden: int = 256
    """Node state width."""
    gnn_heads: int = 4
    """Attention heads for gat and transformer."""
    gnn_dropout: float = 0.0
    pooling: str = "attention"
    """How node states become the K soft tokens: attention (question-aware, as GNP; one learned query per
    token, shifted by the question embedding) or mean (mean pool plus a learned offset per token)."""
    projector_hidden: int = 1024
    """Width of the MLP that maps pooled graph states to the LLM's embedding size."""
    adapter_layers: int = 8
    """Adapter mode: decoder layers (from the top) that get graph cross-attention."""
    adapter_dim: int = 128
    """Adapter mode: attention width of the graph cross-attention."""
    adapter_heads: int = 4
    prompt_tokens: int = 20
    """Prompt-tuning mode: learned virtual tokens (initialised from the study's instruction)."""
    module_lr: float = 1e-3
    """Learning rate of the new modules (GNN, projector, adapter); LoRA keeps train.learning_rate."""
    prompt_tuning_lr: float = 3e-2
    """Learning rate of the prompt-tuning virtual tokens."""
    link_loss_weight: float = 0.0
    """Weight of GNP's link-prediction auxiliary loss on the GNN's node states (0: off)."""
    evidence_triples: int = EVIDENCE_TRIPLES
    """Triples in the textual evidence, most relevant to the question first (the longest part of it)."""
    evidence_definitions: int = EVIDENCE_DEFINITIONS
    """Seed-concept definitions in the textual evidence."""
    evidence_paths: int = EVIDENCE_PATHS
    """Paths between seed concepts in the textual evidence (MindMap's path evidence)."""
    evidence_dropout: float = 0.15
    """Share of training items (drawn with the training seed) that get the plain prompt: no evidence, no soft
    tokens, as a question the graph knows nothing about gets; the model learns to use the graph where it has
    something without depending on it. Dev and eval items always get what the graph has."""
    train_baseline: bool = True
    """For a graph-family mode: also train the plain LoRA run (the `finetuned` system) on the same items, in
    <run_dir>/systems/finetuned, so the closing evaluation compares plain, finetuned and this mode."""

    def __post_init__(self) -> None:
        from model.modes import MODES

        problems = []
        if self.mode not in MODES:
            problems.append(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.gnn not in GNN_KINDS:
            problems.append(f"gnn must be one of {GNN_KINDS}, got {self.gnn!r}")
        if self.pooling not in POOLINGS:
            problems.append(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if (self.soft_tokens < 0 or self.gnn_layers < 1 or self.gnn_hidden < 1 or self.adapter_layers < 1
                or self.prompt_tokens < 1):
            problems.append("soft_tokens must be >= 0; gnn_layers, gnn_hidden, adapter_layers and prompt_tokens >= 1")
        if self.gnn in ("gat", "transformer") and self.gnn_hidden % self.gnn_heads:
            problems.append(f"gnn_hidden ({self.gnn_hidden}) must be a multiple of gnn_heads ({self.gnn_heads})")
        if self.adapter_dim % self.adapter_heads:
            problems.append(f"adapter_dim ({self.adapter_dim}) must be a multiple of adapter_heads "
                            f"({self.adapter_heads})")
        if not 0.0 <= self.evidence_dropout < 1.0:
            problems.append(f"evidence_dropout must be in [0, 1), got {self.evidence_dropout}")
        if min(self.evidence_triples, self.evidence_definitions, self.evidence_paths) < 0:
            problems.append("evidence_triples, evidence_definitions and evidence_paths must be >= 0")
        if self.link_loss_weight < 0:
            problems.append("link_loss_weight must be >= 0")
        if self.mode in MODES:
            m = MODES[self.mode]
            problems += m.check(self) if m.check else []
            if self.link_loss_weight > 0 and not self.uses_gnn:
                problems.append(f"link_loss_weight needs a GNN; mode {self.mode!r} has none")
        if problems:
            raise ValueError("Invalid GraphPromptConfig:\n  - " + "\n  - ".join(problems))

    @property
    def spec(self):
        """This run's entry in the mode table (model.modes.Mode)."""
        from model.modes import get

        return get(self.mode)

    @property
    def uses_gnn(self) -> bool:
        return self.spec.uses_gnn(self)

    @property
    def uses_text(self) -> bool:
        return self.spec.uses_text(self)

    @property
    def uses_graph(self) -> bool:
        return self.uses_gnn or self.uses_text

    @property
    def uses_lora(self) -> bool:
        return self.spec.uses_lora(self)

    @property
    def system(self) -> str:
        """The evaluation system this mode's run provides."""
        return self.spec.system

    def evidence_limits(self) -> dict[str, int]:
        """How much textual evidence a prompt gets (keyword arguments of GraphContext.prompts)."""
        return {"max_triples": self.evidence_triples, "max_definitions": self.evidence_definitions,
                "max_paths": self.evidence_paths}

    def to_dict(self) -> dict:
        return asdict(self)
