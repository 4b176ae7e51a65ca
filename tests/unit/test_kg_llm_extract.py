import json

from kg.llm_extract import TRIPLES_SCHEMA, build_prompt, llm_extract
from kg.schema import RELATIONS, Concept

CONCEPTS = [Concept("dropout", "dropout", "ai", ["dropout layer"]),
            Concept("overfitting", "overfitting", "ai", ["over-fitting"]),
            Concept("regularization", "regularization", "ai", ["regularisation"])]
TEXT = "Dropout is a regularisation technique that reduces over-fitting."


def test_schema_closes_the_relation_set():
    enum = TRIPLES_SCHEMA["properties"]["triples"]["items"]["properties"]["relation"]["enum"]
    assert enum == list(RELATIONS)


def test_prompt_lists_relations_concepts_and_text():
    p = build_prompt(TEXT, CONCEPTS)
    assert "PREREQUISITE_OF" in p and "dropout (dropout)" in p and TEXT in p


def test_answers_are_validated_against_the_passage():
    answer = {"triples": [
        {"head": "dropout", "relation": "IS_A", "tail": "Regularisation"},       # alias: accepted
        {"head": "dropout", "relation": "mitigates", "tail": "over-fitting"},     # lower-case type, alias: accepted
        {"head": "dropout", "relation": "CAUSES", "tail": "overfitting"},         # not in the closed set
        {"head": "dropout", "relation": "USES", "tail": "batch normalization"},   # not mentioned in the passage
        {"head": "dropout", "relation": "IS_A", "tail": "dropout"},               # self loop
    ]}
    prompts = []

    def complete(prompt):
        prompts.append(prompt)
        return "```json\n" + json.dumps(answer) + "\n```"

    triples = llm_extract("q1", TEXT, CONCEPTS, complete)
    assert [t.key for t in triples] == [("dropout", "IS_A", "regularization"), ("dropout", "MITIGATES", "overfitting")]
    assert all(t.source == "llm" and t.provenance == ["q1"] and t.sentence == TEXT for t in triples)
    assert len(prompts) == 1


def test_garbage_and_single_concept_passages():
    assert llm_extract("q2", TEXT, CONCEPTS, lambda p: "I think dropout is good") == []
    assert llm_extract("q3", "Dropout only.", CONCEPTS[:1], lambda p: 1 / 0) == []  # not even called
