"""scripts/ablate.py and evaluation.ablation: grid expansion, the flags each cell gets, skip / resume /
failure handling, and the summary built from cell directories written by our own functions."""
import csv
import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

from tests.fixtures.ablation_cells import CELLS, ITEMS, write_cell

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ablate():
    spec = importlib.util.spec_from_file_location("ablate_script", ROOT / "scripts" / "ablate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ablate_script"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def defaults(ablate):
    return ablate.resolve_settings("cpu", ["--graph-prompt"])


# ---- grid expansion --------------------------------------------------------------------------------------

def test_future_work_grid_varies_one_factor_at_a_time(ablate, defaults):
    cells = ablate.expand(list(ablate.GRIDS["future-work"]), defaults=defaults)
    by_name = {c.name: c for c in cells}
    assert len(by_name) == len(cells)  # names unique
    assert set(by_name) == {"lora", "plain", "graph", "graph-text", "graph-soft", "hops-1", "hops-3", "pcst-off",
                            "gnn-transformer", "gnn-gcn", "pooling-mean", "adapter", "lora-r8", "lora-r16", "lora-r64",
                            "prompt-tuning"}
    # the defaults (hops 2, PCST on, GAT, attention pooling, r 32 / alpha 64) are the graph or lora cell itself
    assert (by_name["graph"].mode, by_name["graph"].overrides) == ("graph", {})
    assert (by_name["lora"].mode, by_name["lora"].overrides) == ("lora", {})
    assert by_name["hops-1"].overrides == {"kg.hops": 1} and by_name["hops-3"].overrides == {"kg.hops": 3}
    assert by_name["pcst-off"].overrides == {"kg.pcst": False}
    assert by_name["gnn-gcn"].overrides == {"graph.gnn": "gcn"}
    assert by_name["pooling-mean"].overrides == {"graph.pooling": "mean"}
    assert (by_name["graph-soft"].mode, by_name["graph-soft"].overrides) == ("graph", {"graph.text_evidence": False})
    assert (by_name["graph-text"].mode, by_name["graph-text"].overrides) == ("graph-text", {})
    assert (by_name["adapter"].mode, by_name["prompt-tuning"].mode) == ("adapter", "prompt-tuning")
    assert (by_name["lora-r8"].mode, by_name["lora-r8"].overrides) == ("lora",
                                                                       {"model.lora_r": 8, "model.lora_alpha": 16})
    assert by_name["lora-r64"].overrides == {"model.lora_r": 64, "model.lora_alpha": 128}
    # one factor: every variation sets at most one axis's fields
    for c in cells:
        axes = {k for k in c.overrides if k != "model.lora_alpha"}
        assert len(axes) <= 1, c


def test_cross_is_the_product_of_the_chosen_axes(ablate, defaults):
    cells = ablate.expand(["hops", "pcst"], cross=True, defaults=defaults)
    names = [c.name for c in cells]
    assert len(names) == len(set(names)) == 6 + 2
    grid = {c.name: c.overrides for c in cells if c.mode == "graph"}
    assert grid == {"hops-1_pcst-on": {"kg.hops": 1}, "hops-1_pcst-off": {"kg.hops": 1, "kg.pcst": False},
                    "hops-2_pcst-on": {}, "hops-2_pcst-off": {"kg.pcst": False},
                    "hops-3_pcst-on": {"kg.hops": 3}, "hops-3_pcst-off": {"kg.hops": 3, "kg.pcst": False}}
    # an axis that means nothing in a mode is dropped there (GNN type of a graph-text run), not multiplied
    cells = ablate.expand(["prompt", "gnn"], cross=True, defaults=defaults)
    assert sorted(c.name for c in cells) == sorted(["lora", "plain", "graph-text", "graph-soft_gnn-gat",
                                                    "graph-soft_gnn-transformer",
                                                    "graph-soft_gnn-gcn", "graph_gnn-gat",
                                                    "graph_gnn-transformer", "graph_gnn-gcn"])
    # the one-factor version of the same axes is smaller
    assert len(ablate.expand(["prompt", "gnn"], defaults=defaults)) == 7
    with pytest.raises(ablate.GridError, match="each of them chooses the mode"):
        ablate.expand(["prompt", "adapter"], cross=True, defaults=defaults)
    with pytest.raises(ablate.GridError, match="unknown axis"):
        ablate.expand(["hopz"], defaults=defaults)


def test_every_training_cell_gets_the_same_training_and_eval_settings(ablate, tmp_path):
    grid = ablate.build_grid("future-work", ["hops", "lora_r"], False,
                             ["train.max_steps=2", "eval.sample=5", "kg.work_dir=/tmp/kgw"],
                             "cpu", str(tmp_path / "g"))
    cells = {c.name: c for c in grid.cells}
    assert list(cells) == ["lora", "graph", "hops-1", "hops-3", "lora-r8", "lora-r16", "lora-r64", "plain"]
    for c in grid.cells:
        assert c.dir == tmp_path / "g" / c.name
        if c.mode == "plain":
            continue
        # the configs training.run will build from the cell's flags
        s = ablate.resolve_settings("cpu", c.flags[2:])
        assert s["graph.mode"] == c.mode and s["graph.train_baseline"] is False
        # every cell trains on the preset's items with its schedule (the cpu preset has no per-mode overrides now)
        assert (s["train.train_limit"], s["train.save_steps"], s["train.dev_limit"]) == (320, 20, 16)
        assert s["train.max_steps"] == 2 and s["eval.sample"] == 5 and s["kg.work_dir"] == "/tmp/kgw"
        assert s["kg.hops"] == {"hops-1": 1, "hops-3": 3}.get(c.name, 2)
        assert s["model.lora_r"] == {"lora-r8": 8, "lora-r16": 16, "lora-r64": 64}.get(c.name, 32)
        assert s["model.lora_alpha"] == 2 * s["model.lora_r"]
    cmd = grid.command(cells["hops-1"])
    assert cmd[1:3] == ["-m", "training.run"] and cmd[3:6] == ["--preset", "cpu", "--graph-prompt"]
    assert cmd[-2:] == ["--run_dir", str(tmp_path / "g" / "hops-1")] and "--resume" not in cmd
    assert grid.command(cells["hops-1"], resume=True)[-1] == "--resume"
    plain = grid.command(cells["plain"], source=tmp_path / "g" / "lora")
    assert plain[1:3] == ["-m", "evaluation.run"]
    assert plain[plain.index("--run_dir") + 1] == str(tmp_path / "g" / "lora")
    assert plain[plain.index("--sample") + 1] == "5" and plain[plain.index("--max_new_tokens") + 1] == "320"
    assert plain[plain.index("--systems") + 1] == "plain" and plain[-1] == str(tmp_path / "g" / "plain" / "eval")


def test_bad_options_are_named_before_anything_runs(ablate, tmp_path):
    with pytest.raises(ablate.GridError) as err:
        ablate.build_grid("future-work", None, False, ["kg.hopz=3", "train.run_dir=x", "nonsense"], "cpu",
                          str(tmp_path))
    assert "kg.hopz" in str(err.value) and "train.run_dir" in str(err.value) and "nonsense" in str(err.value)
    # every item (eval.sample none) reaches the training cells' evaluation and the plain cell's alike
    whole = ablate.build_grid("prompt", None, False, ["eval.sample=none"], "cpu", str(tmp_path),
                              cells=["lora", "plain"])
    lora, plain = whole.cells
    assert ablate.resolve_settings("cpu", lora.flags[2:])["eval.sample"] is None
    assert plain.flags[plain.flags.index("--sample") + 1] == "none"
    with pytest.raises(ablate.GridError, match="graph-soft"):  # soft tokens 0 + no text evidence uses no graph
        ablate.build_grid("prompt", None, False, ["graph.soft_tokens=0"], "cpu", str(tmp_path))
    with pytest.raises(ablate.GridError, match="not in the grid"):
        ablate.build_grid("prompt", None, False, [], "cpu", str(tmp_path), cells=["lora", "hops-9"])
    with pytest.raises(ablate.GridError, match="unknown grid"):
        ablate.build_grid("everything", None, False, [], "cpu", str(tmp_path))


def test_dry_run_prints_every_cell_and_its_exact_command(ablate, tmp_path, capsys):
    assert ablate.main(["--grid", "prompt", "--dry-run", "--out",
                        str(tmp_path / "g"), "--set", "train.max_steps=2"]) == 0
    out = capsys.readouterr().out
    for name in ("lora", "graph", "graph-text", "graph-soft", "plain"):
        assert f"[{name}]" in out
    assert "--graph-text-only" in out and "--graph.text_evidence false" in out and "--train.max_steps 2" in out
    assert not (tmp_path / "g").exists()  # a dry run writes nothing


# ---- skip, resume, failure -------------------------------------------------------------------------------

def small_grid(ablate, tmp_path, sets=(), cells=("lora", "graph-text", "plain")):
    return ablate.build_grid("prompt", None, False, list(sets), "cpu", str(tmp_path / "g"), cells=list(cells))


def test_cells_with_metrics_are_skipped_and_checkpoints_are_resumed(ablate, tmp_path):
    grid = small_grid(ablate, tmp_path)
    cells = {c.name: c for c in grid.cells}
    write_cell(cells["lora"].dir, "finetuned", "finetuned")
    (cells["graph-text"].dir / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    assert [ablate.plan(c) for c in grid.cells] == ["skip", "resume", "run"]
    assert ablate.plain_source(grid) is None  # a run without its config.json cannot give the plain cell its settings
    config = {}
    for key, value in ablate.resolve_settings("cpu", cells["lora"].flags[2:]).items():  # what training.run saves
        section, name = key.split(".", 1)
        config.setdefault(section, {})[name] = value
    (cells["lora"].dir / "config.json").write_text(json.dumps(config))
    assert ablate.plain_source(grid) == cells["lora"].dir
    # a run of only the finished cell launches nothing
    only = small_grid(ablate, tmp_path, cells=("lora",))
    results = ablate.run_grid(only, progress=False)
    assert results == {"lora": {"status": "done", "wall_seconds": None, "command": None}}
    assert not (cells["lora"].dir / "ablate_stderr.log").exists()
    assert not (cells["lora"].dir / "ablate_cell.json").exists()
    # the plain answers another cell generated start this cell's prediction cache
    assert ablate.seed_plain_answers(grid,
                                     cells["graph-text"]) == cells["lora"].dir / "eval" / "predictions" / "plain.jsonl"
    copied = cells["graph-text"].dir / "eval" / "predictions" / "plain.jsonl"
    assert copied.read_text() == (cells["lora"].dir / "eval" / "predictions" / "plain.jsonl").read_text()
    assert ablate.seed_plain_answers(grid, cells["graph-text"]) is None  # never overwrites


def test_a_cell_made_with_other_flags_is_refused(ablate, tmp_path):
    grid = small_grid(ablate, tmp_path, sets=["train.max_steps=2"])
    ablate.write_record(grid.cells[0])
    ablate.check_cell_dirs(grid)  # same flags: fine
    other = small_grid(ablate, tmp_path, sets=["train.max_steps=3"])
    with pytest.raises(ablate.GridError, match="made with other flags"):
        ablate.check_cell_dirs(other)


def test_a_failing_cell_is_recorded_and_the_grid_goes_on(ablate, tmp_path):
    """A real training.run that fails (no such model) and a plain cell with no finished run to evaluate."""
    grid = small_grid(ablate, tmp_path, sets=["model.name=/nonexistent/model-folder"], cells=("lora", "plain"))
    results = ablate.run_grid(grid, progress=False)
    assert [r["status"] for r in results.values()] == ["failed", "failed"]
    lora, plain = grid.cells
    error = (lora.dir / "ablate_error.txt").read_text()
    assert error.startswith("exit code 2: ") and "training.run" in error
    assert "/nonexistent/model-folder" in error.split("--- stderr (tail) ---", 1)[1]  # training.run's own message
    assert "no finished training cell" in (plain.dir / "ablate_error.txt").read_text()
    record = json.loads((lora.dir / "ablate_cell.json").read_text())
    assert record["flags"] == lora.flags and record["attempts"][-1]["status"] == "failed"
    summary = ablate.summarise(grid, results, progress=False)
    assert [r["status"] for r in summary["cells"]] == ["failed", "failed"]
    assert "Failed or incomplete cells" in Path(summary["paths"]["md"]).read_text()


# ---- summary -------------------------------------------------------------------------------------------

def test_summary_from_cell_directories(tmp_path):
    from evaluation.ablation import build_summary, item_scores, parse_trainable, write_summary
    from evaluation.significance import paired_bootstrap
    from tests.fixtures.ablation_cells import trainable_line

    written = {name: write_cell(tmp_path / name, system, style, hidden=8 + 4 * i)
               for i, (name, (system, style)) in enumerate(CELLS.items())}
    write_cell(tmp_path / "hops-1", "graph", "graph", items=ITEMS[:4])  # other eval items: no paired difference
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "ablate_error.txt").write_text("exit code 1: python -m training.run ...\n--- stderr (tail) "
                                                           "---\nboom\n")
    cells = [{"name": n, "dir": str(tmp_path / n),
              "mode": {"lora": "lora", "plain": "plain"}.get(n, n), "system": s, "overrides": {}}
             for n, (s, _) in CELLS.items()]
    cells += [{"name": "hops-1", "dir": str(tmp_path / "hops-1"), "mode": "graph",
               "system": "graph", "overrides": {"kg.hops": 1}},
              {"name": "adapter", "dir": str(tmp_path / "adapter"), "mode": "adapter",
               "system": "adapter", "overrides": {}}]
    summary = build_summary(cells, reference="lora", meta={"grid": "test", "preset": "cpu"})
    rows = {r["name"]: r for r in summary["cells"]}

    for name, (system, _) in CELLS.items():
        assert rows[name]["status"] == "done"
        assert rows[name]["rougeL"] == written[name]["metrics"][system]["rouge"]["rougeL"]
        assert rows[name]["bertscore_f1"] == written[name]["metrics"][system]["bertscore"]["bertscore_f1"]
        lo, hi = rows[name]["rougeL_ci"]
        assert lo <= rows[name]["rougeL"] <= hi
    assert rows["lora"]["trainable_params"] == parse_trainable(trainable_line(8))["trainable"] == 16 * 8 + 8
    assert rows["graph-text"]["trainable_params"] == 16 * 12 + 12 and rows["graph-text"]["train_seconds"] == 12.5
    assert rows["plain"]["trainable_params"] == 0
    # paired differences against lora, from per-item scores of each cell's predictions.jsonl
    assert rows["lora"]["vs_reference"] is None
    ref, gt = item_scores(tmp_path / "lora", "finetuned"), item_scores(tmp_path / "graph-text", "graph-text")
    ids = list(ref)
    expected = paired_bootstrap([ref[i]["rougeL"] for i in ids], [gt[i]["rougeL"] for i in ids])
    assert rows["graph-text"]["vs_reference"]["rougeL"] == expected
    assert expected["diff"] > 0  # the graph-text answers copy the reference, the lora ones a part of it
    assert set(rows["plain"]["vs_reference"]) == {"rouge1", "rouge2", "rougeL", "bleu1", "bleu4", "meteor",
                                                  "bertscore_f1"}
    assert rows["hops-1"]["status"] == "done" and rows["hops-1"]["vs_reference"] is None
    assert any("hops-1" in n and "other eval items" in n for n in summary["notes"])
    assert rows["adapter"]["status"] == "failed" and rows["adapter"]["error"].startswith("exit code 1")

    paths = write_summary(summary, tmp_path)
    md = paths["md"].read_text()
    assert "| lora | lora |" in md and "ΔROUGE-L vs lora [95% CI]" in md and "- adapter: exit code 1" in md
    table = list(csv.DictReader(io.StringIO(paths["csv"].read_text())))
    assert [r["name"] for r in table] == ["lora", "graph-text", "plain", "hops-1", "adapter"]
    assert float(table[1]["d_rougeL"]) == pytest.approx(expected["diff"]) and table[0]["d_rougeL"] == ""
    assert json.loads(paths["json"].read_text())["cells"][1]["vs_reference"]["rougeL"]["ci_low"] == expected["ci_low"]
    page = paths["html"].read_text()
    assert page.count("<svg") == 2 and "ROUGE-L per cell" in page and "graph-text" in page


def test_summary_escapes_what_it_shows(tmp_path):
    from evaluation.ablation import html, markdown

    cell_dir = tmp_path / "x"
    write_cell(cell_dir, "finetuned", "finetuned")
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "ablate_error.txt").write_text("<script>alert(1)</script> | broke\n")
    from evaluation.ablation import build_summary

    summary = build_summary([{"name": "lora", "dir": str(cell_dir), "mode": "lora", "system": "finetuned",
                              "overrides": {"data.corpus": "<b>a|b</b>"}},
                             {"name": "y", "dir": str(tmp_path / "y"), "mode": "graph",
                              "system": "graph", "overrides": {}}])
    page = html(summary)
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "<b>a" not in page
    assert "a\\|b" in markdown(summary)

