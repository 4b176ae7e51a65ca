"""The HTML report opened in a real headless Chromium: no console errors, every section in the rendered
DOM, the hostile answer shown as text (its script never ran), and the filter script working."""
import re
import shutil
import subprocess

import pytest

from evaluation.html_report import write_html_report
from tests.fixtures.eval_report import ITEMS, write_eval_fixture

pytestmark = pytest.mark.integration
SECTIONS = ("summary", "metrics", "geval", "intervals", "histograms", "domains", "degeneration", "browser")


def chromium_dom(browser: str, url: str, profile) -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and every console message Chromium logged. The report's own
    script writes nothing to the console, so any message is a failure; this Chromium logs console.error()
    at INFO level (only uncaught exceptions say "Uncaught"), so filtering on "ERROR" would miss them."""
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--window-size=1300,900",
         "--virtual-time-budget=3000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    errors = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return proc.stdout, errors


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    write_eval_fixture(out)
    return write_html_report(out)


@pytest.fixture(scope="module")
def browser():
    path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if path is None:
        pytest.skip("no Chromium on this machine (scripts/setup.sh installs it where apt-get is available)")
    return path


def test_report_renders_in_headless_chromium_without_console_errors(report, browser, tmp_path):
    assert report.name == "report.html" and report.exists()
    dom, errors = chromium_dom(browser, report.as_uri(), tmp_path / "profile")
    assert not errors, errors
    assert "<title>Evaluation report</title>" in dom  # the answer's document.title='pwned' never ran
    for section in SECTIONS:
        assert f'id="{section}"' in dom, section
    assert dom.count('class="item"') == len(ITEMS)
    assert f"{len(ITEMS)} of {len(ITEMS)} questions shown" in dom  # the filter script ran to the end
    assert "&lt;script&gt;document.title='pwned'" in dom and "<img src=" not in dom
    assert dom.count("<svg") >= 7 + 3 + 2 + 2  # metric pairs, histograms, domain + degeneration bars, subgraphs
    assert "judge sanity" in dom and "G-Eval (study_v2 / probability" in dom


def test_filter_from_the_url_hides_other_questions(report, browser, tmp_path):
    dom, errors = chromium_dom(browser, report.as_uri() + "#filter=quicksort", tmp_path / "profile")
    assert not errors, errors
    assert f"1 of {len(ITEMS)} questions shown" in dom
    items = re.findall(r'<details class="item"[^>]*>', dom)
    assert len(items) == len(ITEMS) and sum('hidden=""' in tag for tag in items) == len(ITEMS) - 1
