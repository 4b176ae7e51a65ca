"""`python -m evaluation.ask "question" [--run_dir RUN]`: one question in; the answer, the graph evidence
it used, and the question's subgraph saved as a page (open it in a browser).

With a graph run (--graph-prompt, --graph-text-only, --adapter) the answer comes from that system; with
another run from its own system (finetuned, prompt-tuning); with no run from the plain bundled model.
The subgraph is always retrieved and shown, and the output says whether the model was given it.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from types import SimpleNamespace


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation.ask", description=__doc__.splitlines()[0])
    p.add_argument("question", help="the interview question to answer")
    p.add_argument("--run_dir", help="a training run directory (default: the plain bundled model)")
    p.add_argument("--system", help="which of the run's systems answers (default: the one the run trained)")
    p.add_argument("--max_new_tokens", type=int, default=256)
    p.add_argument("-o", "--page", default="subgraph.html", help="where the subgraph page is written (default subgraph.html)")
    p.add_argument("--json", action="store_true", help="print the answer, evidence and subgraph as JSON")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from data.cli import quiet_third_party
    from data.loaders import CorpusError
    from evaluation.run import RunConfigError
    from kg.store import StoreUnavailableError
    from model.load import AdapterNotFoundError
    from model.resolve import ModelNotFoundError

    quiet_third_party()
    try:
        return ask(args)
    except (CorpusError, RunConfigError, AdapterNotFoundError, ModelNotFoundError, StoreUnavailableError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def ask(args) -> int:
    import json

    from evaluation.run import read_run_config
    from evaluation.systems import GRAPH_SYSTEMS, SystemRunner, find_system_runs, system_of
    from kg.config import KGConfig
    from kg.store import StoreConfig
    from kg.view import subgraph_html
    from model.generate import GenerationSettings
    from prompting.graph_prompt import GraphContext
    from prompting.templates import stop_strings

    if not args.question.strip():
        raise ValueError("the question is empty")
    run_cfg, run_dir = None, None
    system = args.system or "plain"
    if args.run_dir:
        run_cfg = read_run_config(args.run_dir)
        system = args.system or system_of(run_cfg)
        if system != "plain":
            run_dir = find_system_runs(args.run_dir, [], [system])[system]
            run_cfg = read_run_config(run_dir)
    style = run_cfg["train"]["prompt_style"] if run_cfg else "study"
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, batch_size=1)
    runner = SystemRunner(system, run_dir, run_cfg, style, settings, stop_strings(style)).load()
    item = SimpleNamespace(id="ask", question=args.question.strip())
    gen, extra = runner.answer([item])[0]

    ctx = runner.ctx or GraphContext(KGConfig(**run_cfg["kg"]) if run_cfg and "kg" in run_cfg else KGConfig(),
                                     StoreConfig(**run_cfg["store"]) if run_cfg and "store" in run_cfg else StoreConfig()).open()
    sg = ctx.subgraphs([item.question])[0]
    from kg.textualize import evidence_lines

    shown = extra.get("evidence") or evidence_lines(sg)
    used = system in GRAPH_SYSTEMS and not sg.empty
    page = None
    if not sg.empty:
        page = Path(args.page)
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(subgraph_html(sg, ctx.domains), encoding="utf-8")
    if args.json:
        print(json.dumps({"system": system, "answer": gen.text, "stop_reason": gen.stop_reason, "graph_used": used,
                          "evidence": shown, "subgraph": sg.to_dict(), "page": str(page) if page else None}, indent=2))
        return 0
    print(f"[{system}] {gen.text}")
    print()
    if sg.empty:
        print("The concept graph knows nothing about this question: no evidence; the model got the plain prompt.")
    else:
        how = {"graph": "as soft graph tokens and numbered evidence", "graph-text": "as numbered evidence",
               "adapter": "through its graph cross-attention"}.get(system, "")
        print(f"evidence {'the model was given ' + how if used else 'retrieved for you (this system does not read the graph)'}:")
        for line in shown:
            print("  " + line)
        print(f"subgraph ({len(sg.nodes)} concepts, {len(sg.edges)} relations) saved to {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
