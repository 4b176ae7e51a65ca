"""`python -m kg.stats [--json]`: counts of the graph in the store, the digest of the build that wrote it
(`graph_digest`) and one computed from what the store holds (`content_digest`)."""
from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> int:
    from kg.cli_common import configs, parser, run_main

    p = parser("python -m kg.stats", __doc__.splitlines()[0], kg=False)
    p.add_argument("--json", action="store_true", help="print JSON")
    args = p.parse_args(argv)

    def go() -> int:
        from kg.store import content_digest, counts, get_meta, open_store

        store_cfg = configs(args, kg=False)
        with open_store(store_cfg) as store:
            s = counts(store) | {"store": store.name, "graph_digest": get_meta(store, "graph_digest"),
                                 "content_digest": content_digest(store)}
        s["isolated_fraction"] = round(s["isolated_concepts"] / max(s["concepts"], 1), 4)
        if args.json:
            print(json.dumps(s, indent=2, sort_keys=True))
        else:
            for k, v in s.items():
                print(f"{k}: {v}")
        return 0

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())
