"""Every Cypher statement the project sends, as named constants (neo4j-graphrag's habit).

All are parameterised: user text (concept names, definitions, sentences) travels only in $parameters,
never formatted into a statement. Writes are batched `UNWIND $rows AS row MERGE ...`, so building twice
leaves the same graph. Relationship types cannot be parameters in Cypher, so there is one upsert per
type of the closed set in kg.schema.RELATIONS (none from user input). Index and constraint syntax
differs between Neo4j and FalkorDB, so each backend owns its schema statements (listed here too).
"""
from __future__ import annotations

from kg.schema import RELATIONS

UPSERT_CONCEPTS = """
UNWIND $rows AS row
MERGE (c:Concept {id: row.id})
SET c.name = row.name, c.domain = row.domain, c.aliases = row.aliases,
    c.alias_context = row.alias_context, c.definition = row.definition, c.source = row.source, c.build = $build
"""

UPSERT_QA = """
UNWIND $rows AS row
MERGE (q:QA {id: row.id})
SET q.question = row.question, q.domain = row.domain, q.build = $build
"""

UPSERT_MENTIONS = """
UNWIND $rows AS row
MATCH (q:QA {id: row.qa})
MATCH (c:Concept {id: row.concept})
MERGE (q)-[m:MENTIONS]->(c)
SET m.count = row.count, m.build = $build
"""

_UPSERT_TRIPLES = """
UNWIND $rows AS row
MATCH (h:Concept {{id: row.head}})
MATCH (t:Concept {{id: row.tail}})
MERGE (h)-[r:{rel}]->(t)
SET r.confidence = row.confidence, r.source = row.source, r.sentence = row.sentence,
    r.provenance = row.provenance, r.build = $build
"""
# one statement per relation type of the closed set
UPSERT_TRIPLES: dict[str, str] = {rel: _UPSERT_TRIPLES.format(rel=rel) for rel in RELATIONS}

# Domain labels (:CS, :Stats, :AI) next to :Concept, so Neo4j Browser's stylesheet can colour by domain.
DOMAIN_LABELS = {"cs": "CS", "stats": "Stats", "ai": "AI"}
SET_DOMAIN_LABELS: dict[str, str] = {
    d: f"MATCH (c:Concept) WHERE c.domain = '{d}' SET c:{label}" for d, label in DOMAIN_LABELS.items()
}
REMOVE_STALE_DOMAIN_LABELS: dict[str, str] = {
    d: f"MATCH (c:{label}) WHERE c.domain <> '{d}' REMOVE c:{label}" for d, label in DOMAIN_LABELS.items()
}

SET_META = """
MERGE (m:Meta {key: $key})
SET m.value = $value
"""

GET_META = """
MATCH (m:Meta {key: $key})
RETURN m.value AS value
"""

COUNT_CONCEPTS = "MATCH (c:Concept) RETURN count(c) AS n"

COUNT_QA = "MATCH (q:QA) RETURN count(q) AS n"

COUNT_TRIPLES_BY_RELATION = """
MATCH (:Concept)-[r]->(:Concept)
RETURN type(r) AS relation, count(r) AS n
ORDER BY relation
"""

COUNT_ISOLATED = """
MATCH (c:Concept)
OPTIONAL MATCH (c)-[r]-(:Concept)
WITH c, count(r) AS degree
WHERE degree = 0
RETURN count(c) AS n
"""

ALL_CONCEPTS = """
MATCH (c:Concept)
RETURN c.id AS id, c.name AS name, c.domain AS domain, c.aliases AS aliases,
       c.alias_context AS alias_context, c.definition AS definition, c.source AS source
ORDER BY id
"""

ALL_TRIPLES = """
MATCH (h:Concept)-[r]->(t:Concept)
RETURN h.id AS head, type(r) AS relation, t.id AS tail, r.confidence AS confidence,
       r.source AS source, r.provenance AS provenance, r.sentence AS sentence
ORDER BY head, relation, tail
"""

ALL_QA = """
MATCH (q:QA)
RETURN q.id AS id, q.question AS question, q.domain AS domain
ORDER BY id
"""

ALL_MENTIONS = """
MATCH (q:QA)-[m:MENTIONS]->(c:Concept)
RETURN q.id AS qa, c.id AS concept, m.count AS count
ORDER BY qa, concept
"""

NEIGHBOURHOOD = """
MATCH (c:Concept {id: $id})-[r]-(n:Concept)
RETURN c.id AS center, type(r) AS relation, startNode(r).id AS head, endNode(r).id AS tail,
       n.id AS neighbour, n.name AS name, r.confidence AS confidence
ORDER BY confidence DESC, neighbour
LIMIT $limit
"""

# After a build has written everything with its stamp, whatever an older build left is removed, so the
# store equals the computed graph (and a killed build, run again, converges to the same graph).
DELETE_STALE_RELATIONSHIPS = """
MATCH (a)-[r]->(b)
WHERE (a:Concept OR a:QA) AND (r.build IS NULL OR r.build <> $build)
DELETE r
"""

DELETE_STALE_NODES = """
MATCH (n)
WHERE (n:Concept OR n:QA) AND (n.build IS NULL OR n.build <> $build)
DETACH DELETE n
"""

# Schema: the backends run their own dialect.
NEO4J_SCHEMA = [
    "CREATE CONSTRAINT concept_id IF NOT EXISTS FOR (c:Concept) REQUIRE c.id IS UNIQUE",
    "CREATE CONSTRAINT qa_id IF NOT EXISTS FOR (q:QA) REQUIRE q.id IS UNIQUE",
    "CREATE CONSTRAINT meta_key IF NOT EXISTS FOR (m:Meta) REQUIRE m.key IS UNIQUE",
    "CREATE INDEX concept_name IF NOT EXISTS FOR (c:Concept) ON (c.name)",
    "CREATE INDEX concept_domain IF NOT EXISTS FOR (c:Concept) ON (c.domain)",
]
FALKOR_INDEXES: dict[tuple[str, str], str] = {
    ("Concept", "id"): "CREATE INDEX FOR (c:Concept) ON (c.id)",
    ("QA", "id"): "CREATE INDEX FOR (q:QA) ON (q.id)",
    ("Meta", "key"): "CREATE INDEX FOR (m:Meta) ON (m.key)",
    ("Concept", "name"): "CREATE INDEX FOR (c:Concept) ON (c.name)",
    ("Concept", "domain"): "CREATE INDEX FOR (c:Concept) ON (c.domain)",
}
# FalkorDB unique constraints go through its GRAPH.CONSTRAINT command (label, property)
FALKOR_UNIQUE = [("Concept", "id"), ("QA", "id"), ("Meta", "key")]


def all_statements() -> dict[str, str]:
    """Every statement the Neo4j backend may send, by name (checked by Neo4j's linter in the tests)."""
    out = {
        name: value
        for name, value in globals().items()
        if name.isupper() and isinstance(value, str) and not name.startswith("_")
    }
    out.update({f"UPSERT_TRIPLES[{rel}]": q for rel, q in UPSERT_TRIPLES.items()})
    out.update({f"NEO4J_SCHEMA[{i}]": q for i, q in enumerate(NEO4J_SCHEMA)})
    out.update({f"SET_DOMAIN_LABELS[{d}]": q for d, q in SET_DOMAIN_LABELS.items()})
    out.update({f"REMOVE_STALE_DOMAIN_LABELS[{d}]": q for d, q in REMOVE_STALE_DOMAIN_LABELS.items()})
    return out


def browser_queries() -> dict[str, str]:
    """The saved queries shipped for Neo4j Browser (kg/browser/queries.cypher), by number."""
    from pathlib import Path

    text = (Path(__file__).resolve().parent / "browser" / "queries.cypher").read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    statements = [s.strip() for s in body.split(";") if s.strip()]
    return {f"browser[{i}]": s for i, s in enumerate(statements, 1)}
