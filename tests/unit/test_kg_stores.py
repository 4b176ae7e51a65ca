"""The Neo4j backend's error paths, with the driver replaced (no Neo4j server runs here; the
integration tests run the same code against a port that refuses and a server that never answers)."""
import pytest

from kg.store import StoreUnavailableError


class FakeDriver:
    def __init__(self, exc):
        self.exc, self.closed = exc, False

    def verify_connectivity(self):
        raise self.exc

    def close(self):
        self.closed = True


def test_wrong_password_is_named(monkeypatch):
    import neo4j

    from kg.neo4j_store import Neo4jStore

    driver = FakeDriver(neo4j.exceptions.AuthError("The client is unauthorized due to authentication failure."))
    monkeypatch.setattr(neo4j.GraphDatabase, "driver", lambda *a, **k: driver)
    with pytest.raises(StoreUnavailableError, match="wrong user or password"):
        Neo4jStore("bolt://example:7687", "neo4j", "bad")
    assert driver.closed


def test_unreachable_server_is_named(monkeypatch):
    import neo4j

    from kg.neo4j_store import Neo4jStore

    driver = FakeDriver(neo4j.exceptions.ServiceUnavailable("Couldn't connect"))
    monkeypatch.setattr(neo4j.GraphDatabase, "driver", lambda *a, **k: driver)
    with pytest.raises(StoreUnavailableError, match="not reachable .*Is the server running"):
        Neo4jStore("bolt://example:7687", "neo4j", "pw")
