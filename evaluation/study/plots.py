"""The progress page's mastery plot: one line per topic over time, as one inline SVG element (no script)."""

from __future__ import annotations

from datetime import datetime
from html import escape

from evaluation.html_plots import colour, short


def mastery_svg(
    series: dict[str, list[tuple[str, float]]], max_topics: int = 8, width: int = 640, height: int = 260
) -> str:
    """series: topic -> [(ISO time, mastery 0-1)] as ProgressStore.mastery gives it. The topics with the most
    attempts are drawn; each point's tooltip gives the topic, time and value."""
    label = "mastery per topic over time"
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{label}" font-family="system-ui,sans-serif" font-size="11"><title>{label}</title>'
    )
    if not series:
        return head + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no attempts yet</text></svg>'
    topics = sorted(series, key=lambda t: (-len(series[t]), t))[:max_topics]
    left, right, top, bottom = 40, 170, 14, 30
    times = [datetime.fromisoformat(t).timestamp() for tp in topics for t, _ in series[tp]]
    t0, t1 = min(times), max(times)
    span = (t1 - t0) or 1.0
    plot_w = width - left - right

    def x(ts: float) -> float:
        return left + (ts - t0) / span * plot_w if t1 > t0 else left + plot_w / 2

    y = lambda v: top + (1 - v) * (height - top - bottom)  # noqa: E731
    body = []
    for v in (0, 0.25, 0.5, 0.75, 1.0):
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>'
        )
    for ts, anchor in ((t0, "start"), (t1, "end")) if t1 > t0 else ((t0, "middle"),):
        stamp = datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")
        body.append(f'<text x="{x(ts):.1f}" y="{height - 10}" text-anchor="{anchor}" fill="#555">{stamp}</text>')
    for k, tp in enumerate(topics):
        pts = [(x(datetime.fromisoformat(t).timestamp()), y(v), t, v) for t, v in series[tp]]
        c = colour(k)
        if len(pts) > 1:
            body.append(
                f'<polyline fill="none" stroke="{c}" stroke-width="2" points="'
                + " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in pts)
                + '"/>'
            )
        for px, py, t, v in pts:
            body.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{c}">'
                f'<title>{escape(tp)}: {v:.2f} at {escape(t[:16])}</title></circle>'
            )
        ly = top + 14 * k + 6
        body.append(
            f'<rect x="{width - right + 10}" y="{ly - 8}" width="10" height="10" fill="{c}"/>'
            f'<text x="{width - right + 24}" y="{ly + 1}">{escape(short(tp, 20))} ({series[tp][-1][1]:.2f})</text>'
        )
    return head + "".join(body) + "</svg>"
