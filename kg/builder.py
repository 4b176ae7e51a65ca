"""Build the concept graph: vocabulary + resolution + extraction from the QA corpus and notes -> store.

Deterministic: the same inputs give the same concepts and triples, and every write is a MERGE, so a
build that was killed and run again leaves the same graph as one that was not. Extraction results are
cached per document (keyed by its text and the vocabulary), so adding QA items or notes re-extracts
only the new ones (an incremental update).
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kg.config import KGConfig
from kg.extract import (ConceptExtractor, Document, candidate_phrases, cooccurrence_triples, drop_generic,
                        generic_concepts, merge_triples)
from kg.resolve import Merge, mention_forms, resolve_concepts
from kg.schema import Concept, Triple, concept_id
from data.embedding import embed_cached  # noqa: F401  (kg.index imports it from here too)
from kg.vocabulary import VOCAB_DIR, load_vocabulary

log = logging.getLogger(__name__)
CANDIDATE_BLOCKLIST = set("example case way number time value result step answer question idea point part kind type "
                          "form".split())


@dataclass
class GraphData:
    concepts: dict[str, Concept]
    triples: list[Triple]
    documents: list[Document]
    mentions: dict[str, Counter]
    merges: list[Merge] = field(default_factory=list)
    ambiguous_aliases: list[str] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)
    conflicts_dropped: list[str] = field(default_factory=list)  # extracted triples that contradicted another


def read_notes(paths: list[str]) -> list[Document]:
    """A user's Markdown / text notes as documents, one per paragraph.

    A document's id is its file's path relative to the notes root it was found under, then '#paragraph'
    (a/dup.md#0 and b/dup.md#0 are two notes); a file given by itself is named by its file name. Every
    problem (not UTF-8, a control character, two files with one id) is reported at once, before any write.
    """
    from data.normalize import control_character_problem

    files: list[tuple[Path, str]] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in (".md", ".markdown", ".txt"))
            files.extend((f, f.relative_to(p).as_posix()) for f in found)
        elif p.exists():
            files.append((p, p.name))
        else:
            raise FileNotFoundError(f"notes path {p} does not exist")
    problems: list[str] = []
    first_file: dict[str, Path] = {}
    docs: list[Document] = []
    for f, name in files:
        if name in first_file:
            problems.append(f"{f}: has the note id {name!r} of {first_file[name]} (two notes roots hold the same "
                            "relative path); give the folder above both, or rename one")
            continue
        first_file[name] = f
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"{f}: not UTF-8 text ({exc.reason} at byte {exc.start})")
            continue
        problem = control_character_problem(text, "the note")
        if problem:
            problems.append(f"{f}: {problem}")
            continue
        for k, para in enumerate(p.strip() for p in text.split("\n\n")):
            para = "\n".join(line.lstrip("#>*- ").strip() for line in para.splitlines()).strip()
            if len(para.split()) >= 4:
                docs.append(Document(f"{name}#{k}", para))
    if problems:
        raise ValueError(f"{len(problems)} problem(s) in the notes; nothing was written to the graph:\n  - "
                         + "\n  - ".join(problems))
    return docs


def concept_text(c: Concept) -> str:
    return f"{c.name}: {c.definition}" if c.definition else c.name


def graph_items(cfg: KGConfig):
    """The QA items the graph is built from (see KGConfig.qa_items) and how many eval items were left out."""
    if cfg.qa_items == "all":
        from data.loaders import load_items

        return load_items(cfg.corpus)[0], 0
    from data.config import DataConfig
    from data.prepare import split_corpus

    splits = split_corpus(DataConfig(corpus=list(cfg.corpus))).splits
    return splits.train + splits.dev, len(splits.eval)


def load_documents(cfg: KGConfig) -> list[Document]:
    items, _ = graph_items(cfg)
    docs = [Document(it.id, f"{it.question}\n{it.answer}", it.domain) for it in sorted(items, key=lambda i: i.id)]
    return docs + read_notes(cfg.notes)


class ExtractionCache:
    """Per-document extraction results keyed by (document text, vocabulary fingerprint)."""

    def __init__(self, path: Path, vocab_key: str):
        self.path, self.vocab_key = path, vocab_key
        self.rows: dict[str, dict] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    row = json.loads(line)
                except (json.JSONDecodeError, RecursionError):
                    continue  # a line cut by a kill: that document is simply extracted again
                if isinstance(row, dict) and isinstance(row.get("key"), str):
                    self.rows[row["key"]] = row

    def key(self, doc: Document) -> str:
        return hashlib.sha256(f"{self.vocab_key}\0{doc.id}\0{doc.text}".encode()).hexdigest()[:24]

    def save(self, new_rows: list[dict]) -> None:
        if not new_rows:
            return
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in new_rows)
        with open(self.path, "a", encoding="utf-8") as fh:
            # builds sharing a work dir append at once: whole lines only, never two writers' bytes interleaved
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(text)
            fh.flush()
        for row in new_rows:
            self.rows[row["key"]] = row


def extract_all(extractor: ConceptExtractor, docs: list[Document], cache: ExtractionCache,
                progress: bool) -> tuple[list[Triple], dict[str, Counter]]:
    todo = [d for d in docs if cache.key(d) not in cache.rows]
    log.info("extraction: %d documents cached, %d to extract", len(docs) - len(todo), len(todo))
    if todo:
        triples, mentions = extractor.extract(todo, progress=progress)
        by_doc: dict[str, list[dict]] = {d.id: [] for d in todo}
        for t in triples:
            for doc_id in t.provenance:
                by_doc[doc_id].append({"head": t.head, "relation": t.relation, "tail": t.tail,
                                       "confidence": t.confidence, "sentence": t.sentence})
        cache.save([{"key": cache.key(d), "id": d.id, "mentions": dict(mentions[d.id]), "triples": by_doc[d.id]}
                    for d in todo])
    mentions_by_doc: dict[str, Counter] = {}
    raw: list[Triple] = []
    for d in docs:
        row = cache.rows[cache.key(d)]
        mentions_by_doc[d.id] = Counter(row["mentions"])
        raw.extend(Triple(t["head"], t["relation"], t["tail"], t["confidence"], "pattern", [d.id], t["sentence"])
                   for t in row["triples"])
    return merge_triples(drop_generic(raw, generic_concepts(mentions_by_doc))), mentions_by_doc


def llm_triples(cfg: KGConfig, docs, mentions, concepts, work: Path, vocab_key: str, progress: bool) -> list[Triple]:
    """LLM-extracted triples, cached per (document, vocabulary, model) so nothing is paid for twice."""
    from kg.llm_extract import OpenAICompleter, llm_extract

    complete = OpenAICompleter(cfg.llm_model, cfg.llm_base_url)
    cache = ExtractionCache(work / "llm_cache.jsonl", f"{vocab_key}:{complete.model}:{cfg.llm_base_url}")
    todo = [d for d in docs if cache.key(d) not in cache.rows and len(mentions[d.id]) >= 2]
    if progress and todo:
        from tqdm.auto import tqdm

        todo = tqdm(todo, desc="LLM extraction", unit="doc")
    for d in todo:
        found = llm_extract(d.id, d.text, [concepts[c] for c in sorted(mentions[d.id]) if c in concepts], complete)
        cache.save([{"key": cache.key(d), "id": d.id, "triples": [t.to_dict() for t in found]}])
    out = []
    for d in docs:
        row = cache.rows.get(cache.key(d))
        for t in (row or {}).get("triples", []):
            out.append(Triple(t["head"], t["relation"], t["tail"], t["confidence"], "llm", t["provenance"],
                              t["sentence"]))
    return out


def build_graph_data(cfg: KGConfig, progress: bool = True) -> GraphData:
    """Everything that goes into the store, computed without touching it."""
    vocab_paths = sorted(VOCAB_DIR.glob("concepts_*.jsonl")) + [Path(p) for p in cfg.vocab]
    vocab = load_vocabulary(vocab_paths)
    work = Path(cfg.work_dir)
    ids = sorted(vocab.concepts)
    vecs = embed_cached([concept_text(vocab.concepts[c]) for c in ids], work / "embeddings.npz")
    concepts, curated, merges, ambiguous = resolve_concepts(vocab.concepts, vocab.curated, dict(zip(ids, vecs)),
                                                            cfg.merge_threshold)
    docs = load_documents(cfg)

    candidates: list[str] = []
    if cfg.candidates:
        known = {f.lower() for forms in mention_forms(concepts).values() for f in forms}
        domain_of = {d.id: d.domain for d in docs}
        for phrase, doc_ids in sorted(candidate_phrases(docs, known, min_docs=cfg.candidate_min_docs).items()):
            cid = concept_id(phrase)
            if (cid in concepts or any(w in CANDIDATE_BLOCKLIST for w in phrase.split())
                    or any(ch.isdigit() for ch in phrase)):
                continue
            domain = Counter(domain_of[i] for i in doc_ids if domain_of.get(i)).most_common(1)
            concepts[cid] = Concept(cid, phrase, domain[0][0] if domain else "ai", [], "", "extracted")
            candidates.append(cid)

    vocab_key = hashlib.sha256(
        json.dumps(sorted((c, *mention_forms({c: concepts[c]})[c]) for c in concepts)).encode()).hexdigest()[:16]
    extractor = ConceptExtractor(concepts)
    pattern, mentions = extract_all(extractor, docs, ExtractionCache(work / "extraction_cache.jsonl", vocab_key),
                                    progress)
    cooc = cooccurrence_triples(mentions, cfg.cooc_min_count, cfg.cooc_min_npmi) if cfg.cooccurrence else []
    if cfg.llm_extract:
        pattern = merge_triples(pattern + llm_triples(cfg, docs, mentions, concepts, work, vocab_key, progress))

    # curated edges win; pattern edges add provenance; co-occurrence only where no typed edge links the pair
    final: dict[tuple, Triple] = {t.key: t for t in curated}
    for t in pattern:
        if t.key in final:
            final[t.key].provenance = sorted(set(final[t.key].provenance) | set(t.provenance))
        else:
            final[t.key] = t
    linked = {frozenset((t.head, t.tail)) for t in final.values()}
    for t in cooc:
        if frozenset((t.head, t.tail)) not in linked:
            final[t.key] = t
    # a candidate concept that nothing links to is noise, not knowledge
    degree = Counter(c for t in final.values() for c in (t.head, t.tail))
    for cid in [c for c in candidates if degree[c] == 0]:
        del concepts[cid]
        candidates.remove(cid)
    triples = sorted((t for t in final.values() if t.head in concepts and t.tail in concepts), key=lambda t: t.key)
    triples, dropped = drop_conflicts(triples)
    check_graph(concepts, triples)
    return GraphData(concepts, triples, docs, mentions, merges, ambiguous, candidates, dropped)


def drop_conflicts(triples: list[Triple]) -> tuple[list[Triple], list[str]]:
    """Remove extracted triples whose relation contradicts another triple on the same pair (the checks of
    kg.checks); of two contradicting triples the curated one, else the more confident one, stays."""
    from kg.checks import relation_conflicts

    by_key = {t.key: t for t in triples}
    dropped: dict[tuple, str] = {}
    rank = lambda t: (t.source == "curated", t.confidence, t.key)  # noqa: E731
    for a, b, reason in relation_conflicts(list(by_key)):
        if a in dropped or b in dropped:
            continue
        loser = min(by_key[a], by_key[b], key=rank)
        if loser.source == "curated":
            continue  # two curated triples: check_graph reports it
        winner = by_key[b] if loser.key == a else by_key[a]
        dropped[loser.key] = f"{' '.join(loser.key)} ({loser.source}) dropped: {reason} with {' '.join(winner.key)}"
    for msg in dropped.values():
        log.info("%s", msg)
    return [t for t in triples if t.key not in dropped], sorted(dropped.values())


def check_graph(concepts: dict[str, Concept], triples: list[Triple]) -> None:
    """The built graph's own guarantees: no contradicting relations on a pair, no alias naming two concepts."""
    from kg.checks import alias_problems, relation_conflicts

    conflicts = relation_conflicts([t.key for t in triples])
    problems = [f"{' '.join(a)} contradicts {' '.join(b)}: {reason}" for a, b, reason in conflicts]
    # the ambiguous-word list was applied to the vocabulary; here only clashes between concepts can remain
    problems += alias_problems(concepts, {})
    if problems:
        listed = "\n  - ".join(problems[:50])
        raise ValueError(f"the built graph breaks {len(problems)} consistency rule(s):\n  - {listed}")


def graph_digest(data: GraphData) -> str:
    """A fingerprint of everything written: the same inputs give the same digest."""
    payload = [
        [c.to_dict() for _, c in sorted(data.concepts.items())],
        [t.to_dict() for t in data.triples],
        [[d.id, d.text] for d in data.documents],
        sorted((k, sorted(v.items())) for k, v in data.mentions.items()),
    ]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def write_graph(store, data: GraphData, progress: bool = True) -> dict:
    """Write concepts, QA items, mentions and triples in batches (idempotent MERGEs)."""
    from kg import cypher
    from kg.store import set_meta, write_batches

    store.ensure_schema()
    # context rules travel as a JSON string: neither store keeps a map as a property
    concept_rows = [c.to_dict() | {"alias_context": json.dumps(c.alias_context, sort_keys=True)}
                    for _, c in sorted(data.concepts.items())]
    qa_rows = [{"id": d.id, "question": d.text.split("\n", 1)[0], "domain": d.domain or ""} for d in data.documents]
    mention_rows = [
        {"qa": doc_id, "concept": cid, "count": n}
        for doc_id, counter in sorted(data.mentions.items())
        for cid, n in sorted(counter.items())
        if cid in data.concepts
    ]
    by_rel: dict[str, list[dict]] = {}
    for t in data.triples:
        by_rel.setdefault(t.relation, []).append(
            {"head": t.head, "tail": t.tail, "confidence": float(t.confidence), "source": t.source,
             "sentence": t.sentence, "provenance": list(t.provenance)}
        )
    total = len(concept_rows) + len(qa_rows) + len(mention_rows) + len(data.triples)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="writing graph", unit="row")
    digest = graph_digest(data)
    stamp = {"build": digest}
    t0 = time.time()
    write_batches(store, cypher.UPSERT_CONCEPTS, concept_rows, progress=bar, params=stamp)
    write_batches(store, cypher.UPSERT_QA, qa_rows, progress=bar, params=stamp)
    write_batches(store, cypher.UPSERT_MENTIONS, mention_rows, progress=bar, params=stamp)
    for rel in sorted(by_rel):
        write_batches(store, cypher.UPSERT_TRIPLES[rel], by_rel[rel], progress=bar, params=stamp)
    if bar is not None:
        bar.close()
    store.write(cypher.DELETE_STALE_RELATIONSHIPS, stamp)
    store.write(cypher.DELETE_STALE_NODES, stamp)
    for d in cypher.DOMAIN_LABELS:
        store.write(cypher.REMOVE_STALE_DOMAIN_LABELS[d])
        store.write(cypher.SET_DOMAIN_LABELS[d])
    set_meta(store, "graph_digest", digest)
    store.flush()
    return {"rows_written": total, "write_seconds": round(time.time() - t0, 2), "graph_digest": digest}
