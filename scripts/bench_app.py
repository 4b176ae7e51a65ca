"""What the study app costs: grading, page load and first answer token, each beside the same work without it.

- grading: POST /api/answer (grade + save in SQLite + reply) against Grader.grade called in this process on the
  same question/answer pairs (answers are other questions' references, the length of real answers);
- page interactive: Chromium (Playwright on /usr/bin/chromium) opening /interview until its script has wired
  the page up (body[data-ready]), against the same browser rendering a static copy of that page's HTML;
- first answer token: POST /api/ask until the first streamed token, against the same model (the app's
  Answerer, loaded in this process) streaming the same question with no HTTP, retrieval or page around it.
Targets (issue 13, no judge): grading p95 <= 1 s, page interactive <= 1 s, first token <= 2 s.

    python scripts/bench_app.py [--n 30] [--run_dir RUN]
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
QUESTIONS = [
    "What is a hash table?",
    "What is the bias-variance trade-off?",
    "What does a p-value mean?",
    "How does dropout regularise a neural network?",
    "What is a database index?",
]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def summary(xs: list[float]) -> dict:
    return {
        "n": len(xs),
        "p50_s": round(statistics.median(xs), 4),
        "p95_s": round(pct(xs, 0.95), 4),
        "max_s": round(max(xs), 4),
    }


def post(url: str, body: dict, timeout: float = 600):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    return urllib.request.urlopen(req, timeout=timeout)


def start_app(args: list[str]) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "evaluation.study", "--port", "0", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("serving"):
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, line.split(" at ")[1].split()[0].rstrip("/")
    raise RuntimeError("the study app did not start")


def bench_grading(url: str, pairs, grader) -> dict:
    app_times, direct_times = [], []
    for k, (item, answer) in enumerate(pairs):
        t = time.perf_counter()
        with post(
            url + "/api/answer", {"learner": f"bench-{os.getpid()}", "question_id": item.id, "answer": answer}
        ) as r:
            r.read()
        app_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        grader.grade(item, answer)
        direct_times.append(time.perf_counter() - t)
    return {
        "app": summary(app_times),
        "without_app": summary(direct_times),
        "target_p95_s": 1.0,
        "meets_target": pct(app_times, 0.95) <= 1.0,
    }


def bench_page(url: str, n: int) -> dict:
    from playwright.sync_api import sync_playwright

    app_times, static_times = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        html = urllib.request.urlopen(url + "/interview").read().decode()
        static = html.replace('<script src="/static/app.js" defer></script>', "")
        for _ in range(n):
            ctx = browser.new_context()
            page = ctx.new_page()
            t = time.perf_counter()
            page.goto(url + "/interview")
            page.wait_for_selector("body[data-ready='1']")
            app_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            page.set_content(static, wait_until="load")
            static_times.append(time.perf_counter() - t)
            ctx.close()
        browser.close()
    return {
        "app": summary(app_times),
        "without_app": summary(static_times),
        "target_p95_s": 1.0,
        "meets_target": pct(app_times, 0.95) <= 1.0,
    }


def bench_first_token(url: str, answerer, questions: list[str]) -> dict:
    app_times, direct_times = [], []
    for q in questions:
        t = time.perf_counter()
        with post(url + "/api/ask", {"question": q}) as r:
            for line in r:
                if line.startswith(b"event: token"):
                    app_times.append(time.perf_counter() - t)
                    break
        # the stream is closed here: the app cancels the rest of the answer
        t = time.perf_counter()
        for ev in answerer.stream(q):
            if ev.kind == "token":
                direct_times.append(time.perf_counter() - t)
                break
    return {
        "app": summary(app_times),
        "without_app": summary(direct_times),
        "target_p95_s": 2.0,
        "meets_target": pct(app_times, 0.95) <= 2.0,
    }


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> int:
    from data.cli import ArgumentParser

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=30, help="graded answers (default 30)")
    p.add_argument("--pages", type=int, default=10, help="page loads (default 10)")
    p.add_argument("--run_dir", help="a training run directory (default: the plain bundled model)")
    p.add_argument("--max_new_tokens", type=int, default=32)
    args = p.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    from data.cli import quiet_third_party

    quiet_third_party()
    from evaluation.study.answerer import Answerer
    from evaluation.study.grader import Grader
    from evaluation.study.guide import StudyGuide
    from evaluation.study.config import StudyConfig
    from prompting.graph_prompt import GraphContext

    cfg = StudyConfig()
    with tempfile.TemporaryDirectory() as tmp:
        app_args = ["--db", str(Path(tmp) / "bench.sqlite"), "--max_new_tokens", str(args.max_new_tokens)]
        if args.run_dir:
            app_args += ["--run_dir", args.run_dir]
        proc, url = start_app(app_args)
        try:
            guide = StudyGuide.load(cfg.corpus, GraphContext().open().index, cfg.work_dir, cfg.question_cache)
            grader = Grader(guide)
            rng = random.Random(0)
            items = rng.sample(guide.items, args.n)
            pairs = [(it, rng.choice(guide.items).answer) for it in items]
            grader.grade(*pairs[0])  # both sides warm
            answerer = Answerer(args.run_dir, None, args.max_new_tokens, cfg.quantization).load()
            answerer.warm_up()
            result = {
                "machine": machine(),
                "grading": bench_grading(url, pairs, grader),
                "page_interactive": bench_page(url, args.pages),
                "first_answer_token": bench_first_token(url, answerer, QUESTIONS),
                "system": answerer.system,
            }
            result["machine"]["load_average_1m_after"] = round(os.getloadavg()[0], 2)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
