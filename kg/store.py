"""The GraphStore protocol, shared batching, and `open_store` choosing the backend.

Backends: Neo4j (official driver) when a URI is given (flag or NEO4J_URI), else the embedded
FalkorDB that the project starts itself on a private Unix socket.
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from kg import cypher

log = logging.getLogger(__name__)
BATCH = 500


class StoreUnavailableError(RuntimeError):
    """The graph store cannot be reached (not running, wrong address, wrong password)."""


@dataclass
class StoreConfig:
    uri: str | None = None
    """Neo4j URI (bolt:// or neo4j://); default $NEO4J_URI; none = the embedded FalkorDB."""
    user: str | None = None
    """Neo4j user; default $NEO4J_USER or neo4j."""
    password: str | None = None
    """Neo4j password; default $NEO4J_PASSWORD."""
    database: str | None = None
    """Neo4j database; default $NEO4J_DATABASE or the server's default."""
    data_dir: str = "artifacts/kg/falkordb"
    """Embedded FalkorDB data directory (AOF + RDB files live here)."""
    graph: str = "studyllama"
    """Graph name inside FalkorDB."""
    connect_timeout: float = 5.0
    """Seconds before an unreachable store is reported."""

    def resolved_uri(self) -> str | None:
        return self.uri or os.environ.get("NEO4J_URI")


class GraphStore(Protocol):
    name: str

    def ensure_schema(self) -> None: ...
    def run(self, statement: str, params: dict | None = None) -> list[dict]: ...
    def write(self, statement: str, params: dict | None = None) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


def write_batches(store: GraphStore, statement: str, rows: Iterable[dict], batch: int = BATCH, progress=None, params: dict | None = None) -> int:
    """Send rows in UNWIND batches (with any extra parameters); returns the number of rows written."""
    buf: list[dict] = []
    n = 0
    for row in rows:
        buf.append(row)
        if len(buf) >= batch:
            store.write(statement, {**(params or {}), "rows": buf})
            n += len(buf)
            if progress is not None:
                progress.update(len(buf))
            buf = []
    if buf:
        store.write(statement, {**(params or {}), "rows": buf})
        n += len(buf)
        if progress is not None:
            progress.update(len(buf))
    return n


def counts(store: GraphStore) -> dict:
    by_rel = {r["relation"]: r["n"] for r in store.run(cypher.COUNT_TRIPLES_BY_RELATION)}
    return {
        "concepts": store.run(cypher.COUNT_CONCEPTS)[0]["n"],
        "qa_items": store.run(cypher.COUNT_QA)[0]["n"],
        "triples": sum(by_rel.values()),
        "triples_by_relation": dict(sorted(by_rel.items())),
        "relation_types_in_use": len(by_rel),
        "isolated_concepts": store.run(cypher.COUNT_ISOLATED)[0]["n"],
    }


def neighbourhood(store: GraphStore, concept: str, limit: int = 50) -> list[dict]:
    """A concept's direct neighbours with the relation type and direction, strongest first."""
    return store.run(cypher.NEIGHBOURHOOD, {"id": concept, "limit": limit})


def get_meta(store: GraphStore, key: str) -> str | None:
    rows = store.run(cypher.GET_META, {"key": key})
    return rows[0]["value"] if rows else None


def set_meta(store: GraphStore, key: str, value: str) -> None:
    store.write(cypher.SET_META, {"key": key, "value": value})


@contextmanager
def open_store(cfg: StoreConfig | None = None, keep_running: bool = False) -> Iterator[GraphStore]:
    """Open the configured store; the embedded server is started on demand and stopped afterwards."""
    cfg = cfg or StoreConfig()
    uri = cfg.resolved_uri()
    if uri:
        from kg.neo4j_store import Neo4jStore

        store = Neo4jStore(
            uri,
            cfg.user or os.environ.get("NEO4J_USER", "neo4j"),
            cfg.password if cfg.password is not None else os.environ.get("NEO4J_PASSWORD", ""),
            cfg.database or os.environ.get("NEO4J_DATABASE"),
            cfg.connect_timeout,
        )
        try:
            yield store
        finally:
            store.close()
        return
    from kg.falkordb_store import EmbeddedFalkorDB, FalkorStore

    server = EmbeddedFalkorDB(Path(cfg.data_dir))
    started = server.start(timeout=cfg.connect_timeout * 4)
    store = FalkorStore(server.socket_path, cfg.graph, cfg.connect_timeout)
    try:
        yield store
    finally:
        store.close()
        if started and not keep_running:
            server.stop()
