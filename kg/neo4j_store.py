"""Neo4j backend through the official `neo4j` driver."""
from __future__ import annotations

import logging

from kg import cypher
from kg.store import StoreUnavailableError

log = logging.getLogger(__name__)


class Neo4jStore:
    name = "neo4j"

    def __init__(self, uri: str, user: str, password: str, database: str | None = None, timeout: float = 5.0):
        try:
            import neo4j
        except ImportError:
            raise StoreUnavailableError("The Neo4j backend needs `pip install neo4j==6.4.1`.") from None
        self.database = database
        self.driver = neo4j.GraphDatabase.driver(
            uri, auth=(user, password), connection_timeout=timeout, connection_acquisition_timeout=timeout,
            max_transaction_retry_time=timeout,
        )
        try:
            self.driver.verify_connectivity()
        except neo4j.exceptions.AuthError:
            self.driver.close()
            raise StoreUnavailableError(f"Neo4j at {uri} rejected user {user!r}: wrong user or password (set NEO4J_USER / NEO4J_PASSWORD).") from None
        except Exception as exc:  # noqa: BLE001 - ServiceUnavailable, DNS errors, refused connections
            self.driver.close()
            raise StoreUnavailableError(f"Neo4j at {uri} is not reachable ({type(exc).__name__}: {exc}). Is the server running?") from None

    def ensure_schema(self) -> None:
        for statement in cypher.NEO4J_SCHEMA:
            self.write(statement)

    def run(self, statement: str, params: dict | None = None) -> list[dict]:
        records, _, _ = self.driver.execute_query(statement, params or {}, database_=self.database, routing_="r")
        return [r.data() for r in records]

    def write(self, statement: str, params: dict | None = None) -> None:
        self.driver.execute_query(statement, params or {}, database_=self.database)

    def flush(self) -> None:
        """Neo4j commits every transaction durably; nothing to do."""

    def close(self) -> None:
        self.driver.close()
