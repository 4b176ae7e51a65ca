"""`python -m kg.build`: build the concept graph into the store (embedded FalkorDB, or Neo4j with --uri)."""
from __future__ import annotations

import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    from kg.cli_common import configs, parser, run_main

    p = parser("python -m kg.build", __doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--move_corrupt_snapshot", action="store_true",
                   help="if the embedded store's snapshot (dump.rdb) cannot be loaded, move it aside (renamed with a "
                        "timestamp) and build the graph from scratch; without it such a snapshot is an error")
    args = p.parse_args(argv)

    def go() -> int:
        from kg.builder import build_graph_data, write_graph
        from kg.store import content_digest, counts, open_store, writer_lock

        cfg, store_cfg = configs(args)
        t0 = time.time()
        # the store first: a store that is down or a corrupt snapshot is reported before minutes of work
        with open_store(store_cfg, move_corrupt_snapshot=args.move_corrupt_snapshot) as store:
            data = build_graph_data(cfg, progress=not args.json)
            with writer_lock(store_cfg):
                written = write_graph(store, data, progress=not args.json)
                stats = counts(store) | {"content_digest": content_digest(store)}
        summary = {
            **stats,
            "store": store.name,
            "candidate_concepts": len(data.candidates),
            "merges": len(data.merges),
            "ambiguous_aliases_removed": len(data.ambiguous_aliases),
            "conflicting_triples_dropped": len(data.conflicts_dropped),
            "documents": len(data.documents),
            "built_from": {"qa_items": cfg.qa_items, "qa_documents": sum("#" not in d.id for d in data.documents),
                           "note_documents": sum("#" in d.id for d in data.documents)},
            "triples_by_source": _by_source(data.triples),
            **written,
            "seconds": round(time.time() - t0, 1),
        }
        if args.json:
            print(json.dumps(summary, indent=2, sort_keys=True))
        else:
            _print(summary)
        return 0

    return run_main(go)


def _by_source(triples) -> dict:
    from collections import Counter

    return dict(sorted(Counter(t.source for t in triples).items()))


def _print(s: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    c = Console()
    t = Table(title=f"Concept graph ({s['store']})")
    t.add_column("relation")
    t.add_column("triples", justify="right")
    for rel, n in s["triples_by_relation"].items():
        t.add_row(rel, str(n))
    t.add_row("total", str(s["triples"]))
    c.print(t)
    pct = 100 * s["isolated_concepts"] / max(s["concepts"], 1)
    c.print(
        f"concepts {s['concepts']} ({s['candidate_concepts']} extracted candidates, {s['merges']} merged), "
        f"isolated {s['isolated_concepts']} ({pct:.1f}%), QA items and notes {s['qa_items']}; "
        f"triples by source {s['triples_by_source']}; built in {s['seconds']}s"
    )


if __name__ == "__main__":
    sys.exit(main())
