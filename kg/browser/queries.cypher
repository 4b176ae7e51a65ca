// StudyLLaMA: saved queries for Neo4j Browser. Set a parameter first, e.g.
//   :param concept => 'bias-variance-tradeoff'
// then run a query. Star a query in Browser (the star icon) to keep it as a favourite.

// 1. A concept's neighbourhood: everything one step away, with the relation types.
MATCH (c:Concept {id: $concept})-[r]-(n:Concept)
RETURN c, r, n;

// 2. A question's subgraph as the model saw it. First run
//      python -m kg.retrieve "your question" --json
//    and set the node ids it printed:
//      :param ids => ['bias-variance-tradeoff', 'bias', 'variance', 'overfitting', 'model-complexity']
MATCH (a:Concept)-[r]->(b:Concept)
WHERE a.id IN $ids AND b.id IN $ids
RETURN a, r, b;

// 3. Prerequisite chain: what to learn before a concept, up to four steps back.
MATCH path = (start:Concept)-[:PREREQUISITE_OF*1..4]->(c:Concept {id: $concept})
RETURN path
ORDER BY length(path) DESC
LIMIT 25;

// 4. Concepts commonly contrasted with this one (interview comparison questions).
MATCH (c:Concept {id: $concept})-[:CONTRASTS_WITH]-(other:Concept)
RETURN other.name AS concept, other.definition AS definition;

// 5. The QA items that mention a concept, with the other concepts they mention.
MATCH (q:QA)-[:MENTIONS]->(c:Concept {id: $concept})
OPTIONAL MATCH (q)-[:MENTIONS]->(other:Concept)
RETURN q.id AS item, q.question AS question, collect(DISTINCT other.name) AS also_mentions
LIMIT 25;

// 6. Where an extracted triple came from (provenance and the sentence).
MATCH (a:Concept {id: $concept})-[r]->(b:Concept)
WHERE r.source <> 'curated'
RETURN a.name, type(r), b.name, r.source, r.confidence, r.provenance, r.sentence;
