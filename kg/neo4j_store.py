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
        from data.secrets import mask_text, mask_url, split_userinfo

        # the driver refuses user:password inside the URI and would print the URI (password included)
        address, uri_user, uri_password = split_userinfo(uri)
        user = uri_user or user
        password = uri_password if uri_password is not None else password
        shown = mask_url(uri)
        self.database = database
        try:
            _check_address(address)
            self.driver = neo4j.GraphDatabase.driver(
                address, auth=(user, password), connection_timeout=timeout, connection_acquisition_timeout=timeout,
                max_transaction_retry_time=timeout,
            )
        except (neo4j.exceptions.ConfigurationError, ValueError) as exc:
            raise StoreUnavailableError(
                f"Neo4j URI {shown!r} is malformed: {mask_text(str(exc))} "
                "Give it as bolt://HOST:7687 or neo4j://HOST:7687 (--uri or $NEO4J_URI)."
            ) from None
        try:
            self.driver.verify_connectivity()
        except neo4j.exceptions.AuthError:
            self.driver.close()
            raise StoreUnavailableError(
                f"Neo4j at {shown} rejected user {user!r}: wrong user or password (set NEO4J_USER / NEO4J_PASSWORD)."
            ) from None
        except Exception as exc:  # noqa: BLE001 - ServiceUnavailable, DNS errors, refused connections
            self.driver.close()
            raise StoreUnavailableError(
                f"Neo4j at {shown} is not reachable ({type(exc).__name__}: {mask_text(str(exc))}). "
                "Is the server running?"
            ) from None

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


def _check_address(address: str) -> None:
    """The parts the driver would only trip over later (a port that is no number surfaces as "not reachable")."""
    from urllib.parse import urlsplit

    parts = urlsplit(address)  # ValueError for a bad port or unbalanced brackets
    if not parts.scheme or "://" not in address:
        raise ValueError(f"no scheme (expected bolt:// or neo4j://, got {address.split('/')[0]!r}).")
    if not parts.hostname:
        raise ValueError("no host name.")
    _ = parts.port  # raises for a port that is not a number in 0..65535
