"""Precision of the extracted (not curated) triples against hand-labelled gold sets. Prints JSON.

1. Pattern triples: kg/gold/extraction_gold.jsonl holds sentences written for this purpose (never seen
   while the patterns were written) with every relation each sentence states, labelled by hand. The
   extractor runs on each sentence with the shipped vocabulary; precision = extracted triples that are in
   the gold annotation / all extracted triples; recall = the converse.
2. Co-occurrence triples: kg/gold/cooccurrence_*labels.jsonl hold RELATED_TO edges sampled from a build
   and judged by hand. "dev" labels were used to choose the NPMI threshold; "test" labels were drawn
   afterwards from the tuned build and are the honest estimate.

    .venv/bin/python scripts/score_extraction.py
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GOLD = ROOT / "kg" / "gold"


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    from evaluation.significance import wilson_interval

    return [round(v, 3) for v in wilson_interval(k, n, z)]


def score_patterns() -> dict:
    from kg.builder import load_documents
    from kg.config import KGConfig
    from kg.extract import ConceptExtractor, Document, drop_generic, generic_concepts
    from kg.resolve import resolve_concepts
    from kg.vocabulary import load_vocabulary

    rows = [json.loads(line) for line in open(GOLD / "extraction_gold.jsonl", encoding="utf-8")]
    vocab = load_vocabulary()
    concepts, _, _, _ = resolve_concepts(vocab.concepts, vocab.curated)
    extractor = ConceptExtractor(concepts)
    # the build's generic-concept rule (mentioned in over 8% of corpus documents) applies here too
    corpus = load_documents(KGConfig())
    _, corpus_mentions = extractor.extract(corpus)
    generic = generic_concepts(corpus_mentions)
    gold = {(r["id"], t["head"], t["relation"], t["tail"]) for r in rows for t in r["triples"]}
    extracted = set()
    for r in rows:
        triples, _ = extractor.extract([Document(r["id"], r["sentence"])])
        extracted |= {(r["id"], *t.key) for t in drop_generic(triples, generic)}
    hit = extracted & gold
    by_rel = Counter(k[2] for k in extracted)
    hit_rel = Counter(k[2] for k in hit)
    return {
        "sentences": len(rows),
        "gold_triples": len(gold),
        "extracted": len(extracted),
        "correct": len(hit),
        "precision": round(len(hit) / len(extracted), 3) if extracted else None,
        "precision_95ci": wilson(len(hit), len(extracted)),
        "recall": round(len(hit) / len(gold), 3) if gold else None,
        "by_relation": {rel: {"extracted": n, "correct": hit_rel[rel]} for rel, n in sorted(by_rel.items())},
        "false_positives": sorted("|".join(k) for k in extracted - gold)[:20],
    }


def score_cooccurrence() -> dict:
    out = {}
    for path in sorted(GOLD.glob("cooccurrence_*labels.jsonl")):
        rows = [json.loads(line) for line in open(path, encoding="utf-8")]
        k = sum(bool(r["valid"]) for r in rows)
        out[path.name] = {"labelled": len(rows), "valid": k, "precision": round(k / len(rows), 3),
                          "precision_95ci": wilson(k, len(rows))}
    return out


def main() -> int:
    import logging

    logging.basicConfig(level=logging.WARNING)
    result = {"pattern_triples": score_patterns(), "cooccurrence_triples": score_cooccurrence()}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
