"""The summary of an ablation grid: one row per cell (run directory), read from what each cell's run wrote.

A cell is a run directory made by `python -m training.run` (or, for the plain cell, `python -m
evaluation.run`) with the grid's overrides. This module only reads: eval/metrics.json (the scores the
evaluation computed), eval/predictions.jsonl (the answers, scored again per item here for intervals),
train_summary.json (train time), the run's saved stdout (the `trainable params:` line training.run
prints, as the study printed LoRA's) and ablate_error.txt (a failed cell). It writes summary.md,
summary.csv, summary.json and summary.html (the table and ROUGE-L per cell with its 95% interval, and
each cell's paired difference from the reference cell, inline SVG).

Paired differences are computed only where the reference cell and the cell answered the same eval
items (same ids): per-item scores from `evaluation.metrics.per_item_scores`, the interval from
`evaluation.significance.paired_bootstrap`.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re
from html import escape
from pathlib import Path

import numpy as np

from evaluation.numbers import interval, number
from evaluation.predictions import read_predictions
from evaluation.scoring import PAIRED_METRICS
from model.rundir import EVAL_DIR, METRICS, TRAIN_SUMMARY

log = logging.getLogger(__name__)

STDOUT_LOG = "ablate_stdout.log"
STDERR_LOG = "ablate_stderr.log"
ERROR_FILE = "ablate_error.txt"
# the first line of model.load.trainable_report, at the start of a line (the 7B estimate line also says
# "trainable params:" but in the middle of a sentence)
TRAINABLE_RE = re.compile(r"^trainable params: (\d+) \|\| all params: (\d+) \|\| trainable%: ([0-9.eE+-]+)", re.M)
# (column, metrics.json group, key): the scores a summary row carries for its system
SCORE_COLUMNS = (
    ("rouge1", "rouge", "rouge1"), ("rouge2", "rouge", "rouge2"), ("rougeL", "rouge", "rougeL"),
    ("bleu", "bleu", "bleu"), ("meteor", "meteor", "meteor"), ("bertscore_f1", "bertscore", "bertscore_f1"),
    ("follow_up_rate", "degeneration", "follow_up_rate"), ("hit_limit_rate", "degeneration", "hit_limit_rate"),
)


def parse_trainable(text: str) -> dict | None:
    """{trainable, total, percent} from the last `trainable params:` line of a run's stdout, else None."""
    found = TRAINABLE_RE.findall(text)
    if not found:
        return None
    trainable, total, pct = found[-1]
    return {"trainable": int(trainable), "total": int(total), "percent": float(pct)}


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def mean_interval(values: list[float], n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap interval of a mean over items (seeded, like the paired comparisons)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        return float("nan"), float("nan")
    means = x[np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def read_cell(cell: dict) -> dict:
    """A summary row for one cell. `cell`: name, dir, system, mode, overrides, and optionally status and
    wall_seconds (from the grid runner). Scores are None where the cell has no metrics."""
    d = Path(cell["dir"])
    row = {k: cell.get(k) for k in ("name", "mode", "system", "overrides", "status", "wall_seconds")}
    row["dir"] = str(d)
    row["overrides"] = row["overrides"] or {}
    metrics = read_json(d / EVAL_DIR / METRICS)
    error = d / ERROR_FILE
    row["error"] = error.read_text(errors="replace").strip().splitlines()[0] if error.exists() else None
    if row["status"] is None:
        row["status"] = "done" if metrics else ("failed" if row["error"] else "missing")
    stdout = d / STDOUT_LOG
    params = parse_trainable(stdout.read_text(errors="replace")) if stdout.exists() else None
    if cell.get("mode") == "plain":
        params = {"trainable": 0, "total": None, "percent": 0.0}
    row["trainable_params"] = params["trainable"] if params else None
    row["all_params"] = params["total"] if params else None
    row["trainable_percent"] = params["percent"] if params else None
    train = read_json(d / TRAIN_SUMMARY) or {}
    row["train_seconds"] = train.get("train_seconds", 0.0 if cell.get("mode") == "plain" else None)
    row["train_steps"] = train.get("global_step")
    system_metrics = (metrics or {}).get("metrics", {}).get(cell["system"])
    if metrics and system_metrics is None:
        row["status"] = "incomplete"
        row["error"] = row["error"] or f"eval/metrics.json has no scores for the system {cell['system']!r}"
    row["n_items"] = metrics.get("n_items") if metrics else None
    for col, group, key in SCORE_COLUMNS:
        row[col] = (system_metrics or {}).get(group, {}).get(key)
    row["bertscore_model"] = ((metrics or {}).get("config") or {}).get("bertscore_model")
    return row


def item_scores(cell_dir: Path, system: str) -> dict[str, dict[str, float]]:
    """id -> per-item scores of the cell's system, from its eval/predictions.jsonl."""
    from evaluation.metrics import per_item_scores

    rows = read_predictions(Path(cell_dir) / EVAL_DIR / "predictions.jsonl", system)
    return {r["id"]: s for r, s in zip(rows, per_item_scores(rows))}


def build_summary(cells: list[dict], reference: str = "lora", meta: dict | None = None, progress: bool = False) -> dict:
    """Rows for every cell, each cell's ROUGE-L interval, and paired differences from the reference cell."""
    from evaluation.metrics import configure
    from evaluation.significance import paired_bootstrap

    rows = [read_cell(c) for c in cells]
    done = [r for r in rows if r["status"] in ("done", "trained", "resumed") and r["rougeL"] is not None]
    backbones = {r["bertscore_model"] for r in done}
    if len(backbones) > 1:
        log.warning("cells were scored with different BERTScore backbones %s; paired BERTScore differences use %s",
                    sorted(map(str, backbones)), next(iter(backbones)))
    configure(bertscore_model=next(iter(backbones)) if backbones else None)
    iterator = done
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(done, desc="per-item scores", unit="cell")
    scores = {r["name"]: item_scores(Path(r["dir"]), r["system"]) for r in iterator}
    ref_row = next((r for r in done if r["name"] == reference), None)
    ref_scores = scores.get(reference)
    notes = []
    if ref_row is None:
        notes.append(f"no finished reference cell {reference!r}: no paired differences")
    for r in rows:
        mine = scores.get(r["name"])
        r["rougeL_ci"] = list(mean_interval([s["rougeL"] for s in mine.values()])) if mine is not None else None
        r["vs_reference"] = None
        if r["name"] not in scores or ref_scores is None or r["name"] == reference:
            continue
        mine = scores[r["name"]]
        if set(mine) != set(ref_scores) or not mine:
            notes.append(f"{r['name']}: answered other eval items than {reference} ({len(mine)} vs {len(ref_scores)}), "
                         "so no paired difference")
            continue
        ids = list(ref_scores)
        r["vs_reference"] = {m: paired_bootstrap([ref_scores[i][m] for i in ids], [mine[i][m] for i in ids])
                             for m in PAIRED_METRICS}
    return {"reference": reference, "paired_metrics": list(PAIRED_METRICS), "cells": rows, "notes": notes,
            **(meta or {})}


def overrides_text(overrides: dict) -> str:
    def val(v):
        return "true" if v is True else "false" if v is False else "none" if v is None else str(v)

    return " ".join(f"{k}={val(v)}" for k, v in overrides.items()) or "(defaults)"


def diff_text(row: dict, metric: str) -> str:
    c = (row.get("vs_reference") or {}).get(metric)
    if not c:
        return "–"
    return f"{number(c['diff'], sign=True)} {interval(c['ci_low'], c['ci_high'])}"


MD_HEADER = ["cell", "mode", "overrides", "trainable params", "train s", "ROUGE-1", "ROUGE-2", "ROUGE-L", "BLEU",
             "METEOR", "BERTScore", "follow-up", "hit limit"]


def markdown(summary: dict) -> str:
    ref = summary["reference"]
    header = MD_HEADER + [f"ΔROUGE-L vs {ref} [95% CI]", f"ΔBERTScore vs {ref} [95% CI]"]
    lines = [f"# Ablation grid: {summary.get('grid', '?')}", ""]
    if summary.get("preset"):
        lines += [f"Preset `{summary['preset']}`; fixed overrides: "
                  f"{overrides_text(summary.get('fixed_overrides') or {})}. "
                  f"Every cell evaluated with the same settings: {overrides_text(summary.get('eval') or {})}.", ""]
    lines += ["Scores of each cell's own system on its eval items (ROUGE F1, corpus BLEU-4, METEOR, BERTScore F1; "
              "follow-up and hit limit: share of answers). Δ: paired difference from the reference cell on the same "
              "items, mean and 95% paired-bootstrap interval.", "",
              "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in summary["cells"]:
        status = "" if r["status"] in ("done", "trained", "resumed") else f" ({r['status']})"
        cells = [r["name"] + status, r["mode"] or "–", overrides_text(r["overrides"]).replace("|", "\\|"),
                 f"{r['trainable_params']:,}" if r["trainable_params"] is not None else "–",
                 number(r["train_seconds"], 0, 0)]
        cells += [number(r[c]) for c in ("rouge1", "rouge2", "rougeL", "bleu", "meteor", "bertscore_f1",
                                         "follow_up_rate", "hit_limit_rate")]
        cells += [diff_text(r, "rougeL"), diff_text(r, "bertscore_f1")]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [r for r in summary["cells"] if r["error"]]
    if failed:
        lines += ["", "Failed or incomplete cells:", ""]
        lines += [f"- {r['name']}: {r['error']} ({r['dir']}/{ERROR_FILE})" for r in failed]
    if summary["notes"]:
        lines += ["", *(f"Note: {n}" for n in summary["notes"])]
    return "\n".join(lines) + "\n"


CSV_FIELDS = ["name", "status", "mode", "system", "overrides", "trainable_params", "all_params", "trainable_percent",
              "train_seconds", "train_steps", "wall_seconds", "n_items", *(c for c, _, _ in SCORE_COLUMNS),
              "rougeL_ci_low", "rougeL_ci_high"]


def to_csv(summary: dict) -> str:
    paired = [f"d_{m}{s}" for m in summary["paired_metrics"] for s in ("", "_ci_low", "_ci_high", "_p")]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS + paired + ["dir", "error"], lineterminator="\n")
    writer.writeheader()
    for r in summary["cells"]:
        out = {k: r.get(k) for k in CSV_FIELDS + ["dir", "error"]}
        out["overrides"] = overrides_text(r["overrides"])
        out["rougeL_ci_low"], out["rougeL_ci_high"] = r["rougeL_ci"] or (None, None)
        for m, c in (r["vs_reference"] or {}).items():
            out.update({f"d_{m}": c["diff"], f"d_{m}_ci_low": c["ci_low"],
                        f"d_{m}_ci_high": c["ci_high"], f"d_{m}_p": c["p_value"]})
        writer.writerow(out)
    return buf.getvalue()


def dot_whisker_chart(rows: list[tuple[str, float, float, float, str]], title: str, line_at: float | None = None,
                      line_label: str = "", width: int = 620, clip_at_zero: bool = False) -> str:
    """Rows of (label, value, interval low, interval high, colour): a dot and whisker per row, the numbers on
    the right, and a dashed vertical line at `line_at` (a reference value) when given."""
    from evaluation.html_plots import FONT, short

    left, right, top, row_h = 130, 200, 40, 22
    height = top + row_h * max(len(rows), 1) + 22
    lo = min([r[2] for r in rows] + ([line_at] if line_at is not None else []) + [0.0])
    hi = max([r[3] for r in rows] + ([line_at] if line_at is not None else []) + [0.01])
    pad = (hi - lo) * 0.05
    lo, hi = (max(lo - pad, 0.0) if clip_at_zero else lo - pad), hi + pad
    sx = lambda v: left + (v - lo) / (hi - lo) * (width - left - right)  # noqa: E731
    body = [f'<text x="{width / 2:.0f}" y="15" text-anchor="middle" font-weight="600">{escape(title)}</text>',
            f'<text x="{sx(lo):.1f}" y="{height - 4}" text-anchor="start">{lo:.3f}</text>',
            f'<text x="{sx(hi):.1f}" y="{height - 4}" text-anchor="end">{hi:.3f}</text>']
    if line_at is not None:
        x = sx(line_at)
        body += [f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 18}" stroke="#888" '
                 'stroke-dasharray="3,3"/>',
                 f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle" fill="#666">{escape(line_label)}</text>']
    for i, (label, value, c_lo, c_hi, tone) in enumerate(rows):
        y = top + i * row_h + row_h / 2
        text = f"{value:+.3f} [{c_lo:+.3f}, {c_hi:+.3f}]" if line_at == 0 else f"{value:.3f} [{c_lo:.3f}, {c_hi:.3f}]"
        body += [f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(short(label, 20))}</text>',
                 f'<line x1="{sx(c_lo):.1f}" y1="{y:.1f}" x2="{sx(c_hi):.1f}" y2="{y:.1f}" stroke="{tone}" '
                 'stroke-width="2"/>',
                 f'<circle cx="{sx(value):.1f}" cy="{y:.1f}" r="4" '
                 f'fill="{tone}"><title>{escape(f"{label}: {text}")}</title></circle>',
                 f'<text x="{width - right + 8}" y="{y + 4:.1f}" text-anchor="start">{escape(text)}</text>']
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{escape(title)}" {FONT}><title>{escape(title)}</title>' + "".join(body) + "</svg>")


def rouge_l_chart(cells: list[dict], reference: str) -> str:
    """ROUGE-L per cell with its 95% bootstrap interval over items; a dashed line at the reference cell's mean."""
    from evaluation.html_plots import colour

    rows = [(r["name"], r["rougeL"], *r["rougeL_ci"], colour(i))
            for i, r in enumerate(c for c in cells if c.get("rougeL") is not None and c.get("rougeL_ci"))]
    ref = next((r for r in cells if r["name"] == reference and r.get("rougeL") is not None), None)
    return dot_whisker_chart(rows, "ROUGE-L per cell (mean, 95% bootstrap interval over items)",
                             ref["rougeL"] if ref else None, reference, clip_at_zero=True)


def difference_chart(cells: list[dict], reference: str, metric: str = "rougeL") -> str | None:
    """Each cell's paired difference from the reference: green when the interval is above zero, red below."""
    rows = []
    for r in cells:
        c = (r.get("vs_reference") or {}).get(metric)
        if c:
            tone = "#2e7d32" if c["ci_low"] > 0 else "#c62828" if c["ci_high"] < 0 else "#666"
            rows.append((r["name"], c["diff"], c["ci_low"], c["ci_high"], tone))
    if not rows:
        return None
    name = {"rougeL": "ROUGE-L", "bertscore_f1": "BERTScore"}.get(metric, metric)
    return dot_whisker_chart(rows, f"{name}: cell minus {reference} on the same items (paired, 95% interval)", 0.0, "0")


def html(summary: dict) -> str:
    from evaluation.html_report import CSS, fmt, table

    ref = summary["reference"]
    header = MD_HEADER + [f"ΔROUGE-L vs {ref} [95% CI]", f"ΔBERTScore vs {ref} [95% CI]"]
    body_rows = []
    for r in summary["cells"]:
        status = "" if r["status"] in ("done", "trained", "resumed") else f" ({r['status']})"
        cells = [escape(r["name"] + status), fmt(r["mode"]), escape(overrides_text(r["overrides"])),
                 f"{r['trainable_params']:,}" if r["trainable_params"] is not None else "–",
                 escape(number(r["train_seconds"], 0, 0))]
        cells += [fmt(r[c]) for c in ("rouge1", "rouge2", "rougeL", "bleu", "meteor", "bertscore_f1",
                                      "follow_up_rate", "hit_limit_rate")]
        cells += [escape(diff_text(r, "rougeL")), escape(diff_text(r, "bertscore_f1"))]
        body_rows.append(cells)
    parts = ["<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Ablation "
             f"{escape(str(summary.get('grid', '')))}</title>",
             f"<style>{CSS}</style></head><body>",
             f"<h1>Ablation grid: {escape(str(summary.get('grid', '?')))}</h1>",
             f"<p class=\"muted\">Preset {escape(str(summary.get('preset', '?')))}; fixed overrides: "
             f"{escape(overrides_text(summary.get('fixed_overrides') or {}))}; evaluation for every cell: "
             f"{escape(overrides_text(summary.get('eval') or {}))}. Reference cell for paired differences: "
             f"{escape(ref)}.</p>",
             "<h2>Scores</h2>", table(header, body_rows),
             "<h2>ROUGE-L per cell</h2><div class=\"plots\">", rouge_l_chart(summary["cells"], ref)]
    diff_svg = difference_chart(summary["cells"], ref)
    if diff_svg:
        parts.append(diff_svg)
    parts.append("</div>")
    failed = [r for r in summary["cells"] if r["error"]]
    if failed:
        parts.append("<h2>Failed or incomplete cells</h2><ul>" + "".join(
            f"<li>{escape(r['name'])}: {escape(r['error'])} <span "
            f"class=\"muted\">({escape(r['dir'])}/{ERROR_FILE})</span></li>"
            for r in failed) + "</ul>")
    if summary["notes"]:
        parts.append("".join(f'<p class="warn">{escape(n)}</p>' for n in summary["notes"]))
    if summary.get("commands"):
        parts.append("<h2>Commands</h2>" + "".join(
            f"<p><b>{escape(name)}</b><br><code>{escape(cmd)}</code></p>" for name, cmd in summary["commands"].items()))
    parts.append("</body></html>\n")
    return "".join(parts)


def write_summary(summary: dict, out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"summary.{ext}" for ext in ("md", "csv", "json", "html")}
    paths["md"].write_text(markdown(summary), encoding="utf-8")
    paths["csv"].write_text(to_csv(summary), encoding="utf-8")
    paths["json"].write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    paths["html"].write_text(html(summary), encoding="utf-8")
    log.info("summary written: %s", ", ".join(str(p) for p in paths.values()))
    return paths
