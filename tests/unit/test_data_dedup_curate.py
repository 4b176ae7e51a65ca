import numpy as np
import pytest

from data.curate import quality_score, select_training_items, stratum_quotas
from data.dedup import deduplicate, minhash_pairs, minhash_signatures
from data.schema import QAItem
from data.split import carve_stratified, make_splits


def q(i, question, domain="cs"):
    return QAItem(id=f"q{i}", domain=domain, question=question, answer="An answer with several words in it. " * 8, difficulty="basic", tags=("t",))


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
    good = QAItem("a", "ai", "What is dropout?", "Dropout randomly zeroes activations during training. " * 10, tags=("dl",))
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
