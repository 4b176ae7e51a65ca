import json

import numpy as np
import pytest

from kg import cypher
from kg.config import KGConfig
from kg.export import cypher_string, export_csv, export_cypher, export_graphml
from kg.extract import ConceptExtractor, Document, cooccurrence_triples, merge_triples
from kg.resolve import mention_forms, normal_form, resolve_concepts
from kg.schema import RELATION_WORDS, RELATIONS, Concept, Triple, concept_id, relation_text
from kg.vocabulary import VocabularyError, load_vocabulary


def C(cid, name=None, domain="ai", aliases=(), definition=""):
    return Concept(cid, name or cid.replace("-", " "), domain, list(aliases), definition)


def test_concept_ids_are_normalised():
    assert concept_id("Bayes' theorem") == "bayes-theorem"
    assert concept_id("  Naïve   Bayes ") == "naive-bayes"
    assert normal_form("Hash Tables") == "hash-table" and normal_form("hash table") == "hash-table"


def test_closed_relation_set_and_one_upsert_per_type():
    assert len(RELATIONS) == 9 and set(cypher.UPSERT_TRIPLES) == set(RELATIONS)
    for rel, stmt in cypher.UPSERT_TRIPLES.items():
        assert f"[r:{rel}]" in stmt and "UNWIND $rows AS row" in stmt and "MERGE" in stmt
    # user text only ever travels as a parameter
    for name, stmt in cypher.all_statements().items():
        assert "{row" not in stmt and "%s" not in stmt, name


def test_every_relation_type_reads_as_a_phrase():
    # one phrase per type, and the GNN's relation ids of the older types are unchanged by the split
    assert list(RELATION_WORDS) == list(RELATIONS) and list(RELATIONS)[-1] == "MITIGATES"
    assert list(RELATIONS)[:8] == ["IS_A", "PART_OF", "USES", "USED_FOR", "PREREQUISITE_OF", "CONTRASTS_WITH",
                                   "MEASURES", "RELATED_TO"]
    assert relation_text("dropout", "MITIGATES", "overfitting") == "dropout counters overfitting"
    assert (relation_text("probability", "PREREQUISITE_OF", "Bayesian inference")
            == "probability is a prerequisite for Bayesian inference")


def test_shipped_vocabulary_is_valid_and_large():
    v = load_vocabulary()
    assert len(v.concepts) >= 1000
    assert {t.relation for t in v.curated} == set(RELATIONS)
    assert all(t.head in v.concepts and t.tail in v.concepts for t in v.curated)
    lora = v.concepts["lora"]
    assert any("low-rank adaptation" in a.lower() for a in lora.aliases)


def test_vocabulary_errors_name_file_and_line(tmp_path):
    p = tmp_path / "concepts_bad.jsonl"
    p.write_text(
        json.dumps({"id": "a", "name": "A", "domain": "cs", "relations": [{"relation": "LIKES", "tail": "b"}]}) + "\n"
        + json.dumps({"id": "b", "name": "B", "domain": "art", "relations": [{"relation": "IS_A", "tail": "zzz"}]})
        + "\n"
        + "{broken\n"
    )
    with pytest.raises(VocabularyError) as err:
        load_vocabulary([p])
    msg = str(err.value)
    assert f"{p}:1: unknown relation 'LIKES'" in msg and f"{p}:2: unknown domain 'art'" in msg
    assert f"{p}:2: relation IS_A points to unknown concept 'zzz'" in msg and f"{p}:3: broken JSON" in msg


def test_resolution_merges_and_keeps_aliases():
    concepts = {
        "hash-table": C("hash-table", "hash table", "cs", ["hashmap"]),
        "hash-tables": C("hash-tables", "Hash Tables", "cs"),
        "heap": C("heap", "heap", "cs", ["priority queue"]),
        "priority-queue": C("priority-queue", "priority queue", "cs"),
    }
    triples = [Triple("hash-tables", "USES", "heap", 1.0, "curated"),
               Triple("hash-table", "USES", "heap", 1.0, "curated")]
    vecs = {k: np.eye(4)[i] for i, k in enumerate(concepts)}
    out, remapped, merges, ambiguous = resolve_concepts(concepts, triples, vecs)
    assert "hash-tables" not in out and "Hash Tables" in out["hash-table"].aliases
    assert [(t.head, t.relation, t.tail) for t in remapped] == [("hash-table", "USES", "heap")]
    assert any(m.merged == "hash-tables" for m in merges)
    # "priority queue" is an alias of heap but names another concept with a different meaning: removed
    assert "priority queue" not in out["heap"].aliases and "priority-queue" in out
    assert ambiguous


@pytest.fixture(scope="module")
def extractor():
    concepts = {
        "lora": C("lora", "LoRA", aliases=["low-rank adaptation"]),
        "parameter-efficient-fine-tuning": C("parameter-efficient-fine-tuning", "parameter-efficient fine-tuning"),
        "adam": C("adam", "Adam"),
        "momentum": C("momentum", "momentum"),
        "bagging": C("bagging", "bagging"),
        "boosting": C("boosting", "boosting"),
        "perplexity": C("perplexity", "perplexity"),
        "language-model": C("language-model", "language model"),
        "probability": C("probability", "probability", "stats"),
        "bayesian-inference": C("bayesian-inference", "Bayesian inference", "stats"),
        "ensemble-learning": C("ensemble-learning", "ensemble method"),
    }
    return ConceptExtractor(concepts)


@pytest.mark.parametrize(
    "sentence, expected",
    [
        ("LoRA is a kind of parameter-efficient fine-tuning.", ("lora", "IS_A", "parameter-efficient-fine-tuning")),
        ("Adam uses momentum on every coordinate.", ("adam", "USES", "momentum")),
        ("Unlike bagging, boosting trains models one after another.", ("bagging", "CONTRASTS_WITH", "boosting")),
        ("Perplexity measures how well a language model predicts text.", None),
        ("Perplexity measures language model quality.", ("perplexity", "MEASURES", "language-model")),
        ("Bayesian inference requires probability.", ("probability", "PREREQUISITE_OF", "bayesian-inference")),
        ("Ensemble methods such as bagging reduce variance.", ("bagging", "IS_A", "ensemble-learning")),
        ("Low-rank adaptation relies on momentum.", ("lora", "USES", "momentum")),
        ("Adam and bagging appear in one sentence.", None),
    ],
)
def test_patterns(extractor, sentence, expected):
    triples, mentions = extractor.extract([Document("d1", sentence)])
    keys = [t.key for t in triples]
    if expected is None:
        assert all(k[1] != "MEASURES" for k in keys) if "measures how" in sentence else keys == []
    else:
        assert expected in keys, keys
        t = triples[keys.index(expected)]
        assert t.provenance == ["d1"] and t.sentence == sentence and 0 < t.confidence <= 1


def test_mentions_match_plurals_and_aliases(extractor):
    doc = extractor.nlp.make_doc("Several language models use low-rank adaptation.")
    assert [m.concept for m in extractor.mentions(doc)] == ["language-model", "lora"]


def test_cooccurrence_uses_npmi_and_keeps_provenance():
    from collections import Counter

    docs = {f"d{i}": Counter({"a": 1, "b": 1}) for i in range(3)}
    docs.update({f"e{i}": Counter({"c": 1}) for i in range(6)})
    docs["x"] = Counter({"a": 1, "c": 1})
    out = cooccurrence_triples(docs, min_count=2, min_npmi=0.2)
    assert [(t.head, t.tail) for t in out] == [("a", "b")]
    assert out[0].provenance == ["d0", "d1", "d2"] and out[0].relation == "RELATED_TO"


def test_merge_triples_unites_provenance():
    a = Triple("x", "USES", "y", 0.8, "pattern", ["q1"], "s1")
    b = Triple("x", "USES", "y", 0.8, "pattern", ["q2"], "s2")
    (m,) = merge_triples([a, b])
    assert m.provenance == ["q1", "q2"] and m.confidence > 0.8


def test_mention_forms_add_plurals():
    forms = mention_forms({"heap": C("heap", "binary heap", "cs", ["min-heap"])})["heap"]
    assert "binary heaps" in forms and "min-heaps" in forms


def test_exports_escape_everything(tmp_path):
    evil = "A\"}) DETACH DELETE n // it's \\ <b>"
    concepts = [{"id": "x", "name": evil, "domain": "cs", "aliases": ["a;b"], "definition": "d",
                 "source": "vocabulary"},
                {"id": "y", "name": "Y", "domain": "ai", "aliases": [], "definition": "", "source": "vocabulary"}]
    triples = [{"head": "x", "relation": "USES", "tail": "y", "confidence": 0.5, "source": "pattern",
                "provenance": ["q1"], "sentence": evil}]
    files = export_csv(concepts, triples, tmp_path / "csv")
    import csv

    rows = list(csv.reader(open(files[0], encoding="utf-8")))
    assert rows[0][0] == "id:ID(Concept)" and rows[1][1] == evil
    assert list(csv.reader(open(files[1])))[0][:3] == [":START_ID(Concept)", ":END_ID(Concept)", ":TYPE"]
    script = export_cypher(concepts, triples, tmp_path / "g.cypher")[0].read_text()
    assert cypher_string(evil) in script and "DETACH DELETE n // it\\'s" in script
    import xml.etree.ElementTree as ET

    root = ET.parse(export_graphml(concepts, triples, tmp_path / "g.graphml")[0]).getroot()
    names = [d.text for d in root.iter("{http://graphml.graphdrawing.org/xmlns}data") if d.get("key") == "name"]
    assert evil in names


def test_kg_config_rejects_bad_values():
    with pytest.raises(ValueError) as err:
        KGConfig(hops=9, max_nodes=0, pcst_edge_cost=0)
    assert "hops" in str(err.value) and "max_nodes" in str(err.value) and "pcst_edge_cost" in str(err.value)
