"""`python -m kg.server start|stop|status`: manage the embedded FalkorDB by hand.

Every kg command starts the server on demand and stops it when done; use this to keep one running
between commands (faster), or to stop one that a killed command left behind.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from kg.cli_common import configs, parser, run_main

    p = parser("python -m kg.server", __doc__.splitlines()[0], kg=False)
    p.add_argument("action", choices=["start", "stop", "status"])
    args = p.parse_args(argv)

    def go() -> int:
        from pathlib import Path

        from kg.falkordb_store import EmbeddedFalkorDB

        store_cfg = configs(args, kg=False)
        server = EmbeddedFalkorDB(Path(store_cfg.data_dir))
        if args.action == "start":
            started = server.start()
            print(f"FalkorDB {'started' if started else 'already running'} on {server.socket_path}")
        elif args.action == "stop":
            if server.healthy():
                server.stop()
                print("FalkorDB stopped (snapshot saved)")
            else:
                print("FalkorDB is not running")
        else:
            print(f"FalkorDB {'running' if server.healthy() else 'not running'}; data in {server.data_dir}, socket {server.socket_path}")
        return 0

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())
