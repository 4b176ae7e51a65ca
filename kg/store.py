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
    lock_timeout: float = 600.0
    """Seconds a build waits for another build writing to the same store (one writer at a time) before giving up."""

    def __post_init__(self) -> None:
        if self.uri and "@" in self.uri:
            # credentials written into the URI move to their own fields, so a saved config never holds them
            from data.secrets import split_userinfo

            self.uri, user, password = split_userinfo(self.uri)
            self.user = self.user or user
            self.password = self.password if self.password is not None else password

    def resolved_uri(self) -> str | None:
        return self.uri or os.environ.get("NEO4J_URI")


class GraphStore(Protocol):
    name: str

    def ensure_schema(self) -> None: ...
    def run(self, statement: str, params: dict | None = None) -> list[dict]: ...
    def write(self, statement: str, params: dict | None = None) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


def write_batches(store: GraphStore, statement: str, rows: Iterable[dict], batch: int = BATCH, progress=None,
                  params: dict | None = None) -> int:
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


def content_digest(store: GraphStore) -> str:
    """A fingerprint of what the store holds (concepts, triples, QA items and notes, mentions), computed from
    the store itself: two stores with equal digests hold the same graph, whatever their meta data claims."""
    import hashlib
    import json

    parts = [store.run(q) for q in (cypher.ALL_CONCEPTS, cypher.ALL_TRIPLES, cypher.ALL_QA, cypher.ALL_MENTIONS)]
    # the backends' ORDER BY ties and list orders are not ours to rely on: sort the serialised rows
    payload = [sorted(json.dumps(row, sort_keys=True, default=str) for row in rows) for rows in parts]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]


def neighbourhood(store: GraphStore, concept: str, limit: int = 50) -> list[dict]:
    """A concept's direct neighbours with the relation type and direction, strongest first."""
    return store.run(cypher.NEIGHBOURHOOD, {"id": concept, "limit": limit})


def get_meta(store: GraphStore, key: str) -> str | None:
    rows = store.run(cypher.GET_META, {"key": key})
    return rows[0]["value"] if rows else None


def set_meta(store: GraphStore, key: str, value: str) -> None:
    store.write(cypher.SET_META, {"key": key, "value": value})


@contextmanager
def open_store(cfg: StoreConfig | None = None, move_corrupt_snapshot: bool = False) -> Iterator[GraphStore]:
    """Open the configured store. The embedded server is started on demand and stopped when its last user
    leaves; with move_corrupt_snapshot, a snapshot it cannot load is moved aside and the graph starts empty."""
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
    with server.in_use(cfg.lock_timeout, cfg.connect_timeout * 4, move_corrupt_snapshot):
        store = FalkorStore(server.socket_path, cfg.graph, cfg.connect_timeout)
        try:
            yield store
        finally:
            store.close()


@contextmanager
def writer_lock(cfg: StoreConfig) -> Iterator[None]:
    """One writer per store: a second build waits here (saying for whom) instead of interleaving its writes
    and its stale-row cleanup with the first one's. The lock lives in the FalkorDB data directory, or for
    Neo4j in the temp directory under a name derived from the address (builds on this machine)."""
    import hashlib
    import tempfile

    from kg.locks import exclusive_lock

    uri = cfg.resolved_uri()
    if uri:
        from data.secrets import mask_url, split_userinfo

        address = split_userinfo(uri)[0]
        database = cfg.database or os.environ.get("NEO4J_DATABASE") or ""
        key = hashlib.sha256(f"{address}\0{database}".encode()).hexdigest()[:16]
        path, where = Path(tempfile.gettempdir()) / f"studyllama-neo4j-{key}.build.lock", f"Neo4j at {mask_url(uri)}"
    else:
        path, where = Path(cfg.data_dir).resolve() / "build.lock", f"the graph store in {Path(cfg.data_dir).resolve()}"
    hint = "Nothing was written. Wait for that build to finish and run this one again, or raise --lock_timeout."
    with exclusive_lock(path, cfg.lock_timeout, f"another build is writing to {where}", hint):
        yield
