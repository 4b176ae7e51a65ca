"""`python -m kg.export --format csv|cypher|graphml -o DIR_OR_FILE`: the graph in portable form.

csv: nodes and one relationship file per type with `neo4j-admin database import` headers
(`id:ID(Concept)`, `:LABEL`, `:START_ID(Concept)`, `:END_ID(Concept)`, `:TYPE`, arrays as `string[]`).
cypher: a parameter-free script of MERGE statements with every string escaped (for cypher-shell).
graphml: for Gephi, yEd or networkx.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from xml.sax.saxutils import escape

ARRAY_SEP = ";"


def cypher_string(value: str) -> str:
    """A Cypher string literal: backslashes, quotes and control characters escaped."""
    out = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"'{out}'"


def cypher_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(cypher_value(v) for v in value) + "]"
    return cypher_string(str(value))


def export_csv(concepts: list[dict], triples: list[dict], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "concepts.csv"]
    with open(files[0], "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id:ID(Concept)", "name", "domain", "aliases:string[]", "alias_context", "definition", "source",
                    ":LABEL"])
        for c in concepts:
            w.writerow([c["id"], c["name"], c["domain"], ARRAY_SEP.join(c.get("aliases") or []),
                        c.get("alias_context") or "{}", c.get("definition") or "", c.get("source") or "", "Concept"])
    path = out / "relationships.csv"
    files.append(path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([":START_ID(Concept)", ":END_ID(Concept)", ":TYPE", "confidence:float", "source",
                    "provenance:string[]", "sentence"])
        for t in triples:
            w.writerow([t["head"], t["tail"], t["relation"], t.get("confidence") or 1.0, t.get("source") or "",
                        ARRAY_SEP.join(t.get("provenance") or []), t.get("sentence") or ""])
    (out / "IMPORT.txt").write_text(
        "neo4j-admin database import full --array-delimiter=';' "
        f"--nodes={files[0].name} --relationships={path.name} neo4j\n"
    )
    return files


def export_cypher(concepts: list[dict], triples: list[dict], out: Path) -> list[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("CREATE CONSTRAINT concept_id IF NOT EXISTS FOR (c:Concept) REQUIRE c.id IS UNIQUE;\n")
        for c in concepts:
            keys = ("name", "domain", "aliases", "alias_context", "definition", "source")
            props = ", ".join(f"c.{k} = {cypher_value(c.get(k))}" for k in keys)
            fh.write(f"MERGE (c:Concept {{id: {cypher_string(c['id'])}}}) SET {props};\n")
        for t in triples:
            props = ", ".join(f"r.{k} = {cypher_value(t.get(k))}"
                              for k in ("confidence", "source", "provenance", "sentence"))
            fh.write(
                f"MATCH (h:Concept {{id: {cypher_string(t['head'])}}}), (t:Concept {{id: {cypher_string(t['tail'])}}}) "
                f"MERGE (h)-[r:{t['relation']}]->(t) SET {props};\n"
            )
    return [out]


def export_graphml(concepts: list[dict], triples: list[dict], out: Path) -> list[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = [("name", "node"), ("domain", "node"), ("definition", "node"), ("relation", "edge"), ("confidence", "edge"),
            ("source", "edge")]
    with open(out, "w", encoding="utf-8") as fh:
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n')
        for k, dom in keys:
            typ = "double" if k == "confidence" else "string"
            fh.write(f'  <key id="{k}" for="{dom}" attr.name="{k}" attr.type="{typ}"/>\n')
        fh.write('  <graph id="studyllama" edgedefault="directed">\n')
        for c in concepts:
            fh.write(f'    <node id="{escape(c["id"], {chr(34): "&quot;"})}">')
            for k in ("name", "domain", "definition"):
                fh.write(f'<data key="{k}">{escape(str(c.get(k) or ""))}</data>')
            fh.write("</node>\n")
        for i, t in enumerate(triples):
            fh.write(f'    <edge id="e{i}" source="{escape(t["head"], {chr(34): "&quot;"})}" '
                     f'target="{escape(t["tail"], {chr(34): "&quot;"})}">')
            fh.write(f'<data key="relation">{t["relation"]}</data>'
                     f'<data key="confidence">{t.get("confidence") or 1.0}</data>'
                     f'<data key="source">{escape(str(t.get("source") or ""))}</data></edge>\n')
        fh.write("  </graph>\n</graphml>\n")
    return [out]


def main(argv: list[str] | None = None) -> int:
    from kg.cli_common import configs, parser, run_main

    p = parser("python -m kg.export", __doc__.splitlines()[0], kg=False)
    p.add_argument("--format", choices=["csv", "cypher", "graphml"], required=True)
    p.add_argument("-o", "--output", required=True, help="a folder for csv, a file for cypher and graphml")
    args = p.parse_args(argv)

    def go() -> int:
        from kg import cypher
        from kg.store import open_store

        store_cfg = configs(args, kg=False)
        with open_store(store_cfg) as store:
            concepts = store.run(cypher.ALL_CONCEPTS)
            triples = store.run(cypher.ALL_TRIPLES)
        fn = {"csv": export_csv, "cypher": export_cypher, "graphml": export_graphml}[args.format]
        files = fn(concepts, triples, Path(args.output))
        print(json.dumps({"concepts": len(concepts), "triples": len(triples), "files": [str(f) for f in files]}))
        return 0

    return run_main(go)


if __name__ == "__main__":
    sys.exit(main())
