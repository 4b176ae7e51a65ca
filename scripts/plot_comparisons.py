"""One SVG of paired differences (each with its 95% bootstrap interval) taken from several evaluations'
metrics.json, for comparisons that no single evaluation holds (cells of an ablation scored against one
baseline in separate runs). Each --row names a label, a metrics.json and one of its comparisons.

    .venv/bin/python scripts/plot_comparisons.py --metric concept_coverage --out docs/prompt-axis.svg \\
        --row "graph-soft=runs/abl-graph-soft/eval-vs-finetuned/metrics.json:graph vs finetuned" \\
        --row "graph-text=runs/abl-graph-text/eval-vs-finetuned/metrics.json:graph-text vs finetuned"
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_row(text: str) -> tuple[str, Path, str]:
    """'label=path/metrics.json:comparison name' -> (label, path, comparison name)."""
    label, sep, rest = text.partition("=")
    path, sep2, comparison = rest.rpartition(":")  # the last colon: a path may hold one, a comparison does not
    if not (sep and sep2 and label and path and comparison):
        raise ValueError(f"--row {text!r}: expected LABEL=METRICS_JSON:COMPARISON (for example "
                         "'graph=runs/r/eval/metrics.json:graph vs finetuned')")
    return label, Path(path), comparison


def read_difference(path: Path, comparison: str, metric: str) -> dict:
    """The paired difference of `metric` in one comparison of a metrics.json, with a clear error when absent."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such metrics.json")
    comparisons = json.loads(path.read_text()).get("comparisons", {})
    if comparison not in comparisons:
        raise KeyError(f"{path}: no comparison {comparison!r}; it has {', '.join(comparisons) or 'none'}")
    if metric not in comparisons[comparison]:
        raise KeyError(f"{path}: comparison {comparison!r} has no metric {metric!r}; it has "
                       f"{', '.join(comparisons[comparison])}")
    return comparisons[comparison][metric]


def chart(rows: list[tuple[str, dict]], title: str) -> str:
    from evaluation.ablation import dot_whisker_chart

    tone = lambda d: "#2a7" if d["ci_low"] > 0 else "#c44" if d["ci_high"] < 0 else "#888"  # noqa: E731
    return dot_whisker_chart([(label, d["diff"], d["ci_low"], d["ci_high"], tone(d)) for label, d in rows],
                             title, line_at=0.0, line_label="0")


def main() -> int:
    from data.cli import ArgumentParser

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--row", action="append", required=True, help="LABEL=METRICS_JSON:COMPARISON, repeatable")
    p.add_argument("--metric", action="append", required=True,
                   help="a compared metric (rougeL, bertscore_f1, concept_coverage, ...), repeatable: one chart each")
    p.add_argument("--out", required=True, help="the SVG to write")
    args = p.parse_args()
    try:
        specs = [parse_row(r) for r in args.row]
        charts = []
        for metric in args.metric:
            rows = [(label, read_difference(path, comp, metric)) for label, path, comp in specs]
            charts.append(chart(rows, f"{metric}: paired difference, 95% CI"))
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(stack(charts))
    print(f"wrote {out} ({len(charts)} chart(s), {len(specs)} rows each)")
    return 0


def stack(svgs: list[str]) -> str:
    """Several SVG charts one above the other in one SVG file."""
    import re

    sizes = [tuple(int(v) for v in re.search(r'width="(\d+)" height="(\d+)"', s).groups()) for s in svgs]
    width, height = max(w for w, _ in sizes), sum(h for _, h in sizes)
    parts, y = [], 0
    for svg, (_, h) in zip(svgs, sizes):
        parts.append(f'<g transform="translate(0,{y})">{svg}</g>')
        y += h
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">' + "".join(parts) + "</svg>\n")


if __name__ == "__main__":
    sys.exit(main())
