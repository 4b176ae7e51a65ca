"""KG contracts (design notes, section 2): Concept, Triple, Subgraph, and the closed relation set. No I/O."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field

RELATIONS: dict[str, str] = {
    "IS_A": "head is a kind or instance of tail",
    "PART_OF": "head is a component or step of tail",
    "USES": "head relies on tail as a mechanism or ingredient",
    "USED_FOR": "head is a means to achieve, compute or solve tail, or a tool applied in it (a task, goal or system)",
    "PREREQUISITE_OF": "understanding head is needed before tail",
    "CONTRASTS_WITH": "head is commonly compared with tail",
    "MEASURES": "head is a metric or statistic that quantifies tail",
    "RELATED_TO": "a strong association that none of the other types captures",
    # appended, not inserted: a relation's index is its row in the GNN's relation embedding
    "MITIGATES": "head reduces, prevents or counters tail (an unwanted effect, risk or cost)",
}
# How evidence text reads each type ("dropout counters overfitting"); one entry per relation type.
RELATION_WORDS: dict[str, str] = {
    "IS_A": "is a kind of",
    "PART_OF": "is part of",
    "USES": "uses",
    "USED_FOR": "is used for",
    "PREREQUISITE_OF": "is a prerequisite for",
    "CONTRASTS_WITH": "is commonly contrasted with",
    "MEASURES": "measures",
    "RELATED_TO": "is related to",
    "MITIGATES": "counters",
}
DOMAINS = ("cs", "stats", "ai")
# How much numbered evidence a graph-prompted model gets (model.graph_config.GraphPromptConfig's defaults and
# prompting.graph_prompt.GraphContext.prompts's): defined once, so a caller that leaves them out gets what
# training and evaluation use (a benchmark once timed 8 triples against the 5 the model is trained on).
EVIDENCE_TRIPLES = 5
EVIDENCE_DEFINITIONS = 2
EVIDENCE_PATHS = 1


def relation_text(head: str, relation: str, tail: str) -> str:
    """A triple as the sentence the evidence and the edge embeddings use ("dropout counters overfitting")."""
    return f"{head} {RELATION_WORDS[relation]} {tail}"


def concept_id(name: str) -> str:
    """Normalised id: ASCII-folded, lowercase, words joined by '-' ("Bayes' theorem" -> "bayes-theorem")."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"'s\b|'", "", text.lower())
    return "-".join(re.findall(r"[a-z0-9]+", text))


@dataclass
class Concept:
    id: str
    name: str
    domain: str
    aliases: list[str] = field(default_factory=list)
    definition: str = ""
    source: str = "vocabulary"  # "vocabulary" | "extracted" (a candidate from noun phrases)
    # alias -> cue words: an ambiguous alias ("ANN") is a mention only in a text that has one of its cues
    alias_context: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Triple:
    head: str  # concept id
    relation: str  # one of RELATIONS
    tail: str  # concept id
    confidence: float
    source: str  # "curated" | "pattern" | "cooccurrence" | "llm"
    provenance: list[str] = field(default_factory=list)  # QA ids or note files the triple was found in
    sentence: str = ""  # one sentence that supports it (empty for curated triples)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.head, self.relation, self.tail)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SubgraphNode:
    id: str
    name: str
    text: str  # name and definition: what the sentence encoder and the textual evidence see
    score: float  # relevance to the question (cosine of embeddings, or the PCST prize)
    reason: str  # why it is in the subgraph: "seed (lexical)", "seed (embedding)", "path", "neighbour"


@dataclass
class SubgraphEdge:
    head: int  # index into nodes
    relation: str
    tail: int
    text: str  # "head relation tail" in words
    confidence: float = 1.0


@dataclass
class Subgraph:
    question: str
    nodes: list[SubgraphNode]
    edges: list[SubgraphEdge]
    seeds: list[str]  # concept ids linked from the question
    hops: int
    pcst: dict | None  # the PCST settings used, or None when PCST was off
    paths: list[list[str]] = field(default_factory=list)  # MindMap-style paths between seeds (concept ids)

    @property
    def empty(self) -> bool:
        return not self.nodes

    def to_dict(self) -> dict:
        return asdict(self)
