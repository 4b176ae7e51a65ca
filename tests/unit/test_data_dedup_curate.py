import numpy as np
import pytest

from data.curate import quality_score, select_training_items, stratum_quotas
from data.dedup import deduplicate, minhash_pairs, minhash_signatures
from data.schema import QAItem
from data.split import carve_stratified, make_splits


def q(i, question, domain="cs"):
    return QAItem(id=f"q{i}", domain=domain, question=question, answer="An answer with several words in it. " * 8,
                  difficulty="basic", tags=("t",))


def test_exact_and_near_duplicates_with_the_bundled_embedder():
    items = [
        q(1, "What is a hash table?"),
        q(2, "what is a HASH table"),  # exact after folding
        q(3, "What is a hash map and how does it work?"),
        q(4, "Can you explain what a hash map is and how it works?"),  # near duplicate of q3
        q(5, "What is the central limit theorem?", "stats"),
    ]
    kept, pairs = deduplicate(items, near_threshold=0.85)
    kinds = {(p.kept, p.dropped): p.kind for p in pairs}
    assert kinds[("q1", "q2")] == "exact"
    assert ("q3", "q4") in kinds and kinds[("q3", "q4")] == "near"
    assert {it.id for it in kept} >= {"q1", "q3", "q5"}
    assert "q2" not in {it.id for it in kept} and "q4" not in {it.id for it in kept}


def test_minhash_finds_reworded_copies_only():
    texts = [
        "how does a hash table resolve collisions between two keys",
        "how does a hash table resolve collisions between two keys quickly",
        "what is the difference between a process and a thread",
    ]
    pairs = minhash_pairs(minhash_signatures(texts), 0.6)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]


def test_quality_prefers_clean_answers():
    good = QAItem("a", "ai", "What is dropout?", "Dropout randomly zeroes activations during training. " * 10,
                  tags=("dl",))
    bad = QAItem("b", "ai", "What is dropout?", "dropout ### Question: what is", tags=("dl",))
    assert quality_score(good) > quality_score(bad)


def test_quotas_sum_and_follow_proportions(items):
    quotas = stratum_quotas(items, 9)
    assert sum(quotas.values()) == 9
    with pytest.raises(ValueError):
        stratum_quotas(items, 100)


def test_selection_balances_domains_and_topics_deterministically(items):
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(len(items), 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    emb = {it.id: v for it, v in zip(items, vecs)}
    a = select_training_items(items, 9, emb)
    b = select_training_items(list(reversed(items)), 9, emb)
    assert a == b
    assert sorted(sum(1 for it in a if it.domain == d) for d in ("cs", "stats", "ai")) == [3, 3, 3]
    for d in ("cs", "stats", "ai"):  # both topics of each domain are represented
        assert len({it.topic for it in a if it.domain == d}) == 2


def test_splits_are_disjoint_and_sized(items):
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(len(items), 8)).astype(np.float32)
    emb = {it.id: v / np.linalg.norm(v) for it, v in zip(items, vecs)}
    s = make_splits(items, train_size=9, dev_size=3, seed=3, embeddings=emb)
    ids = [set(x.id for x in part) for part in (s.train, s.dev, s.eval)]
    assert len(ids[0]) == 6 and len(ids[1]) == 3 and len(ids[2]) == 9
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    rest, taken = carve_stratified(items, 6, seed=5)
    assert len(taken) == 6 and {it.domain for it in taken} == {"cs", "stats", "ai"}


def _item(i, question, answer, domain="cs"):
    return QAItem(id=f"p{i}", domain=domain, question=question, answer=answer, difficulty="basic", tags=("t",))


TAIL_A = ("A call is a tail call when it is the last action of a function, so the compiler can reuse the current "
          "stack frame and run the recursion in constant stack space. The accumulator version of factorial, "
          "fact(n - 1, n * acc), is tail-recursive; the naive n * fact(n - 1) is not. Scheme requires tail-call "
          "elimination, Python does not.")
TAIL_B = ("Tail call optimisation reuses the current stack frame when a function's last action is to call a function "
          "and return its result, so a tail-recursive factorial written with an accumulator, fact(n - 1, acc * n), "
          "needs constant stack space. Scheme guarantees proper tail calls; Python omits the optimisation to keep "
          "tracebacks.")
HEAP_A = ("A binary heap is a complete binary tree stored in an array where each parent is no larger than its "
          "children, so the minimum sits at the root; insertion and extract-min sift one element along a path in "
          "O(log n).")


def test_paraphrases_across_sources_are_merged_with_their_similarities():
    items = [_item(1, "What is tail recursion, and why does it matter?", TAIL_A),
             _item(2, "What is tail call optimisation, and why does it matter?", TAIL_B),
             _item(3, "How does a binary heap support extract-min?", HEAP_A)]
    groups = {"p1": "cs_algorithms.jsonl", "p2": "cs_data_software.jsonl", "p3": "cs_data_software.jsonl"}
    kept, pairs = deduplicate(items, near_threshold=0.9, paraphrase_threshold=0.45, groups=groups)
    assert [it.id for it in kept] == ["p1", "p3"]
    (pair,) = pairs
    d = pair.to_dict()
    assert (d["kept"], d["dropped"], d["kind"]) == ("p1", "p2", "paraphrase")
    assert d["question_similarity"] < 0.9  # the near-duplicate rule alone keeps this pair
    parts = d["question_similarity"] + d["answer_similarity"] + 2 * d["lexical_similarity"]
    assert d["score"] == pytest.approx(parts / 4, abs=2e-4)
    # written in one source, the same pair is two questions an author meant to ask: kept apart
    same = {"p1": "one.jsonl", "p2": "one.jsonl", "p3": "one.jsonl"}
    assert len(deduplicate(items, near_threshold=0.9, paraphrase_threshold=0.45, groups=same)[0]) == 3
    # the check is off by default
    assert len(deduplicate(items, near_threshold=0.9)[0]) == 3


def _unit(rows):
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_paraphrase_merges_are_strongest_first_never_join_one_source_and_do_not_depend_on_order():
    # a and c are one source; b (another source) resembles both, c more closely than a
    texts = {"a": ("What is x?", "alpha beta gamma delta"), "b": ("Tell me x.", "alpha beta gamma epsilon"),
             "c": ("Explain x.", "alpha beta gamma epsilon zeta"),
             "d": ("Something else?", "omega psi chi")}
    items = [_item(k, q, a) for k, (q, a) in texts.items()]
    ids = [it.id for it in items]
    q = dict(zip(ids, _unit([[1, 0.2, 0], [1, 0.3, 0], [1, 0.25, 0], [0, 0, 1]])))
    a = dict(zip(ids, _unit([[1, 0.1, 0], [1, 0.2, 0], [1, 0.2, 0.01], [0, 1, 0]])))
    groups = {"pa": "s1", "pb": "s2", "pc": "s1", "pd": "s3"}
    kw = dict(near_threshold=0.999, paraphrase_threshold=0.6, embeddings=q, answer_embeddings=a, groups=groups)
    kept, pairs = deduplicate(items, **kw)
    # b-c is the strongest pair and merges first; then a-b would put a and c (one source) together: refused
    assert [p.to_dict()["kept"] for p in pairs] == ["pb"] and [p.dropped for p in pairs] == ["pc"]
    assert [it.id for it in kept] == ["pa", "pb", "pd"]
    again = deduplicate(list(reversed(items)), **kw)
    assert [it.id for it in again[0]] == [it.id for it in kept]
    assert [p.to_dict() for p in again[1]] == [p.to_dict() for p in pairs]


def test_lexical_similarity_ignores_function_words():
    from data.dedup import lexical_similarity

    sim = lexical_similarity(["the cache line holds sixty four bytes", "a cache line holds sixty four bytes",
                              "the of and in to", "gradient descent moves downhill", "gradient descent is of the past",
                              "downhill skiing"])
    assert sim[0, 1] == pytest.approx(1.0, abs=1e-6)  # they differ only in an article
    assert sim[2].max() == 0.0  # nothing but function words: no evidence at all
    assert 0 < sim[3, 4] < 1 and sim[0, 3] == 0.0
    # a word found in one text only cannot be shared, and is left out rather than diluting that text
    assert sim[4, 3] == pytest.approx(lexical_similarity(["gradient descent moves downhill", "gradient descent past",
                                                         "downhill skiing"])[1, 0], abs=1e-6)


def test_data_config_checks_the_paraphrase_threshold():
    from data.config import DataConfig

    assert DataConfig(paraphrase_threshold=None).paraphrase_threshold is None
    with pytest.raises(ValueError, match="paraphrase_threshold must be in"):
        DataConfig(paraphrase_threshold=1.5)
