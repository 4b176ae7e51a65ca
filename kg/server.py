"""`python -m kg.server start|stop|status|repair`: manage the embedded FalkorDB by hand.

Every kg command starts the server on demand, and the last command using it stops it; `start` keeps one
running between commands (faster) until `stop`. `stop` also ends one that a killed command left behind.
`repair` moves a snapshot the server cannot load (dump.rdb) aside, renamed with a timestamp, so the next
`python -m kg.build` starts from an empty graph (`kg.build --move_corrupt_snapshot` does both at once).
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from kg.cli_common import configs, parser, run_main

    p = parser("python -m kg.server", __doc__.splitlines()[0], kg=False)
    p.add_argument("action", choices=["start", "stop", "status", "repair"])
    args = p.parse_args(argv)

    def go() -> int:
        from pathlib import Path

        from kg.falkordb_store import CorruptSnapshotError, EmbeddedFalkorDB

        store_cfg = configs(args, kg=False)
        server = EmbeddedFalkorDB(Path(store_cfg.data_dir))
        if args.action == "start":
            with server.in_use(store_cfg.lock_timeout, store_cfg.connect_timeout * 4) as started:
                server.keep_file.touch()  # inside in_use: the server is not stopped as this command leaves
            state = "started" if started else "already running"
            print(f"FalkorDB {state} on {server.socket_path} (kept until `kg.server stop`)")
        elif args.action == "stop":
            server.keep_file.unlink(missing_ok=True)
            with server.sole_user(store_cfg.lock_timeout):
                running = server.healthy()
                if running:
                    server.stop()
            print("FalkorDB stopped (snapshot saved)" if running else "FalkorDB is not running")
        elif args.action == "repair":
            with server.sole_user(store_cfg.lock_timeout):
                try:
                    started = server.start(timeout=store_cfg.connect_timeout * 4)
                except CorruptSnapshotError as exc:
                    moved = server.move_snapshot_aside()
                    print(f"moved the corrupt snapshot {exc.snapshot} to {moved}; "
                          "run `python -m kg.build` to rebuild the graph")
                    return 0
                if started and not server.keep_file.exists():
                    server.stop()
            print(f"the snapshot in {server.data_dir} loads fine; nothing was moved")
        else:
            print(f"FalkorDB {'running' if server.healthy() else 'not running'}; data in {server.data_dir}, "
                  f"socket {server.socket_path}")
        return 0

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())
