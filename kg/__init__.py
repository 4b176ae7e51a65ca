"""Concept knowledge graph: vocabulary, triple extraction, graph stores (embedded FalkorDB, Neo4j),
subgraph retrieval (k-hop + PCST) and views."""
