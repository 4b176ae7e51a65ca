"""KGConfig: how the graph is built and how a question's subgraph is retrieved."""
from __future__ import annotations

from dataclasses import dataclass, field

from data.config import SHIPPED_CORPUS_DIR

QA_ITEMS = ("train", "all")


@dataclass
class KGConfig:
    corpus: list[str] = field(default_factory=lambda: [str(SHIPPED_CORPUS_DIR)])
    """QA files or folders the triples are extracted from (the data package's loaders read them)."""
    qa_items: str = "train"
    """Which QA items the graph reads: "train" (the curated training items, dev included, as `python -m
    data.prepare` splits these corpus files with its default settings: the eval split's questions and answers
    never reach the graph that answers them) or "all" (every item; for browsing the whole corpus in Neo4j, not
    for evaluating on it)."""
    notes: list[str] = field(default_factory=list)
    """A user's own Markdown or text notes (files or folders) to extract from as well."""
    vocab: list[str] = field(default_factory=list)
    """Extra vocabulary files (concepts_*.jsonl format) on top of the shipped vocabulary."""
    work_dir: str = "artifacts/kg"
    """Extraction cache, embedding cache and retrieval index live here."""
    candidates: bool = False
    """Add frequent noun phrases the vocabulary lacks as extracted concepts. Precise with en_core_web_sm's
    noun chunks; with spacy.blank("en") the n-gram fallback also admits non-concepts ("behaves like"),
    so it is off by default. Candidates are linked through co-occurrence edges, so it needs cooccurrence."""
    candidate_min_docs: int = 8
    """Documents a phrase must appear in to become a candidate concept."""
    cooccurrence: bool = False
    """Add RELATED_TO edges between concepts mentioned together in several documents (weighted by NPMI).
    Off by default: on a held-out hand-labelled sample only 55% of them were valid associations
    (kg/gold/cooccurrence_test_labels.jsonl), against 95% for the pattern triples; a concept matched in
    another sense (heap memory vs the heap data structure) is their usual error."""
    cooc_min_count: int = 2
    """Documents two concepts must share for a co-occurrence RELATED_TO edge."""
    cooc_min_npmi: float = 0.5
    """Lowest normalised PMI for a co-occurrence edge (chosen on a labelled dev sample, where 0.5 kept 81%
    valid edges against 65% at 0.25; a later held-out sample gave 55%: see scripts/score_extraction.py)."""
    llm_extract: bool = False
    """Also ask an LLM for the triples each document states (JSON-schema constrained, checked against
    the vocabulary): an OpenAI-compatible endpoint, from OPENAI_BASE_URL / OPENAI_API_KEY or the flags below."""
    llm_model: str | None = None
    """Model name for LLM extraction (default $STUDYLLAMA_EXTRACT_MODEL or gpt-4o-mini)."""
    llm_base_url: str | None = None
    """OpenAI-compatible base URL for LLM extraction (default $OPENAI_BASE_URL, else OpenAI)."""
    merge_threshold: float = 0.95
    """Embedding similarity at which two concepts of one domain are merged."""
    hops: int = 2
    """Neighbourhood radius around the question's seed concepts."""
    seed_top_k: int = 5
    """Concepts linked to the question by embedding similarity (besides lexical matches)."""
    seed_min_similarity: float = 0.45
    """Lowest cosine for an embedding seed."""
    max_neighbourhood: int = 400
    """Cap on k-hop nodes considered (the most question-similar are kept)."""
    pcst: bool = True
    """Prune the neighbourhood with PCST as G-Retriever does; off keeps the top-scored k-hop nodes."""
    pcst_node_topk: int = 3
    """Top nodes by similarity that get PCST prizes (G-Retriever: 3, with prizes 3, 2, 1)."""
    pcst_edge_topk: int = 5
    """Top edges by similarity that get graded prizes (G-Retriever: 5)."""
    pcst_edge_cost: float = 0.5
    """Cost of every edge (G-Retriever: 0.5)."""
    max_nodes: int = 25
    """Largest subgraph handed to the prompt."""
    min_nodes: int = 12
    """After PCST, neighbours of the selection that are most similar to the question are added until the
    subgraph has this many nodes (MindMap's neighbour-based evidence); 0 keeps PCST's selection as is."""

    def __post_init__(self) -> None:
        problems = []
        if self.qa_items not in QA_ITEMS:
            problems.append(f"qa_items must be one of {QA_ITEMS}, got {self.qa_items!r}")
        if not 0 <= self.hops <= 4:
            problems.append(f"hops must be in [0, 4], got {self.hops}")
        if self.seed_top_k < 0 or self.pcst_node_topk < 1 or self.pcst_edge_topk < 0:
            problems.append("seed_top_k, pcst_node_topk and pcst_edge_topk must be non-negative "
                            "(node top-k at least 1)")
        if not 0 < self.merge_threshold <= 1:
            problems.append(f"merge_threshold must be in (0, 1], got {self.merge_threshold}")
        if self.max_nodes < 1 or self.max_neighbourhood < self.max_nodes:
            problems.append("max_nodes must be positive and at most max_neighbourhood")
        if not 0 <= self.min_nodes <= self.max_nodes:
            problems.append(f"min_nodes must be in [0, max_nodes], got {self.min_nodes}")
        if self.pcst_edge_cost <= 0:
            problems.append(f"pcst_edge_cost must be positive, got {self.pcst_edge_cost}")
        if self.candidates and not self.cooccurrence:
            problems.append("candidates needs cooccurrence (candidate concepts are linked only by co-occurrence edges)")
        if problems:
            raise ValueError("Invalid KGConfig:\n  - " + "\n  - ".join(problems))
