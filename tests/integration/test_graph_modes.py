"""Every future-work mode for real: a few 4-bit training steps on the bundled model with the concept graph
in an embedded FalkorDB, saved, reloaded by the evaluation and generating; the `ask` command on top."""
import json

import pytest

from tests.integration.conftest import TINY_RUN, run_cli

pytestmark = pytest.mark.integration


def graph_args(kg_dirs, data_dir):
    return ["--kg.work_dir", str(kg_dirs[1]), "--store.data_dir", str(kg_dirs[0]), "--data.out_dir", str(data_dir),
            "--graph.train_baseline", "false"]


@pytest.fixture(scope="module")
def graph_run(built, kg_dirs, prepared_data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("graph-run")
    out = run_cli("training.run", "--graph-prompt", "--run_dir", str(run_dir), *TINY_RUN,
                  *graph_args(kg_dirs, prepared_data),
                  "--eval.systems", "graph")
    return run_dir, out.stdout


def test_graph_prompt_trains_saves_reloads_and_generates(graph_run):
    run_dir, stdout = graph_run
    assert "mode: graph" in stdout and "trainable params:" in stdout
    assert "on Llama-2-7B: graph trainable params" in stdout
    saved = {p.name for p in (run_dir / "adapter").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "graph_modules.safetensors",
            "graph_config.json"} <= saved
    rows = [json.loads(line) for line in (run_dir / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["system"] == "graph" for r in rows)
    assert all(r["new_tokens"] > 0 for r in rows)
    # evidence is what the retrieval returned for the question, never invented for an empty subgraph
    for r in rows:
        assert bool(r["evidence"]) == (not r["graph_fallback"]) == bool(r["subgraph"]["nodes"])
        assert all(line.startswith(f"[{i}] ") for i, line in enumerate(r["evidence"], 1))
    assert (run_dir / "eval" / "report.html").exists()
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert metrics["graph_fallback"]["graph"] == sum(r["graph_fallback"] for r in rows)


@pytest.mark.parametrize("flag,system,files", [
    ("--adapter", "adapter", {"graph_modules.safetensors", "graph_config.json"}),
    ("--prompt-tuning", "prompt-tuning", {"adapter_config.json", "adapter_model.safetensors"}),
    ("--graph-text-only", "graph-text", {"adapter_config.json", "adapter_model.safetensors"}),
])
def test_each_other_mode_trains_saves_reloads_and_generates(flag, system, files, built, kg_dirs, prepared_data,
                                                            tmp_path):
    run_dir = tmp_path / system
    out = run_cli("training.run", flag, "--run_dir", str(run_dir), *TINY_RUN, *graph_args(kg_dirs, prepared_data),
                  # one checkpoint, no dev generation
                  "--eval.systems", system, "--train.select_on", "last", "--train.save_steps", "2")
    assert f"mode: {system}" in out.stdout
    assert files <= {p.name for p in (run_dir / "adapter").iterdir()}
    if system == "adapter":
        # base frozen, no LoRA
        assert "adapter_model.safetensors" not in {p.name for p in (run_dir / "adapter").iterdir()}
        assert "on Llama-2-7B: adapter trainable params" in out.stdout
    rows = [json.loads(line) for line in (run_dir / "eval" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["system"] == system and r["new_tokens"] > 0 for r in rows)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["graph"]["mode"] == system and config["store"]["password"] is None


def test_ask_answers_with_evidence_and_saves_the_page(graph_run, tmp_path):
    run_dir, _ = graph_run
    page = tmp_path / "q.html"
    out = run_cli("evaluation.ask", "What is the bias-variance tradeoff?", "--run_dir", str(run_dir),
                  "--max_new_tokens", "16",
                  "-o", str(page))
    assert out.stdout.startswith("[graph] ")
    assert "evidence the model was given as soft graph tokens and numbered evidence:" in out.stdout
    assert "[1] " in out.stdout and page.exists() and "neo4j" in page.read_text().lower()


def test_ask_falls_back_to_the_plain_prompt_when_the_graph_knows_nothing(graph_run, tmp_path):
    run_dir, _ = graph_run
    out = run_cli("evaluation.ask", "Wie spät ist es heute in Lissabon?", "--run_dir", str(run_dir),
                  "--max_new_tokens", "8",
                  "--json", "-o", str(tmp_path / "none.html"))
    result = json.loads(out.stdout)
    assert result["graph_used"] is False and result["evidence"] == [] and result["subgraph"]["nodes"] == []
    assert result["page"] is None and not (tmp_path / "none.html").exists()


def test_bad_graph_settings_are_named_before_anything_loads(tmp_path):
    out = run_cli("training.run", "--graph-prompt", "--run_dir", str(tmp_path / "bad"), "--graph.gnn", "gin",
                  "--graph.pooling", "max", check=False)
    assert out.returncode == 2
    assert "gnn must be one of" in out.stderr and "pooling must be one of" in out.stderr
