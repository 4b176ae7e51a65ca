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


def test_a_pid_file_being_written_is_a_server_starting_not_one_that_exited(tmp_path):
    """redis creates its pid file and then writes the number: a start that reads it in between must keep
    waiting (this race failed a start under load with "FalkorDB exited during start")."""
    import os
    import subprocess

    from kg.falkordb_store import EmbeddedFalkorDB

    server = EmbeddedFalkorDB(tmp_path)
    assert not server._exited()  # no pid file yet
    server.pid_file.write_text("")
    assert not server._exited()  # created, not yet written
    server.pid_file.write_text(f"{os.getpid()}\n")
    assert not server._exited()  # a live process
    gone = subprocess.Popen(["true"])
    gone.wait()
    server.pid_file.write_text(f"{gone.pid}\n")
    assert server._exited()  # written, and that process is gone
