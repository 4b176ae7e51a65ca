"""`python -m kg.retrieve "question" [--json]`: a question's subgraph, why each node is in it, and the evidence."""
from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> int:
    from kg.cli_common import configs, parser, run_main

    p = parser("python -m kg.retrieve", __doc__.splitlines()[0])
    p.add_argument("question", help="the question to retrieve a subgraph for")
    p.add_argument("--json", action="store_true", help="print the subgraph and evidence as JSON")
    args = p.parse_args(argv)

    def go() -> int:
        from data.normalize import control_character_problem, undecodable_problem

        problem = (undecodable_problem(args.question, "the question")
                   or control_character_problem(args.question, "the question"))
        if problem:
            raise ValueError(problem)
        from kg.index import load_index
        from kg.retrieval import retrieve_subgraph
        from kg.store import open_store
        from kg.textualize import evidence_lines

        cfg, store_cfg = configs(args)
        with open_store(store_cfg) as store:
            index = load_index(store, cfg.work_dir)
        sg = retrieve_subgraph(index, args.question, cfg)
        lines = evidence_lines(sg)
        if args.json:
            print(json.dumps({"subgraph": sg.to_dict(), "evidence": lines}, indent=2))
            return 0
        if sg.empty:
            print("The concept graph knows nothing about this question (no concept linked); "
                  "a model would get the plain prompt.")
            return 0
        print(f"seeds: {', '.join(sg.seeds)}  (hops {sg.hops}, PCST {'on' if sg.pcst else 'off'})")
        for n in sg.nodes:
            print(f"  {n.name:<40} {n.score:6.3f}  {n.reason}")
        print("evidence:")
        for line in lines:
            print("  " + line)
        return 0

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())
