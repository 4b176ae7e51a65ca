"""The study app's grader on hand-made examples (tests.fixtures.study: seven concepts, three questions,
a bag-of-words embedder so every cosine can be worked out by hand), and once with the bundled MiniLM."""

import pytest

from evaluation.study.grader import MAX_ANSWER_CHARS, AnswerError, Grader, check_answer, rating_for, split_sentences
from tests.fixtures.study import ITEMS, tiny_guide

HASH = ITEMS[0]


@pytest.fixture
def grader():
    return Grader(tiny_guide())


def names(concepts):
    return [c["name"] for c in concepts]


def test_the_reference_answer_grades_full_marks(grader):
    g = grader.grade(HASH, HASH.answer)
    assert g.score == 1.0 and g.rating == "easy"
    assert all(k.covered for k in g.key_points) and len(g.key_points) == 4
    assert names(g.concepts_named) == ["hash table", "hash function", "collision"]  # "model" is generic: left out
    assert g.concepts_missed == [] and g.prerequisites == []
    assert g.similarity == {"minilm_cosine": 1.0, "rouge_l": 1.0}
    assert g.reference_answer == HASH.answer


def test_a_partial_answer_names_what_it_missed_with_definitions_and_prerequisites(grader):
    g = grader.grade(HASH, "A hash table stores key-value pairs in an array of buckets.")
    assert [k.covered for k in g.key_points] == [True, False, False, False]
    assert g.key_points[0].matched_sentence == "A hash table stores key-value pairs in an array of buckets."
    assert names(g.concepts_named) == ["hash table"]
    assert g.concepts_missed == [
        {
            "id": "hash-function",
            "name": "hash function",
            "definition": "A hash function maps a key to a fixed-size integer.",
        },
        {"id": "collision", "name": "collision", "definition": "A collision is two keys hashing to the same bucket."},
    ]
    assert g.concept_coverage == pytest.approx(1 / 3)
    # modular arithmetic is a prerequisite of the missed hash function; hash function itself is listed as missed
    assert [(p["name"], p["for"]) for p in g.prerequisites] == [("modular arithmetic", ["hash function"])]
    # one key point in full; the others share only a few words with it, so earn little credit
    assert 0.25 <= g.parts["key_points"] < 0.5 and 0.3 <= g.score < 0.8


def test_an_answer_to_another_question_fails(grader):
    partial = grader.grade(HASH, "A hash table stores key-value pairs in an array of buckets.")
    wrong = grader.grade(HASH, ITEMS[1].answer)
    assert wrong.rating == "again" and wrong.score < partial.score
    assert not any(k.covered for k in wrong.key_points)
    assert names(wrong.concepts_named) == []


def test_an_alias_counts_as_naming_the_concept(grader):
    g = grader.grade(HASH, "A hash map is what I would use.")
    assert "hash table" in names(g.concepts_named)


def test_practise_next_puts_questions_on_missed_concepts_first(grader):
    g = grader.grade(HASH, "A hash table stores key-value pairs in an array of buckets.")
    # cs-3 is about collisions (missed); cs-2 shares no missed concept
    assert [q["id"] for q in g.practise_next] == ["cs-3", "cs-2"]
    assert g.practise_next[0]["question"] == ITEMS[2].question


def test_html_in_an_answer_is_graded_as_plain_text(grader):
    g = grader.grade(HASH, "<script>alert(1)</script> A hash function maps each key to a bucket.")
    assert g.key_points[1].covered
    assert "hash function" in names(g.concepts_named)


@pytest.mark.parametrize(
    "answer, message",
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        (None, "must be text"),
        (12, "must be text"),
        ("x" * (MAX_ANSWER_CHARS + 1), "over the 10,000-character limit"),
    ],
)
def test_bad_answers_are_refused_with_a_reason(grader, answer, message):
    with pytest.raises(AnswerError, match=message):
        grader.grade(HASH, answer)


def test_check_answer_strips_and_keeps_the_longest_allowed():
    assert check_answer("  an answer \n") == "an answer"
    assert len(check_answer("y" * MAX_ANSWER_CHARS)) == MAX_ANSWER_CHARS


def test_ratings_follow_the_score_thresholds():
    assert [rating_for(s) for s in (0.0, 0.29, 0.3, 0.54, 0.55, 0.79, 0.8, 1.0)] == [
        "again",
        "again",
        "hard",
        "hard",
        "good",
        "good",
        "easy",
        "easy",
    ]


def test_sentences_are_split_where_a_reader_would():
    assert split_sentences("The mean, e.g. 3.5 here, is high. It uses O(n log n) time!\nk-NN is lazy") == [
        "The mean, e.g. 3.5 here, is high.",
        "It uses O(n log n) time!",
        "k-NN is lazy",
    ]
    assert split_sentences("  ...  ") == []


def test_with_minilm_a_paraphrase_covers_a_key_point_and_an_unrelated_sentence_does_not():
    from data.embedding import get_embedder

    grader = Grader(tiny_guide(get_embedder()))
    g = grader.grade(HASH, "Every key goes through a hash function that picks its bucket. Cats sleep most of the day.")
    covered = {k.text: k.covered for k in g.key_points}
    assert covered["A hash function maps each key to a bucket."]
    assert not covered["Collisions are resolved by chaining or by open addressing."]
    assert g.key_points[1].matched_sentence == "Every key goes through a hash function that picks its bucket."
