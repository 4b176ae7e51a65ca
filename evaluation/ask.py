"""`python -m evaluation.ask "question" [--run_dir RUN]`: one question in; the answer, the graph evidence
it used, and the question's subgraph saved as a page (open it in a browser).

With a run the answer comes from the system the run trained (any mode of model.modes; --system picks another
of its systems, e.g. its finetuned baseline); with no run from the plain bundled model. The subgraph is always
retrieved and shown, and the output says whether the model was given it. A question that does not fit the
model's context (with max_new_tokens) is refused before anything is generated.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

from model.decoding import MAX_NEW_TOKENS
from data.cli import ArgumentParser


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m evaluation.ask", description=__doc__.splitlines()[0])
    p.add_argument("question", help="the interview question to answer")
    p.add_argument("--run_dir", help="a training run directory (default: the plain bundled model)")
    p.add_argument("--system", help="which of the run's systems answers (default: the one the run trained)")
    p.add_argument("--max_new_tokens", type=int, default=MAX_NEW_TOKENS,
                   help=f"answer budget in tokens (default {MAX_NEW_TOKENS})")
    p.add_argument("-o", "--page", default="subgraph.html", help="where the subgraph page is written (default "
                                                                  "subgraph.html)")
    p.add_argument("--json", action="store_true", help="print the answer, evidence and subgraph as JSON")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from data.cli import quiet_third_party
    from data.loaders import CorpusError
    from kg.store import StoreUnavailableError
    from model.resolve import ModelNotFoundError
    from model.weight_files import AdapterNotFoundError

    quiet_third_party()
    try:
        return ask(args)
    except (CorpusError, AdapterNotFoundError, ModelNotFoundError, StoreUnavailableError, FileNotFoundError,
            ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def ask(args) -> int:
    import json

    from evaluation.systems import SystemRunner
    from kg.config import KGConfig
    from kg.store import StoreConfig
    from kg.textualize import evidence_lines
    from kg.view import subgraph_html
    from model.generate import GenerationSettings
    from model.modes import PLAIN
    from model.rundir import RunDir, find_system_runs
    from prompting.graph_prompt import GraphContext
    from prompting.templates import stop_strings

    if not args.question.strip():
        raise ValueError("the question is empty")
    if args.max_new_tokens < 1:
        raise ValueError(f"--max_new_tokens must be positive, got {args.max_new_tokens}")
    run = RunDir.open(args.run_dir) if args.run_dir else None
    system = args.system or (run.system if run else PLAIN)
    if system != PLAIN:
        if run is None:
            raise ValueError(f"--system {system} needs --run_dir (the run that trained it)")
        run = find_system_runs(run.path, [], [system])[system]
    style = run.prompt_style if run else "study"
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, batch_size=1)
    runner = SystemRunner(system, run, style, settings, stop_strings(style)).load()
    item = SimpleNamespace(id="the question", question=args.question.strip())
    gen, extra = runner.answer([item])[0]

    ctx = runner.ctx or GraphContext(run.kg if run else KGConfig(), run.store if run else StoreConfig()).open()
    sg = ctx.subgraphs([item.question])[0]
    shown = extra.get("evidence") or evidence_lines(sg)
    how = runner.gcfg.spec.graph_use(runner.gcfg) if runner.gcfg is not None else ""
    used = bool(how) and not sg.empty
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
        given = f"the model was given {how}" if used else "retrieved for you (this system does not read the graph)"
        print(f"evidence {given}:")
        for line in shown:
            print("  " + line)
        print(f"subgraph ({len(sg.nodes)} concepts, {len(sg.edges)} relations) saved to {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
