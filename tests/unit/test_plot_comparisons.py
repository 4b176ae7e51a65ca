"""scripts/plot_comparisons.py: paired differences from several metrics.json files in one SVG, and clear
errors for a missing file, comparison or metric."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "plot_comparisons.py"


def metrics(path: Path, comparison: str, diff: float, lo: float, hi: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    d = {"diff": diff, "ci_low": lo, "ci_high": hi, "p_value": 0.01, "n": 10, "mean_a": 0.2, "mean_b": 0.2 + diff}
    path.write_text(json.dumps({"comparisons": {comparison: {"rougeL": d, "concept_coverage": d}}}))
    return path


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT)


def test_rows_from_two_files_in_one_chart_per_metric(tmp_path):
    a = metrics(tmp_path / "a" / "metrics.json", "text vs base", 0.041, 0.014, 0.068)
    b = metrics(tmp_path / "b" / "metrics.json", "soft vs base", -0.006, -0.029, 0.015)
    out = tmp_path / "plot.svg"
    r = run("--metric", "rougeL", "--metric", "concept_coverage", "--out", str(out),
            "--row", f"text={a}:text vs base", "--row", f"soft={b}:soft vs base")
    assert r.returncode == 0, r.stderr
    svg = out.read_text()
    assert svg.count("paired difference, 95% CI</text>") == 2  # one chart per metric
    assert "+0.041 [+0.014, +0.068]" in svg and "-0.006 [-0.029, +0.015]" in svg
    assert svg.count('fill="#2a7"') == 2 and svg.count('fill="#888"') == 2  # above 0: green; holds 0: grey


def test_a_path_with_a_colon(tmp_path):
    a = metrics(tmp_path / "run:2" / "metrics.json", "text vs base", 0.02, 0.01, 0.03)
    r = run("--metric", "rougeL", "--out", str(tmp_path / "p.svg"), "--row", f"text={a}:text vs base")
    assert r.returncode == 0, r.stderr
    assert "+0.020 [+0.010, +0.030]" in (tmp_path / "p.svg").read_text()


def test_bad_rows_name_what_is_wrong(tmp_path):
    a = metrics(tmp_path / "metrics.json", "text vs base", 0.01, 0.0, 0.02)
    cases = [(f"text={tmp_path / 'none.json'}:x", "no such metrics.json"),
             (f"text={a}:graph vs base", "no comparison 'graph vs base'; it has text vs base"),
             (f"text{a}", "expected LABEL=METRICS_JSON:COMPARISON")]
    for row, message in cases:
        r = run("--metric", "rougeL", "--out", str(tmp_path / "x.svg"), "--row", row)
        assert r.returncode == 2 and message in r.stderr, (row, r.stderr)
    r = run("--metric", "bleu9", "--out", str(tmp_path / "x.svg"), "--row", f"text={a}:text vs base")
    assert r.returncode == 2 and "has no metric 'bleu9'" in r.stderr
    assert not (tmp_path / "x.svg").exists()
