"""Every Cypher statement in kg.cypher passes Neo4j's own linter (no Neo4j server needed).

tests/cypher_lint/lint.mjs runs lintCypherQuery from @neo4j-cypher/language-support (installed by
scripts/setup.sh with `npm ci --prefix tests/cypher_lint`). Diagnostics of severity Error fail; warnings are
acceptable (see lint.mjs for what the linter reports and why). Negative controls show that the linter really
reports syntax and semantic errors, so the main test cannot pass vacuously.
"""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kg.cypher import all_statements, browser_queries

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LINT_DIR = ROOT / "tests" / "cypher_lint"
LINT = LINT_DIR / "lint.mjs"
PACKAGE = LINT_DIR / "node_modules" / "@neo4j-cypher" / "language-support" / "package.json"
ERROR = 1  # LSP DiagnosticSeverity.Error


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH; the Cypher linter needs Node.js")
    if not PACKAGE.exists():
        pytest.skip("@neo4j-cypher/language-support is not installed; run `npm ci --prefix "
                    f"{LINT_DIR.relative_to(ROOT)}`")
    return node


def lint(statements: dict[str, str]) -> dict[str, list[dict]]:
    proc = subprocess.run(
        [_node(), str(LINT)], input=json.dumps(statements), capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    # 0: no errors, 1: some statement has an Error diagnostic; anything else is the linter itself failing
    assert proc.returncode in (0, 1), f"lint.mjs exited {proc.returncode}\nSTDERR:\n{proc.stderr[-5000:]}"
    result = json.loads(proc.stdout)
    assert set(result) == set(statements), "lint.mjs must answer for every statement"
    return result


def errors(result: dict[str, list[dict]]) -> dict[str, list[str]]:
    return {name: [d["message"] for d in diags if d["severity"] == ERROR] for name, diags in result.items()}


def test_every_project_statement_passes_neo4j_linter():
    statements = all_statements() | browser_queries()  # the backend's statements and the shipped Browser queries
    assert statements, "kg.cypher.all_statements() is empty"
    failures = {name: msgs for name, msgs in errors(lint(statements)).items() if msgs}
    assert not failures, "Cypher statements rejected by Neo4j's linter:\n" + "\n".join(
        f"{name}: {msg}\n    {' '.join(statements[name].split())}" for name, msgs in failures.items() for msg in msgs
    )


def test_linter_reports_broken_statements():
    # negative controls, linted in the same way: a syntax error and a semantic one (the linter silently
    # drops its semantic analysis if that crashes, so both kinds are checked), next to a clean statement
    result = errors(lint({
        "syntax": "MATCH (n RETURN n",
        "semantic": "MATCH (n) RETURN m",
        "clean": "MATCH (n:Concept {id: $id}) RETURN n.name AS name",
    }))
    assert result["syntax"], "a syntax error was not reported"
    assert any("`m`" in msg for msg in result["semantic"]), result["semantic"]
    assert result["clean"] == []
