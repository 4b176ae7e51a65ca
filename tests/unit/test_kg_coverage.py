"""kg.coverage: concepts named in a text by the graph's own linker, coverage of a reference's concepts,
generic concepts, and prerequisites read the right way round."""

from kg.coverage import concept_coverage, concepts_in, coverage_of, generic_concepts, prerequisites
from tests.fixtures.study import tiny_index


def test_concepts_in_matches_names_aliases_and_plurals_in_order():
    idx = tiny_index()
    text = "Collisions happen in a Hash Map when the hash function sends two keys to one bucket."
    assert concepts_in(idx, text) == ["collision", "hash-table", "hash-function"]
    assert concepts_in(idx, text, ignore={"collision"}) == ["hash-table", "hash-function"]
    assert concepts_in(idx, "Nothing the graph knows about.") == []


def test_concept_coverage_names_what_was_named_missed_and_added():
    idx = tiny_index()
    reference = "A hash table uses a hash function; collisions are resolved by chaining."
    cov = concept_coverage(idx, reference, "A hash map hashes keys. Binary search is unrelated.")
    assert cov.reference == ["hash-table", "hash-function", "collision"]
    assert cov.named == ["hash-table"]
    assert cov.missed == ["hash-function", "collision"]
    assert cov.extra == ["binary-search"]
    assert cov.coverage == 1 / 3
    assert cov.to_dict()["coverage"] == 1 / 3


def test_coverage_is_none_when_the_reference_names_no_concept():
    cov = coverage_of([], ["hash-table"])
    assert cov.coverage is None and cov.missed == [] and cov.extra == ["hash-table"]


def test_generic_concepts_are_those_in_more_than_their_share_of_texts():
    idx = tiny_index()
    texts = ["a model of hashing"] * 5 + ["binary search"] + ["other text"] * 4
    assert generic_concepts(idx, texts, max_df=0.3) == {"model"}  # 5 of 10 > 3; binary search in 1 is not
    assert generic_concepts(idx, texts, max_df=0.6) == set()


def test_prerequisites_follow_the_edge_direction():
    idx = tiny_index()
    # "hash function is a prerequisite of hash table": the table's prerequisite is the function, not the reverse
    assert prerequisites(idx, ["hash-table"]) == [("hash-function", "hash-table")]
    assert prerequisites(idx, ["hash-function"]) == [("modular-arithmetic", "hash-function")]
    assert prerequisites(idx, ["modular-arithmetic"]) == []
    assert set(prerequisites(idx, ["hash-table", "binary-search", "unknown"])) == {
        ("hash-function", "hash-table"),
        ("sorted-array", "binary-search"),
    }
