"""The evaluation as one self-contained HTML page: <out_dir>/report.html next to metrics.json.

Reads what `evaluation.run` writes (metrics.json, predictions.jsonl) and draws, with inline SVG and a
few lines of inline script (no network): the table in the study's layout with metric versions; each
main metric per system with the paired-bootstrap interval of its difference from the baseline;
per-item ROUGE-L histograms; the per-domain breakdown; degeneration; whatever G-Eval section
metrics.json has, with its warnings next to the scores; and a browser of every question with each
system's answer, its evidence and retrieved subgraph. All text from the files is escaped.
"""
from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from html import escape
from pathlib import Path

from evaluation import html_plots as plots
from evaluation.numbers import interval, number
from evaluation.predictions import read_predictions
from evaluation.report import DEGENERATION_COLUMNS, STUDY_COLUMNS

log = logging.getLogger(__name__)
WARNING_KEYS = ("warning", "sanity", "note", "caveat")
GEVAL_SCORE_KEYS = ("mean", "score", "geval")
CSS = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1300px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th:first-child,td:first-child{text-align:left}
th{background:#f2f2f2}.warn{background:#fff4e5;border-left:4px solid #f58518;padding:.4em .8em;margin:.4em 0}
.plots{display:flex;flex-wrap:wrap;gap:12px}.pair{display:flex;align-items:center}.muted{color:#666;font-size:12px}
.item{border:1px solid #ddd;margin:.3em 0;padding:.3em .6em}.item summary{cursor:pointer}
.answers{display:flex;gap:10px;flex-wrap:wrap}.answer{flex:1 1 300px;border-top:3px solid #ccc;padding:.2em .5em}
.text{white-space:pre-wrap;font-size:13px}.tag{background:#eee;border-radius:3px;padding:0 4px;font-size:12px}"""
# the question filter: words typed (or given as #filter=... in the URL) and a domain; hides the other items
FILTER_JS = """(function(){var box=document.getElementById('filter'),dom=document.getElementById('domain-filter'),
shown=document.getElementById('shown'),items=document.querySelectorAll('#browser details.item');
function apply(){var q=box.value.trim().toLowerCase(),d=dom.value,n=0;items.forEach(function(el){
var ok=(!q||el.textContent.toLowerCase().indexOf(q)>=0)&&(!d||el.getAttribute('data-domain')===d);
el.hidden=!ok;if(ok)n++;});shown.textContent=n+' of '+items.length+' questions shown';}
box.addEventListener('input',apply);dom.addEventListener('change',apply);
var m=/^#filter=(.*)$/.exec(location.hash);if(m){try{box.value=decodeURIComponent(m[1]);}catch(e){box.value=m[1];}}
apply();})();"""


def fmt(v) -> str:
    """A table cell as HTML: evaluation.numbers.number, escaped."""
    return escape(number(v))


def table(header: list[str], rows: list[list[str]], titles: list[str] | None = None) -> str:
    """Header cells are escaped here; row cells must already be HTML (use fmt or escape)."""
    th = "".join(f'<th title="{escape(t)}">{escape(h)}</th>' if t else f"<th>{escape(h)}</th>"
                 for h, t in zip(header, titles or [""] * len(header)))
    trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{trs}</table>"


def system_order(summary: dict, rows: list[dict]) -> list[str]:
    """The run's own order (baseline first): config.systems, then first appearance, then metrics keys."""
    order = list((summary.get("config") or {}).get("systems") or [])
    for name in [r.get("system") for r in rows] + list(summary.get("metrics") or {}):
        if name and name not in order:
            order.append(name)
    present = set(summary.get("metrics") or {}) | {r.get("system") for r in rows}
    return [s for s in order if s in present]


def geval_view(geval, systems: list[str]):
    """Any nesting of the G-Eval section as (context, system, flat fields) rows, other settings as
    (path, value) pairs, and every warning-like string as (path, text); nothing is assumed about key names
    except that system names mark per-system results."""
    rows, info, warnings = [], [], []

    def is_warning(key, value) -> bool:
        return any(w in str(key).lower() for w in WARNING_KEYS) and not isinstance(value, dict)

    def texts(value) -> list[str]:
        return [str(t) for t in (value if isinstance(value, list) else [value]) if t]

    def flatten(node: dict, prefix: str, out: dict, where: str):
        for k, v in node.items():
            key = f"{prefix}{k}"
            if is_warning(k, v):
                warnings.extend((where, t) for t in texts(v))
            elif isinstance(v, dict):
                flatten(v, key + ".", out, where)
            elif isinstance(v, list):
                out[key + " (count)"] = len(v)
            else:
                out[key] = v

    def walk(node: dict, path: list[str]):
        for k, v in node.items():
            where = " / ".join(path + [str(k)])
            if str(k) in systems and isinstance(v, dict):
                fields: dict = {}
                flatten(v, "", fields, where)
                rows.append((" / ".join(path) or "G-Eval", str(k), fields))
            elif is_warning(k, v):
                warnings.extend((" / ".join(path) or "G-Eval", t) for t in texts(v))
            elif isinstance(v, dict):
                walk(v, path + [str(k)])
            elif isinstance(v, list):
                info.append((where, ", ".join(map(str, v[:12])) + (" …" if len(v) > 12 else "")))
            else:
                info.append((where, v))

    if isinstance(geval, dict):
        walk(geval, [])
    elif geval is not None:
        info.append(("G-Eval", json.dumps(geval)[:2000]))
    return rows, info, warnings


def geval_judges(rows, info) -> dict[str, str]:
    """The judge named for each context: a "judge" field of its rows or a "judge" setting under its path."""
    out = {ctx: f["judge"] for ctx, _, f in rows if f.get("judge")}
    for path, v in info:
        ctx, _, key = path.rpartition(" / ")
        if key == "judge" and v:
            out.setdefault(ctx or "G-Eval", v)
    return out


def geval_score(fields: dict):
    return next((fields[k] for k in GEVAL_SCORE_KEYS if isinstance(fields.get(k), (int, float))), None)


def section_header(summary: dict, systems: list[str], baseline: str | None) -> str:
    run, gen = summary.get("run") or {}, summary.get("generation") or {}
    facts = [("items", summary.get("n_items")), ("systems", ", ".join(systems)), ("baseline", baseline),
             ("eval file", summary.get("eval_file")), ("prompt style", summary.get("prompt_style")),
             ("git", run.get("git")), ("time", run.get("time")),
             ("generation", ", ".join(f"{k}={v}" for k, v in gen.items())),
             ("packages", ", ".join(f"{k} {v}" for k, v in (run.get("packages") or {}).items()))]
    return '<section id="summary"><h1>Evaluation report</h1><ul>' + "".join(
        f"<li><b>{escape(k)}</b>: {fmt(v)}</li>" for k, v in facts if v not in (None, "")) + "</ul></section>"


def section_metrics(summary: dict, systems: list[str], geval_rows, geval_warnings, judges: dict) -> str:
    metrics, versions = summary.get("metrics") or {}, summary.get("metric_versions") or {}
    known = {(g, k) for _, g, k in STUDY_COLUMNS + DEGENERATION_COLUMNS}
    value = lambda s, g, k: ((metrics.get(s) or {}).get(g) or {}).get(k)  # noqa: E731
    # metrics a later version adds (not degeneration: its own section has all of it) get a column too
    extra = sorted({(g, k) for s in systems for g, d in (metrics.get(s) or {}).items() if isinstance(d, dict)
                    for k, v in d.items()
                    if (g, k) not in known and g != "degeneration" and isinstance(v, (int, float))})
    cols = [c for c in STUDY_COLUMNS + [(f"{g}.{k}", g, k) for g, k in extra] + DEGENERATION_COLUMNS
            if any(isinstance(value(s, c[1], c[2]), (int, float)) for s in systems)]
    contexts = list(dict.fromkeys(ctx for ctx, _, f in geval_rows if geval_score(f) is not None))
    mark = " †" if geval_warnings else ""
    header = ["system"] + [c[0] for c in cols] + [
        f"G-Eval ({ctx}{'; judge ' + str(judges[ctx]) if judges.get(ctx) else ''}){mark}" for ctx in contexts]
    titles = [""] + [versions.get(c[1], "") for c in cols] + ["" for _ in contexts]
    body = []
    for s in systems:
        m = metrics.get(s) or {}
        cells = [escape(s)]
        for _, g, k in cols:
            v = (m.get(g) or {}).get(k)
            cells.append(fmt(int(v)) if k == "follow_up_count" and v is not None else fmt(v))
        for ctx in contexts:
            cells.append(fmt(next((geval_score(f) for c2, s2, f in geval_rows if c2 == ctx and s2 == s), None)))
        body.append(cells)
    notes = "".join(f'<div class="warn">† {escape(where)}: {escape(text)}</div>' for where, text in geval_warnings)
    notes += "".join(f'<div class="warn">{escape(str(n))}</div>' for n in summary.get("notes") or [])
    vers = "".join(f"<li><b>{escape(k)}</b>: <code>{escape(str(v))}</code></li>" for k, v in versions.items())
    return ('<section id="metrics"><h2>Scores</h2><p class="muted">ROUGE: F1 (rouge-score, stemmed). BLEU-n: sentence '
            "BLEU on n-grams of order n, averaged; BLEU: corpus BLEU-4 (nltk, smoothing method 1). Degeneration: "
            "answers "
            "that invented a follow-up question (count), share cut at the token limit, share of repeated 4-grams, mean "
            "words. Hover a column for its metric version.</p>" + table(header, body, titles) + notes +
            f"<h3>Metric versions</h3><ul>{vers}</ul></section>")


def section_intervals(summary: dict, systems: list[str], baseline: str | None) -> str:
    comps = summary.get("comparisons") or {}
    study_order = [k for _, _, k in STUDY_COLUMNS]
    names = sorted(dict.fromkeys(m for per in comps.values() for m in per),
                   key=lambda m: study_order.index(m) if m in study_order else len(study_order))
    if not names:
        return ('<section id="intervals"><h2>Differences from the baseline</h2>'
                "<p>Only one system: nothing to compare.</p></section>")
    charts, rows = [], []
    for m in names:
        means = {}
        for name, per in comps.items():
            c = per.get(m)
            system, ref = name.split(" vs ", 1)
            if c:
                means.setdefault(ref, c["mean_a"])
                means[system] = c["mean_b"]
        order = [s for s in systems if s in means] + [s for s in means if s not in systems]
        # comparisons against the baseline are labelled by system; others (graph vs finetuned) by their full name
        ivs = [(name.split(" vs ")[0] if name.split(" vs ", 1)[1] == baseline else name,
                per[m]["diff"], per[m]["ci_low"], per[m]["ci_high"], per[m]["p_value"])
               for name, per in comps.items() if m in per]
        charts.append('<div class="pair">' + plots.bar_chart(order, [means[s] for s in order], f"{m}: mean per system")
                      + plots.interval_chart(ivs, f"{m}: difference (vs {baseline} unless named), 95% CI") + "</div>")
        rows += [[escape(name), escape(m), fmt(c["mean_a"]), fmt(c["mean_b"]), number(c["diff"], sign=True),
                  interval(c["ci_low"], c["ci_high"]), fmt(c["p_value"]), fmt(c.get("n"))]
                 for name, per in comps.items() for mm, c in per.items() if mm == m]
    return ('<section id="intervals"><h2>Differences from the baseline</h2><p class="muted">Paired over the same '
            'items: '
            "percentile bootstrap 95% interval of the mean difference, two-sided sign-flip p.</p>"
            f'<div class="plots">{"".join(charts)}</div>'
            + table(["comparison", "metric", "baseline", "system", "difference", "95% CI", "p", "n"], rows)
            + "</section>")


def per_item_rouge_l(row: dict) -> float:
    scores = row.get("scores") or {}
    if isinstance(scores.get("rougeL"), (int, float)):
        return float(scores["rougeL"])
    from evaluation.metrics import rouge_item

    return rouge_item(row)["rougeL"]


def section_histograms(by_system: dict[str, list[dict]], systems: list[str], rouge_l: dict[int, float]) -> str:
    values = {s: [rouge_l[id(r)] for r in by_system.get(s, []) if id(r) in rouge_l] for s in systems}
    y_max = max([max(plots.histogram_counts(v, 20, 0.0, 1.0)) for v in values.values() if v] + [1])
    charts = [plots.histogram(v, f"{s}: n={len(v)}, mean {sum(v) / len(v):.3f}", bins=20, y_max=y_max,
                              fill=plots.colour(i))
              for i, (s, v) in enumerate(values.items()) if v]
    return ('<section id="histograms"><h2>Per-item ROUGE-L</h2><p class="muted">Bins of 0.05 over [0, 1]; '
            'the same count axis for every system.</p><div class="plots">' + "".join(charts) + "</div></section>")


def section_concepts(summary: dict, systems: list[str]) -> str:
    """Concept scores per system and, per comparison, the questions won and lost on concept coverage."""
    from evaluation.concepts import CONCEPT_METRICS
    from evaluation.report import CONCEPT_LABELS

    c = summary.get("concepts")
    if not c:
        return ('<section id="concepts"><h2>Concepts named</h2><p>No concept scores in metrics.json (the concept '
                "graph was empty or unreachable, or --concepts false).</p></section>")
    means = c.get("means") or {}
    body = [[escape(s)] + [fmt((means.get(s) or {}).get(m)) for m in CONCEPT_METRICS] for s in systems if s in means]
    parts = [table(["system"] + [CONCEPT_LABELS[m] for m in CONCEPT_METRICS], body)]
    for name, b in (c.get("breakdown") or {}).items():
        rows = [[escape(f"{title}: {g}"), fmt(v["wins"]), fmt(v["losses"]), fmt(v["ties"])]
                for title, groups in (("domain", b["by_domain"]), ("retrieval recall", b["by_retrieval_recall"]))
                for g, v in groups.items()]
        parts.append(f"<h3>{escape(name)}: concept coverage per question</h3>"
                     + table(["group", "wins", "losses", "ties"], rows))
    return ('<section id="concepts"><h2>Concepts named</h2><p class="muted">By the concept graph\'s own linker. '
            "Coverage: share of the reference's concepts the answer names; support: share of the answer's concepts "
            "in the reference or the question's subgraph; retrieval recall: share of the reference's concepts in "
            "the subgraph (the same for every system); evidence use: share of the subgraph's concepts the answer "
            f"names. {fmt(c.get('generic_concepts_ignored'))} generic concepts ignored. Paired differences are in "
            "the section above.</p>" + "".join(parts) + "</section>")


def section_domains(summary: dict, systems: list[str], rows: list[dict]) -> str:
    by_domain = summary.get("by_domain") or {}
    domains = sorted({d for s in systems for d in by_domain.get(s) or {}})
    if not domains:
        return '<section id="domains"><h2>Per domain</h2><p>No per-domain scores in metrics.json.</p></section>'
    n = Counter((r.get("system"), r.get("domain")) for r in rows)
    value = lambda s, d, g, k: (((by_domain.get(s) or {}).get(d) or {}).get(g) or {}).get(k)  # noqa: E731
    cols = [c for c in STUDY_COLUMNS if any(value(s, d, c[1], c[2]) is not None for s in systems for d in domains)]
    body = [[escape(d), escape(s), fmt(n.get((s, d)))] + [fmt(value(s, d, g, k)) for _, g, k in cols]
            for d in domains for s in systems if d in (by_domain.get(s) or {})]
    chart = plots.grouped_bars(domains, systems,
                               {(d, s): value(s, d, "rouge", "rougeL") for d in domains for s in systems},
                               "ROUGE-L by domain")
    head = ["domain", "system", "items"] + [c[0] for c in cols]
    return '<section id="domains"><h2>Per domain</h2>' + chart + table(head, body) + "</section>"


def section_degeneration(summary: dict, systems: list[str], by_system: dict[str, list[dict]]) -> str:
    metrics = summary.get("metrics") or {}
    deg = {s: (metrics.get(s) or {}).get("degeneration") or {} for s in systems}
    reasons = sorted({str(r.get("stop_reason")) for s in systems for r in by_system.get(s, [])})
    stops = {s: Counter(str(r.get("stop_reason")) for r in by_system.get(s, [])) for s in systems}
    rates = [("follow-up questions", "follow_up_rate"), ("hit limit", "hit_limit_rate"),
             ("repeated 4-grams", "repeat4")]
    chart = plots.grouped_bars([r[0] for r in rates], systems,
                               {(lab, s): deg[s].get(k) for lab, k in rates for s in systems},
                               "degeneration (share of answers / of 4-grams)")
    body = [[escape(s), fmt(int(deg[s]["follow_up_count"]) if "follow_up_count" in deg[s] else None)]
            + [fmt(deg[s].get(k)) for k in ("follow_up_rate", "hit_limit_rate", "repeat4", "mean_words")]
            + [fmt(stops[s].get(r, 0)) for r in reasons] for s in systems]
    head = ["system", "follow-up Q", "follow-up rate", "hit limit", "repeat 4-gram", "words"]
    head += [f"stop: {r}" for r in reasons]
    return '<section id="degeneration"><h2>Degeneration</h2>' + chart + table(head, body) + "</section>"


def section_geval(rows, info, warnings, systems: list[str]) -> str:
    if not (rows or info or warnings):
        return ""
    out = ['<section id="geval"><h2>G-Eval</h2>']
    out += [f'<div class="warn">⚠ {escape(where)}: {escape(text)}</div>' for where, text in warnings]
    first = ("mean", "score", "judge", "method", "prompt", "n", "n_failed")
    rank = {s: i for i, s in enumerate(systems)}
    shown = set()
    for ctx in dict.fromkeys(r[0] for r in rows):
        part = sorted((r for r in rows if r[0] == ctx), key=lambda r: rank.get(r[1], len(rank)))
        keys = list(dict.fromkeys(k for _, _, f in part for k in f))
        keys = [k for k in first if k in keys] + [k for k in keys if k not in first]
        mine = [(p, v) for p, v in info if p.startswith(ctx + " / ") or ctx == "G-Eval"]
        shown.update(p for p, _ in mine)
        settings = "".join(f"<li><b>{escape(p.rpartition(' / ')[2])}</b>: {fmt(v)}</li>" for p, v in mine)
        body = [[escape(s)] + [fmt(f.get(k)) for k in keys] for _, s, f in part]
        out.append(f"<h3>{escape(ctx)}</h3><ul>{settings}</ul>" + table(["system"] + keys, body))
    rest = [(p, v) for p, v in info if p not in shown]
    if rest:
        out.append("<ul>" + "".join(f"<li><b>{escape(p)}</b>: {fmt(v)}</li>" for p, v in rest) + "</ul>")
    return "".join(out) + "</section>"


def answer_block(row: dict, i: int, rouge_l: float | None, geval_mark: str = "") -> str:
    meta = [f"stop: {row.get('stop_reason', '?')}", f"tokens: {row.get('new_tokens', '?')}"]
    meta += [f"ROUGE-L: {rouge_l:.3f}"] if rouge_l is not None else []
    # per-item G-Eval scores evaluation.run merged in (geval_<prompt>_<method>); † when the section has warnings
    meta += [f"G-Eval {k[len('geval_'):]}{geval_mark}: {v:.2f}" for k, v in sorted(row.items())
             if k.startswith("geval_") and isinstance(v, (int, float)) and not isinstance(v, bool)]
    parts = [f'<div class="answer" style="border-top-color:{plots.colour(i)}"><h4>{escape(str(row.get("system")))}</h4>'
             f'<div class="muted">{escape(" · ".join(meta))}</div>',
             f'<p class="text">{escape(str(row.get("prediction", "")))}</p>']
    raw = row.get("raw_prediction")
    if raw and raw != row.get("prediction"):
        parts.append('<details><summary class="muted">raw output before the stop-string cut</summary>'
                     f'<p class="text">{escape(str(raw))}</p></details>')
    if isinstance(row.get("evidence"), list) and row["evidence"]:
        lines = "".join(f"<li>{escape(str(e))}</li>" for e in row["evidence"])
        parts.append(f'<div class="evidence"><b>evidence</b><ul>{lines}</ul></div>')
    if isinstance(row.get("subgraph"), dict):
        parts.append('<div class="subgraph">' + plots.subgraph_svg(row["subgraph"]) + "</div>")
    return "".join(parts) + "</div>"


def section_browser(rows: list[dict], systems: list[str], rouge_l: dict[int, float], geval_warnings=()) -> str:
    items: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        items[str(r.get("id"))].append(r)
    domains = sorted({str(r.get("domain")) for r in rows if r.get("domain")})
    options = "".join(f'<option value="{escape(d)}">{escape(d)}</option>' for d in domains)
    out = ['<section id="browser"><h2>Questions and answers</h2><p><input id="filter" type="search" size="50" '
           'placeholder="filter: words in question, reference or answers"> <select id="domain-filter">'
           f'<option value="">all domains</option>{options}</select> <span id="shown" class="muted"></span></p>']
    if geval_warnings:
        out.append('<div class="warn">† G-Eval scores in the answers below: see the warnings in the G-Eval '
                   'section.</div>')
    rank = {s: i for i, s in enumerate(systems)}
    for item_id, group in items.items():
        first = group[0]
        domain = escape(str(first.get("domain", "")))
        answers = "".join(answer_block(r, rank.get(r.get("system"), 0), rouge_l.get(id(r)),
                                       " †" if geval_warnings else "")
                          for r in sorted(group, key=lambda r: rank.get(r.get("system"), len(rank))))
        out.append(f'<details class="item" data-domain="{domain}"><summary><span class="tag">{escape(item_id)}</span> '
                   f'<span class="tag">{domain}</span> {escape(str(first.get("question", "")))}</summary>'
                   f'<h4>Reference</h4><p class="text">{escape(str(first.get("reference", "")))}</p>'
                   f'<div class="answers">{answers}</div></details>')
    return "".join(out) + "</section>"


def render_page(summary: dict, rows: list[dict]) -> str:
    systems = system_order(summary, rows)
    comps = summary.get("comparisons") or {}
    baseline = next(iter(comps)).split(" vs ", 1)[1] if comps else (systems[0] if systems else None)
    by_system: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_system[r.get("system")].append(r)
    rouge_l = {id(r): per_item_rouge_l(r) for r in rows if "reference" in r and "prediction" in r}
    g_rows, g_info, g_warn = geval_view(summary.get("geval"), systems)
    body = [section_header(summary, systems, baseline),
            section_metrics(summary, systems, g_rows, g_warn, geval_judges(g_rows, g_info)),
            section_geval(g_rows, g_info, g_warn, systems), section_intervals(summary, systems, baseline),
            section_concepts(summary, systems),
            section_histograms(by_system, systems, rouge_l), section_domains(summary, systems, rows),
            section_degeneration(summary, systems, by_system), section_browser(rows, systems, rouge_l, g_warn)]
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
            f"<title>Evaluation report</title><style>{CSS}</style></head><body>" + "".join(body)
            + f"<script>{FILTER_JS}</script></body></html>\n")


def write_html_report(out_dir: Path) -> Path:
    """Write out_dir/report.html from out_dir/metrics.json and out_dir/predictions.jsonl; return its path."""
    out_dir = Path(out_dir)
    summary = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    page = render_page(summary, read_predictions(out_dir / "predictions.jsonl"))
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    log.info("HTML report written to %s", path)
    return path
