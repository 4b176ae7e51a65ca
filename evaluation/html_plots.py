"""Inline SVG drawings for the HTML report: bars, intervals, histograms, grouped bars and a subgraph.

Every function returns one `<svg>` element as a string, with all text escaped, so the report page
needs no script library and no network. Colours are fixed per series position so a system keeps its
colour across plots.
"""
from __future__ import annotations

import math
from html import escape

from evaluation.numbers import number

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d")
FONT = 'font-family="system-ui,sans-serif" font-size="11"'
CHAR_WIDTH = 6.6  # a generous average advance of an 11 px sans-serif glyph: margins sized from text never cut it


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def short(text: str, n: int = 18) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{escape(label)}" {FONT}><title>{escape(label)}</title>' + "".join(body) + "</svg>")


def _text(x: float, y: float, s: str, anchor: str = "middle", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(str(s))}</text>'


def _fmt(v: float) -> str:
    return number(float(v), 3)


def bar_chart(labels: list[str], values: list[float], title: str, width: int = 230, height: int = 170) -> str:
    """One bar per label, value printed above it; the y axis starts at zero."""
    left, right, top, bottom = 36, 8, 22, 34
    top_v = max([v for v in values if v is not None and math.isfinite(v)] + [0.0]) * 1.15 or 1.0
    plot_h, slot = height - top - bottom, (width - left - right) / max(len(values), 1)
    body = [_text(width / 2, 14, title, extra=' font-weight="600"'),
            f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#888"/>',
            _text(left - 4, height - bottom + 4, "0", "end"), _text(left - 4, top + 4, _fmt(top_v), "end")]
    for i, (lab, v) in enumerate(zip(labels, values)):
        x, v = left + i * slot + slot * 0.15, v or 0.0
        h = max(v, 0.0) / top_v * plot_h
        y = height - bottom - h
        body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{colour(i)}">'
                    f"<title>{escape(f'{lab}: {v:.4f}')}</title></rect>")
        body.append(_text(x + slot * 0.35, y - 3, _fmt(v)))
        body.append(_text(x + slot * 0.35, height - bottom + 14, short(lab, 14)))
    return _svg(width, height, body, title)


def interval_chart(rows: list[tuple[str, float, float, float, float]], title: str, plot_width: int = 200) -> str:
    """Rows of (label, difference, CI low, CI high, p): a dot and whisker per row, dashed line at zero.
    Green when the interval lies above zero, red below, grey when it contains zero. The margins grow with the
    longest label and annotation, so neither is ever cut ("graph vs finetuned" in full, p-values included)."""
    notes = [f"{diff:+.3f} [{c_lo:+.3f}, {c_hi:+.3f}] p={p:.3g}" for _, diff, c_lo, c_hi, p in rows]
    left = 12 + CHAR_WIDTH * max([len(str(r[0])) for r in rows] + [4])
    right = 12 + CHAR_WIDTH * max([len(n) for n in notes] + [4])
    width = round(left + plot_width + right)
    top, row_h = 26, 24
    height = top + row_h * max(len(rows), 1) + 18
    lo = min([r[2] for r in rows] + [0.0])
    hi = max([r[3] for r in rows] + [0.0])
    pad = (hi - lo) * 0.1 or 0.01
    lo, hi = lo - pad, hi + pad
    sx = lambda v: left + (v - lo) / (hi - lo) * plot_width  # noqa: E731
    body = [_text(width / 2, 14, title, extra=' font-weight="600"'),
            f'<line x1="{sx(0):.1f}" y1="{top - 6}" x2="{sx(0):.1f}" y2="{height - 14}" stroke="#888" '
            'stroke-dasharray="3,3"/>',
            _text(sx(lo), height - 2, _fmt(lo), "start"), _text(sx(hi), height - 2, _fmt(hi), "end")]
    for i, ((label, diff, c_lo, c_hi, p), note) in enumerate(zip(rows, notes)):
        y = top + i * row_h + row_h / 2
        tone = "#2e7d32" if c_lo > 0 else "#c62828" if c_hi < 0 else "#666"
        body += [_text(left - 6, y + 4, label, "end"),
                 f'<line x1="{sx(c_lo):.1f}" y1="{y:.1f}" x2="{sx(c_hi):.1f}" y2="{y:.1f}" stroke="{tone}" '
                 'stroke-width="2"/>',
                 f'<circle cx="{sx(diff):.1f}" cy="{y:.1f}" r="4" fill="{tone}">'
                 f'<title>{escape(label)}</title></circle>',
                 _text(left + plot_width + 6, y + 4, note, "start")]
    return _svg(width, height, body, title)


def histogram(values: list[float], title: str, bins: int = 10, lo: float = 0.0, hi: float = 1.0,
              y_max: int | None = None,
              fill: str = PALETTE[0], width: int = 260, height: int = 160) -> str:
    """Counts of values in equal bins over [lo, hi] (values outside are clipped to the end bins)."""
    counts = histogram_counts(values, bins, lo, hi)
    y_max = y_max or max(counts + [1])
    left, right, top, bottom = 28, 8, 22, 24
    bw = (width - left - right) / bins
    body = [_text(width / 2, 14, title, extra=' font-weight="600"'),
            f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#888"/>',
            _text(left, height - bottom + 14, _fmt(lo)), _text(width - right, height - bottom + 14, _fmt(hi)),
            _text(left - 4, top + 4, str(y_max), "end")]
    for i, c in enumerate(counts):
        h = c / y_max * (height - top - bottom)
        a, b = lo + i * (hi - lo) / bins, lo + (i + 1) * (hi - lo) / bins
        body.append(f'<rect x="{left + i * bw + 1:.1f}" y="{height - bottom - h:.1f}" width="{bw - 2:.1f}" '
                    f'height="{h:.1f}" '
                    f'fill="{fill}"><title>{escape(f"{a:.2f}-{b:.2f}: {c}")}</title></rect>')
    return _svg(width, height, body, title)


def histogram_counts(values: list[float], bins: int, lo: float, hi: float) -> list[int]:
    counts = [0] * bins
    for v in values:
        k = int((v - lo) / (hi - lo) * bins) if hi > lo else 0
        counts[min(max(k, 0), bins - 1)] += 1
    return counts


def grouped_bars(groups: list[str], series: list[str], values: dict[tuple[str, str], float], title: str,
                 width: int = 460, height: int = 210) -> str:
    """values[(group, series)]: one cluster of bars per group, one colour per series, legend on top."""
    left, right, top, bottom = 36, 8, 40, 26
    top_v = max([v for v in values.values() if v is not None] + [0.0]) * 1.15 or 1.0
    slot = (width - left - right) / max(len(groups), 1)
    bw = slot * 0.8 / max(len(series), 1)
    body = [_text(width / 2, 14, title, extra=' font-weight="600"'),
            f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#888"/>',
            _text(left - 4, top + 4, _fmt(top_v), "end")]
    for j, s in enumerate(series):
        body += [f'<rect x="{left + j * 90}" y="22" width="10" height="10" fill="{colour(j)}"/>',
                 _text(left + j * 90 + 14, 31, short(s, 12), "start")]
    for i, g in enumerate(groups):
        body.append(_text(left + i * slot + slot / 2, height - bottom + 14, short(g, 16)))
        for j, s in enumerate(series):
            v = values.get((g, s))
            if v is None:
                continue
            h = max(v, 0.0) / top_v * (height - top - bottom)
            x = left + i * slot + slot * 0.1 + j * bw
            body.append(f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" '
                        f'fill="{colour(j)}"><title>{escape(f"{g} / {s}: {v:.4f}")}</title></rect>')
    return _svg(width, height, body, title)


def subgraph_svg(subgraph: dict, max_nodes: int = 30, width: int = 440, height: int = 300) -> str:
    """A retrieved subgraph (kg.schema.Subgraph.to_dict()): seed concepts on an inner ring, the rest on an
    outer ring, edges as lines whose tooltip is the triple. Only the max_nodes highest-scoring nodes are drawn."""
    nodes = list(enumerate(subgraph.get("nodes") or []))
    if not nodes:
        return _svg(width, 40, [_text(width / 2, 24, "empty subgraph")], "empty subgraph")
    seeds = set(subgraph.get("seeds") or [])
    is_seed = lambda n: n.get("id") in seeds or str(n.get("reason", "")).startswith("seed")  # noqa: E731
    kept = sorted(nodes, key=lambda p: (not is_seed(p[1]), -float(p[1].get("score") or 0.0)))[:max_nodes]
    inner = [p for p in kept if is_seed(p[1])]
    outer = [p for p in kept if not is_seed(p[1])]
    cx, cy, pos = width / 2, height / 2 + 6, {}
    for ring, radius in ((inner, 0 if len(inner) == 1 else min(width, height) * 0.16),
                         (outer, min(width, height) * 0.38)):
        for k, (idx, _) in enumerate(ring):
            a = 2 * math.pi * k / max(len(ring), 1) - math.pi / 2
            pos[idx] = (cx + radius * 1.35 * math.cos(a), cy + radius * math.sin(a))
    body = []
    edges = [e for e in subgraph.get("edges") or [] if e.get("head") in pos and e.get("tail") in pos]
    for e in edges:
        (x1, y1), (x2, y2) = pos[e["head"]], pos[e["tail"]]
        # bent, so edges through the centre part
        qx, qy = (x1 + x2) / 2 + (y1 - y2) * 0.2, (y1 + y2) / 2 + (x2 - x1) * 0.2
        tip = e.get("text") or f'{e["head"]} {e.get("relation", "")} {e["tail"]}'
        body.append(f'<path d="M{x1:.1f},{y1:.1f} Q{qx:.1f},{qy:.1f} {x2:.1f},{y2:.1f}" fill="none" stroke="#999">'
                    f"<title>{escape(str(tip))}</title></path>")
        if len(edges) <= 16:
            body.append(_text((x1 + 2 * qx + x2) / 4, (y1 + 2 * qy + y2) / 4 - 2, short(e.get("relation", ""), 14),
                              extra=' fill="#777" font-size="9"'))
    for idx, n in kept:
        x, y = pos[idx]
        fill = "#f58518" if is_seed(n) else "#4c78a8"
        tip = f'{n.get("name", n.get("id", ""))} ({n.get("reason", "")}, score {float(n.get("score") or 0):.2f})'
        body += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{fill}"><title>{escape(tip)}</title></circle>',
                 _text(x, y - 9, short(n.get("name", n.get("id", "")), 18))]
    note = f"{len(kept)} of {len(nodes)} concepts, {len(edges)} edges (orange: seeds)"
    body.append(_text(6, 12, note, "start", ' fill="#555"'))
    return _svg(width, height, body, f"subgraph: {note}")
