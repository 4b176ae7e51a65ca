"""The HTML report's helpers: SVG plots are well-formed XML with escaped text, cells are escaped, the
G-Eval section is read whatever its nesting, and the whole page shows hostile text without running it."""
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from evaluation import html_plots as plots
from evaluation.html_report import fmt, geval_judges, geval_view, per_item_rouge_l, render_page, system_order, table

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on unescaped <, & or broken nesting
    assert root.tag == SVG + "svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(SVG + "text")]


def test_fmt_escapes_text_and_formats_numbers():
    assert fmt("<b>&'\"") == "&lt;b&gt;&amp;&#x27;&quot;"
    assert fmt(0.123456) == "0.1235" and fmt(142.04) == "142.0" and fmt(3) == "3"
    assert fmt(None) == "–" and fmt(True) == "yes"


def test_table_escapes_header_and_title():
    html = table(["<x>"], [["1"]], titles=['a"b'])
    assert "&lt;x&gt;" in html and 'title="a&quot;b"' in html and "<x>" not in html


def test_bar_chart_is_valid_svg_with_escaped_labels():
    root = parse(plots.bar_chart(["<plain>", "a&b"], [0.25, 0.5], "rouge <1>"))
    assert len(list(root.iter(SVG + "rect"))) == 2
    assert "<plain>" in texts(root) and "rouge <1>" in texts(root)  # shown as text after XML unescaping
    heights = [float(r.get("height")) for r in root.iter(SVG + "rect")]
    assert heights[1] == pytest.approx(2 * heights[0], abs=0.2)  # coordinates are rounded to 0.1


def test_interval_chart_colours_by_sign_of_the_interval():
    root = parse(plots.interval_chart([("up", 0.1, 0.05, 0.15, 0.01), ("flat", 0.0, -0.1, 0.1, 0.9),
                                       ("down", -0.2, -0.3, -0.1, 0.02)], "d"))
    colours = [c.get("fill") for c in root.iter(SVG + "circle")]
    assert colours == ["#2e7d32", "#666", "#c62828"]
    assert any("+0.100 [+0.050, +0.150]" in t for t in texts(root))


def test_histogram_counts_bins_and_clips():
    assert plots.histogram_counts([0.0, 0.05, 0.1, 0.99, 1.0, 1.5, -0.2], 10, 0.0, 1.0) == [3, 1, 0, 0, 0, 0, 0, 0, 0,
                                                                                            3]
    root = parse(plots.histogram([0.1, 0.2, 0.2], "h", bins=5, y_max=4))
    assert len(list(root.iter(SVG + "rect"))) == 5


def test_grouped_bars_skip_missing_values():
    root = parse(plots.grouped_bars(["ai", "cs"], ["plain", "graph"],
                                    {("ai", "plain"): 0.2, ("cs", "graph"): 0.4}, "t"))
    data_bars = [r for r in root.iter(SVG + "rect") if r.find(SVG + "title") is not None]
    assert len(data_bars) == 2


def test_subgraph_drawing_caps_nodes_and_drops_dangling_edges():
    nodes = [{"id": f"c{i}", "name": f"<n{i}>", "score": 1 - i / 100,
              "reason": "seed (lexical)" if i == 0 else "neighbour"} for i in range(50)]
    edges = [{"head": 0, "relation": "uses", "tail": 1, "text": "n0 uses <n1>"},
             {"head": 0, "relation": "is_a", "tail": 49}]
    root = parse(plots.subgraph_svg({"nodes": nodes, "edges": edges, "seeds": ["c0"]}, max_nodes=10))
    circles = list(root.iter(SVG + "circle"))
    assert len(circles) == 10 and circles[0].get("fill") == "#f58518"  # the seed comes first, in orange
    assert len(list(root.iter(SVG + "path"))) == 1  # node 49 was not drawn, so neither is its edge
    assert "<n1>" in texts(root)
    assert "empty subgraph" in plots.subgraph_svg({"nodes": [], "edges": []})


def test_geval_view_reads_any_nesting():
    geval = {"judge": "j1", "warning": "judge failed the sanity check",
             "prompts": {"study_v1": {"plain": {"mean": 3.9, "n_failed": 2, "per_item": [1, 2],
                                                "detail": {"note": "3 unparsed"}},
                                      "graph": {"score": 4.1}}}}
    rows, info, warnings = geval_view(geval, ["plain", "graph"])
    assert [(c, s) for c, s, _ in rows] == [("prompts / study_v1", "plain"), ("prompts / study_v1", "graph")]
    assert rows[0][2] == {"mean": 3.9, "n_failed": 2, "per_item (count)": 2}
    assert ("G-Eval", "judge failed the sanity check") in warnings
    assert any("3 unparsed" in t for _, t in warnings)
    assert info == [("judge", "j1")] and geval_judges(rows, info) == {"G-Eval": "j1"}
    assert geval_view(None, ["plain"]) == ([], [], [])


def test_system_order_puts_the_configured_baseline_first():
    summary = {"config": {"systems": ["plain", "finetuned"]}, "metrics": {"finetuned": {}, "graph": {}, "plain": {}}}
    assert system_order(summary, [{"system": "graph"}]) == ["plain", "finetuned", "graph"]


def test_per_item_rouge_l_prefers_stored_scores():
    assert per_item_rouge_l({"reference": "a b", "prediction": "c", "scores": {"rougeL": 0.7}}) == 0.7
    assert per_item_rouge_l({"reference": "a b c d", "prediction": "a b c d"}) == pytest.approx(1.0)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.starts: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))


def test_page_shows_hostile_text_without_running_it(tmp_path):
    from tests.fixtures.eval_report import HOSTILE, prediction_rows, write_eval_fixture

    summary = write_eval_fixture(tmp_path)
    page = render_page(summary, prediction_rows())
    tags = _Tags()
    tags.feed(page)
    names = [t for t, _ in tags.starts]
    assert names.count("script") == 1 and "img" not in names  # only the filter script; the <img onerror> is text
    assert not any(k.startswith("on") for _, attrs in tags.starts for k in attrs)
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;" in page and HOSTILE not in page
    for section in ("summary", "metrics", "geval", "intervals", "histograms", "domains", "degeneration", "browser"):
        assert f'id="{section}"' in page
    assert names.count("details") >= 6 and "judge sanity" in page


def test_interval_chart_labels_and_p_values_fit_inside_the_picture():
    rows = [("graph-soft vs finetuned", 0.0123, -0.0045, 0.0291, 0.1234),
            ("prompt-tuning vs plain", -0.2, -0.31, -0.1, 0.0001)]
    root = parse(plots.interval_chart(rows, "rougeL: difference, 95% CI"))
    width = float(root.get("width"))
    shown = {t.text: t for t in root.iter(SVG + "text")}
    assert "graph-soft vs finetuned" in shown and "prompt-tuning vs plain" in shown  # never cut
    for text, el in shown.items():
        x, n = float(el.get("x")), len(text) * plots.CHAR_WIDTH
        if el.get("text-anchor") == "end":
            assert x - n >= 0, text
        elif el.get("text-anchor") == "start":
            assert x + n <= width, text
    assert any(t.endswith("p=0.123") for t in shown)
