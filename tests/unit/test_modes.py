"""The mode table (model.modes) is the one place a mode is defined: every entry point reads it, and a mode
registered at run time appears everywhere without another edit. The end-to-end version (a toy mode trained,
saved, reloaded and evaluated) is tests/integration/test_add_a_mode.py."""
import subprocess
import sys
from pathlib import Path

import pytest

from model.modes import MODES, PLAIN, Mode, get, register, systems, unregister
from model.weight_files import ADAPTER_FILES

ROOT = Path(__file__).resolve().parents[2]


def toy_build(base, tokenizer, model_cfg, gcfg, node_dim=None):
    raise AssertionError("not called here")


@pytest.fixture
def toy():
    mode = register(Mode("toy", "toy-system", "--toy", "a toy", "nothing much", toy_build, toy_build,
                         lambda g: ADAPTER_FILES))
    yield mode
    unregister("toy")


def test_the_shipped_table():
    assert list(MODES) == ["lora", "graph", "graph-text", "adapter", "prompt-tuning"]
    assert systems() == [PLAIN, "finetuned", "graph", "graph-text", "adapter", "prompt-tuning"]
    from model.graph_config import GraphPromptConfig

    g = GraphPromptConfig(mode="graph")
    assert get("graph").graph_use(g) == "as soft graph tokens and numbered evidence"
    assert get("graph-text").graph_use(GraphPromptConfig(mode="graph-text")) == "as numbered evidence"
    assert get("adapter").graph_use(GraphPromptConfig(mode="adapter")) == "through its graph cross-attention"
    assert get("lora").graph_use(GraphPromptConfig()) == "" and not get("prompt-tuning").reads_graph
    assert g.spec.files(g) == ADAPTER_FILES + ("graph_modules.safetensors", "graph_config.json")
    frozen = GraphPromptConfig(mode="graph", lora=False)
    assert frozen.spec.files(frozen) == ("graph_modules.safetensors", "graph_config.json")


def test_a_mode_check_names_each_problem_once():
    """The graph mode's own checks live in its table entry; the config names each problem once, with the rest."""
    from model.graph_config import GraphPromptConfig

    with pytest.raises(ValueError) as err:
        GraphPromptConfig(mode="graph", soft_tokens=0, text_evidence=False, evidence_dropout=2.0)
    msg = str(err.value)
    assert msg.count("would use no graph at all") == 1 and msg.count("evidence_dropout must be in [0, 1)") == 1
    with pytest.raises(ValueError) as err:
        GraphPromptConfig(mode="graph", soft_tokens=0, lora=False)
    assert str(err.value).count("needs soft tokens") == 1


def test_a_clashing_mode_is_refused():
    with pytest.raises(ValueError, match="flag already used by mode 'graph'"):
        register(Mode("other", "other", "--graph-prompt", "x", "x", toy_build, toy_build, lambda g: ()))
    with pytest.raises(ValueError, match="untrained base model"):
        register(Mode("base", PLAIN, None, "x", "x", toy_build, toy_build, lambda g: ()))
    assert "other" not in MODES and "base" not in MODES


def test_a_registered_mode_reaches_every_entry_point(toy, tmp_path):
    from evaluation.config import EvalConfig
    from model.graph_config import GraphPromptConfig
    from training.run import build_configs, build_parser

    parser = build_parser()
    assert "--toy" in parser.format_help() and "nothing much (--graph.mode toy; system toy-system)" in " ".join(
        parser.format_help().split())
    cfgs = build_configs(parser.parse_args(["--toy", "--run_dir", str(tmp_path / "r")]))
    assert cfgs["graph"].mode == "toy" and cfgs["graph"].system == "toy-system"
    assert cfgs["eval"].systems == [PLAIN, "finetuned", "toy-system"]  # the LoRA baseline comes with it
    alone = build_configs(parser.parse_args(["--toy", "--graph.train_baseline", "false", "--run_dir", "r"]))
    assert alone["eval"].systems == [PLAIN, "toy-system"]
    assert not cfgs["graph"].uses_graph and not cfgs["graph"].uses_lora
    EvalConfig(systems=["plain", "toy-system"], run_dir="r")
    with pytest.raises(ValueError, match="mode must be one of"):
        GraphPromptConfig(mode="toy2")


def test_the_ablation_grid_and_the_shell_script_read_the_table():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ablate_for_modes", ROOT / "scripts" / "ablate.py")
    ablate = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = ablate  # its dataclasses look their module up
    spec.loader.exec_module(ablate)
    assert ablate.MODE_FLAGS == {m.name: [m.flag] if m.flag else [] for m in MODES.values()}
    assert ablate.SYSTEM_OF == {PLAIN: PLAIN} | {m.name: m.system for m in MODES.values()}
    assert ablate.GRAPH_MODES == ("graph", "graph-text", "adapter") and ablate.GNN_MODES == ("graph", "adapter")
    out = subprocess.run([sys.executable, "-m", "model.modes"], cwd=ROOT, capture_output=True, text=True, check=True)
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert rows == [[m.name, m.system, m.flag or ""] for m in MODES.values()]
    assert "$PY\" -m model.modes" in (ROOT / "scripts" / "reproduce_study.sh").read_text()


def test_the_7b_report_uses_the_configured_lora():
    from model.config import ModelConfig
    from model.graph_adapter import llama2_7b_report
    from model.graph_config import GraphPromptConfig

    study = llama2_7b_report(GraphPromptConfig(mode="graph"))
    assert "LoRA r=32 on q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,lm_head: 81," in study
    small = llama2_7b_report(GraphPromptConfig(mode="graph"), ModelConfig(lora_r=8, lora_targets=["q_proj", "v_proj"]))
    # Llama-2-7B: 32 layers x (q: 8 x (4096 + 4096) + v: the same) = 4,194,304
    assert "LoRA r=8 on q_proj,v_proj: 4,194,304 " in small and "in all" in small
    assert "in all" not in llama2_7b_report(GraphPromptConfig(mode="adapter"))  # no LoRA in adapter mode
