"""The relation-type and alias checks (kg.checks), where the build applies them, and context-ruled aliases."""
import json

import numpy as np
import pytest

from kg.builder import check_graph, drop_conflicts
from kg.checks import alias_problems, load_ambiguous, relation_conflicts
from kg.extract import ConceptExtractor
from kg.resolve import mention_forms, normal_form, resolve_concepts
from kg.schema import Concept, Triple
from kg.vocabulary import VocabularyError, load_vocabulary

AMBIGUOUS = {"ANN": "artificial neural network; approximate nearest neighbour search", "CI": "x; y"}


def C(cid, name=None, aliases=(), definition="", context=None):
    name = name or cid.replace("-", " ")
    return Concept(cid, name, "ai", list(aliases), definition, alias_context=dict(context or {}))


def T(h, r, t, source="curated", conf=1.0):
    return Triple(h, r, t, conf, source)


def test_contradicting_relation_types_are_found():
    keys = [("nesterov", "IS_A", "momentum"), ("momentum", "CONTRASTS_WITH", "nesterov"),  # reversed pair too
            ("a", "IS_A", "b"), ("b", "IS_A", "a"),
            ("dropout", "USED_FOR", "overfitting"), ("dropout", "MITIGATES", "overfitting"),
            # combinations that do not contradict: another type, or the other direction
            ("x", "USES", "y"), ("x", "PREREQUISITE_OF", "y"), ("y", "USED_FOR", "x"),
            ("x", "MITIGATES", "z"), ("z", "USED_FOR", "x")]
    found = {(a, b) for a, b, _ in relation_conflicts(keys)}
    assert found == {
        (("nesterov", "IS_A", "momentum"), ("momentum", "CONTRASTS_WITH", "nesterov")),
        (("a", "IS_A", "b"), ("b", "IS_A", "a")),
        (("dropout", "USED_FOR", "overfitting"), ("dropout", "MITIGATES", "overfitting")),
    }


def _write_vocab(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_vocabulary_with_is_a_and_contrasts_on_one_pair_is_refused(tmp_path):
    rows = [{"id": "gan", "name": "GAN", "domain": "ai", "relations": [{"relation": "CONTRASTS_WITH", "tail": "vae"}]},
            {"id": "cgan", "name": "cGAN", "domain": "ai", "relations": [{"relation": "IS_A", "tail": "gan"}]},
            {"id": "vae", "name": "VAE", "domain": "ai"}]
    p = _write_vocab(tmp_path / "concepts_x.jsonl", rows)
    assert len(load_vocabulary([p], ambiguous={}).curated) == 2
    rows[0]["relations"].append({"relation": "CONTRASTS_WITH", "tail": "cgan"})
    _write_vocab(p, rows)
    with pytest.raises(VocabularyError) as err:
        load_vocabulary([p], ambiguous={})
    expected = f"{p}:2: cgan IS_A gan contradicts gan CONTRASTS_WITH cgan ({p}:1): IS_A and CONTRASTS_WITH exclude"
    assert expected in str(err.value)


def test_alias_that_names_another_concept_or_is_shared_is_refused():
    concepts = {
        "neural-network": C("neural-network", aliases=["neural networks", "ANN"]),
        "ann-search": C("ann-search", "approximate nearest neighbour search", aliases=["ANN", "vector search"]),
        "dense-retrieval": C("dense-retrieval", aliases=["Vector Search"]),
        "kernel-trick": C("kernel-trick", aliases=["kernel methods"]),
        "kernel-method": C("kernel-method", "kernel method"),
    }
    problems = alias_problems(concepts, {}, {"kernel-trick": "v.jsonl:4"})
    text = "\n".join(problems)
    assert "neural-network: alias 'ANN' is also the alias of ann-search" in text
    assert "ann-search: alias 'ANN' is also the alias of neural-network" in text
    assert "ann-search: alias 'vector search' is also the alias of dense-retrieval" in text  # case-folded
    assert "v.jsonl:4: kernel-trick: alias 'kernel methods' is also the name of kernel-method" in text  # plural folded
    assert len(problems) == 5  # two clashing pairs seen from each side, and the alias that is a name
    assert not alias_problems({k: v for k, v in concepts.items() if k in ("neural-network", "kernel-method")}, {})


def test_ambiguous_abbreviation_needs_a_context_rule():
    plain = {"nn": C("nn", "neural network", aliases=["ANN", "ANNs"])}
    problems = alias_problems(plain, AMBIGUOUS)
    assert len(problems) == 2 and all("several meanings (artificial neural network; approximate" in p for p in problems)
    ruled = {"nn": C("nn", "neural network", aliases=["ANN"], context={"ANN": ["layer", "neuron"]})}
    assert alias_problems(ruled, AMBIGUOUS) == []
    bad = {"nn": C("nn", "neural network", aliases=["ANN"], context={"ANN": [], "NN": ["layer"]})}
    assert {p.split(": ", 1)[1] for p in alias_problems(bad, AMBIGUOUS)} == {
        "alias_context for 'ann' needs a non-empty list of cue words",
        "alias_context names 'nn', which is not one of its aliases",
    }


def test_case_sensitive_short_forms_do_not_clash_and_plus_is_not_dropped():
    concepts = {
        "mean-average-precision": C("mean-average-precision", aliases=["mAP"]),
        "map-estimation": C("map-estimation", aliases=["MAP"]),
        "b-tree": C("b-tree", "B-tree", aliases=["B-trees"]),
        "b-plus-tree": C("b-plus-tree", "B+ tree", aliases=["B+ trees"]),
        "http": C("http", "HTTP"), "https": C("https", "HTTPS", aliases=["HTTP Secure"]),
    }
    assert alias_problems(concepts, {}) == []
    assert normal_form("B+ trees") == "b-plus-tree" != normal_form("B-trees")
    assert normal_form("HTTPS") != normal_form("HTTP")


def test_shipped_ambiguous_list_parses_and_names_the_issue_cases():
    amb = load_ambiguous()
    assert {"ANN", "CI", "ML", "SSL", "log"} <= set(amb) and all(";" in m for m in amb.values())


def test_resolution_keeps_apart_names_that_differ_only_in_number_when_meanings_differ(caplog):
    concepts = {
        "logit": C("logit", "logit", definition="The logit is the log of the odds."),
        "logits": C("logits", "logits", definition="Logits are a model's scores before a softmax."),
        "hash-table": C("hash-table", "hash table"), "hash-tables": C("hash-tables", "Hash Tables"),
    }
    vecs = {k: np.eye(4)[i] for i, k in enumerate(concepts)}
    with caplog.at_level("INFO", logger="kg.resolve"):
        out, _, merges, removed = resolve_concepts(concepts, [], vecs)
    assert {"logit", "logits"} <= set(out) and [m.merged for m in merges] == ["hash-tables"]
    assert removed == [] and "differ only in number" in caplog.text
    # with definitions that agree (same vector) they are one concept
    vecs["logits"] = vecs["logit"]
    out, _, merges, _ = resolve_concepts({k: C(k, k, definition="d") for k in ("logit", "logits")}, [], vecs)
    assert len(out) == 1
    # "logits" is not generated as a plural of "logit" while another concept owns that name
    forms = mention_forms({"logit": C("logit", "logit"), "logits": C("logits", "logits")})
    assert forms == {"logit": ["logit"], "logits": ["logits"]}


@pytest.fixture(scope="module")
def extractor():
    concepts = {
        "ann-search": C("ann-search", "approximate nearest neighbour search",
                        aliases=["ANN"], context={"ANN": ["nearest", "vector", "index"]}),
        "mean-average-precision": C("mean-average-precision", "mean average precision", aliases=["mAP"]),
        "big-o-notation": C("big-o-notation", "Big O notation", aliases=["big-O"]),
    }
    return ConceptExtractor(concepts)


@pytest.mark.parametrize("text, context, expected", [
    ("Small ANN recall losses are invisible.", "Tune the vector index for recall.", ["ann-search"]),
    ("Small ANN recall losses are invisible.", "An ANN with three hidden layers.", []),
    ("Detectors report mAP at 0.5.", None, ["mean-average-precision"]),
    ("The MAP estimate is the posterior mode.", None, []),      # another abbreviation
    ("Hash functions map keys to slots.", None, []),             # an ordinary verb
    ("Big-O is only an upper bound.", None, ["big-o-notation"]),  # a sentence start capitalises "big-O"
])
def test_linking_honours_casing_and_context_rules(extractor, text, context, expected):
    doc = extractor.nlp.make_doc(text)
    assert [m.concept for m in extractor.mentions(doc, context=context)] == expected


def test_build_drops_extracted_triples_that_contradict_and_refuses_curated_contradictions():
    triples = [T("np-complete", "IS_A", "np-hard"), T("np-complete", "CONTRASTS_WITH", "np-hard", "pattern", 0.8),
               T("dropout", "MITIGATES", "overfitting"), T("dropout", "USED_FOR", "overfitting", "llm", 0.7)]
    kept, dropped = drop_conflicts(triples)
    assert [t.key for t in kept] == [("np-complete", "IS_A", "np-hard"), ("dropout", "MITIGATES", "overfitting")]
    assert len(dropped) == 2 and all("dropped" in d for d in dropped)
    concepts = {c: C(c) for c in ("np-complete", "np-hard", "dropout", "overfitting")}
    check_graph(concepts, kept)
    with pytest.raises(ValueError, match="IS_A and CONTRASTS_WITH exclude each other"):
        check_graph(concepts, [T("np-complete", "IS_A", "np-hard"), T("np-hard", "CONTRASTS_WITH", "np-complete")])
    concepts["dropout"].aliases = ["overfitting"]
    with pytest.raises(ValueError, match="alias 'overfitting' is also the name of overfitting"):
        check_graph(concepts, kept)


def test_index_linking_uses_stored_context_rules():
    from kg.index import GraphIndex

    names = ["approximate nearest neighbour search", "neural network"]
    idx = GraphIndex(ids=["ann-search", "neural-network"], names=names,
                     definitions=["", ""], aliases=[["ANN"], ["neural net"]], node_emb=np.eye(2, dtype=np.float32),
                     edge_src=np.array([0]), edge_dst=np.array([1]), edge_rel=np.array([8]), edge_conf=np.ones(1),
                     alias_context=[{"ANN": ["vector", "index"]}, {}])
    assert idx.lexical_matches("How does an ANN index trade recall for speed?") == ["ann-search"]
    assert idx.lexical_matches("How many layers should an ANN have?") == []
    assert idx.edge_text(0) == "approximate nearest neighbour search counters neural network"
