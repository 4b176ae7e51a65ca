"""`python -m kg.view "question" -o graph.html`: the question's subgraph as a self-contained page (neo4j-viz),
drawn as Neo4j's own tools draw it: colour by domain, caption by name, relation types on the edges."""
from __future__ import annotations

import sys
from pathlib import Path

DOMAIN_COLOURS = {"cs": "#4C8EDA", "stats": "#F79767", "ai": "#57C7E3", None: "#A5ABB6"}


def _positions(n: int, edges: list[tuple[int, int]], scale: float = 320.0) -> list[tuple[float, float]]:
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    if n == 0:
        return []
    layout = nx.spring_layout(g, seed=0, k=1.6 / max(n, 1) ** 0.5)
    return [(float(layout[i][0]) * scale, float(layout[i][1]) * scale) for i in range(n)]


def subgraph_html(sg, domains: dict[str, str], title: str | None = None) -> str:
    """A standalone HTML page of the subgraph; seeds drawn larger."""
    from neo4j_viz import Node, Relationship, VisualizationGraph

    seeds = set(sg.seeds)
    pos = _positions(len(sg.nodes), [(e.head, e.tail) for e in sg.edges])
    nodes = [
        Node(
            id=i, caption=n.name, size=28 if n.id in seeds else 18, color=DOMAIN_COLOURS.get(domains.get(n.id)),
            x=pos[i][0], y=pos[i][1],
            properties={"id": n.id, "domain": domains.get(n.id) or "", "score": n.score, "reason": n.reason,
                        "text": n.text},
        )
        for i, n in enumerate(sg.nodes)
    ]
    rels = [
        Relationship(id=k, source=e.head, target=e.tail, caption=e.relation,
                     properties={"relation": e.relation, "confidence": e.confidence})
        for k, e in enumerate(sg.edges)
    ]
    graph = VisualizationGraph(nodes=nodes, relationships=rels)
    # positions computed here (seeded spring layout) rather than by the page's force simulation: the same subgraph
    # always looks the same, and the page draws at once instead of after a web-worker layout settles
    body = graph.render(layout="free", height="720px").data
    heading = title or f"Concept subgraph for: {sg.question}"
    legend = " ".join(f'<span style="color:{c}">&#9679; {d}</span>' for d, c in DOMAIN_COLOURS.items() if d)
    from html import escape

    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>StudyLLaMA subgraph</title></head>"
        f"<body style='font-family:sans-serif;margin:16px'><h2>{escape(heading)}</h2>"
        f"<p>{legend} &mdash; larger nodes are the question's seed concepts; hover a node for why it is here.</p>"
        f"{body}</body></html>\n"
    )


def main(argv: list[str] | None = None) -> int:
    from kg.cli_common import configs, parser, run_main

    p = parser("python -m kg.view", __doc__.splitlines()[0])
    p.add_argument("question")
    p.add_argument("-o", "--output", default="graph.html", help="HTML file to write (default graph.html)")
    args = p.parse_args(argv)

    def go() -> int:
        from kg import cypher
        from kg.index import load_index
        from kg.retrieval import retrieve_subgraph
        from kg.store import open_store

        cfg, store_cfg = configs(args)
        with open_store(store_cfg) as store:
            index = load_index(store, cfg.work_dir)
            domains = {r["id"]: r["domain"] for r in store.run(cypher.ALL_CONCEPTS)}
        sg = retrieve_subgraph(index, args.question, cfg)
        if sg.empty:
            print("The concept graph knows nothing about this question; no page written.")
            return 1
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(subgraph_html(sg, domains), encoding="utf-8")
        print(f"{len(sg.nodes)} concepts, {len(sg.edges)} relations -> {out}")
        return 0

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())
