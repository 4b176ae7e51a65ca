import argparse

import pytest

from data.cli import add_dataclass_args, dataclass_from_args, load_preset
from data.config import DataConfig
from evaluation.config import EvalConfig
from model.config import ModelConfig
from training.config import TrainConfig


def parse(cls, argv, prefix="", base=None):
    p = argparse.ArgumentParser()
    add_dataclass_args(p, cls, prefix)
    return dataclass_from_args(cls, p.parse_args(argv), prefix, base)


def test_flags_override_preset_override_defaults():
    cfg = parse(TrainConfig, ["--train.epochs", "3", "--train.train_limit", "none"], "train",
                {"epochs": 2, "batch_size": 16})
    assert cfg.epochs == 3 and cfg.batch_size == 16 and cfg.train_limit is None and cfg.weight_decay == 0.1


def test_lists_and_dicts():
    cfg = parse(EvalConfig, ["--systems", "plain,finetuned", "--run_dir", "r"])
    assert cfg.systems == ["plain", "finetuned"]
    d = parse(DataConfig, ["--field_map", "question=prompt", "answer=response"])
    assert d.field_map == {"question": "prompt", "answer": "response"}


def test_every_problem_is_named_at_once():
    with pytest.raises(ValueError) as err:
        TrainConfig(batch_size=10, micro_batch_size=4, learning_rate=-1, select_on="vibes", prompt_style="poem")
    msg = str(err.value)
    for part in ("multiple of micro_batch_size", "learning_rate", "select_on", "prompt_style"):
        assert part in msg
    with pytest.raises(ValueError) as err:
        ModelConfig(quantization="int3", lora_r=0)
    assert "quantization" in str(err.value) and "lora_r" in str(err.value)


def test_unknown_preset_key_is_rejected():
    with pytest.raises(ValueError, match="unknown TrainConfig key"):
        parse(TrainConfig, [], "train", {"epoch": 3})


@pytest.mark.parametrize("mode", [None, "--graph-prompt", "--graph-text-only", "--adapter", "--prompt-tuning"])
@pytest.mark.parametrize("name", ["cpu", "study_llama2_7b"])
def test_shipped_presets_load(name, mode):
    from training.run import build_configs, build_parser

    args = build_parser().parse_args(["--preset", name] + ([mode] if mode else []))
    cfgs = build_configs(args)
    model_cfg, train_cfg, eval_cfg = cfgs["model"], cfgs["train"], cfgs["eval"]
    expected = {None: "lora", "--graph-prompt": "graph", "--graph-text-only": "graph-text", "--adapter": "adapter",
                "--prompt-tuning": "prompt-tuning"}[mode]
    assert cfgs["graph"].mode == expected
    assert model_cfg.lora_r == 32 and model_cfg.lora_alpha == 64 and model_cfg.lora_dropout == 0.05
    assert "lm_head" in model_cfg.lora_targets and train_cfg.adam_beta2 == 0.95
    assert isinstance(eval_cfg, EvalConfig) and eval_cfg.run_dir == train_cfg.run_dir
    assert eval_cfg.systems == list(dict.fromkeys(["plain", "finetuned", cfgs["graph"].system]))
    assert load_preset(f"training/presets/{name}.yaml")


def test_study_preset_is_limas_recipe():
    from training.run import build_configs, build_parser

    cfgs = build_configs(build_parser().parse_args(["--preset", "study_llama2_7b"]))
    model_cfg, t = cfgs["model"], cfgs["train"]
    assert (t.epochs, t.learning_rate, t.lr_end, t.weight_decay, t.max_length) == (15, 1e-5, 1e-6, 0.1, 2048)
    assert model_cfg.name == "meta-llama/Llama-2-7b-chat-hf" and model_cfg.quantization == "nf4"


def test_broken_preset_names_the_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train: [1, 2\n")
    with pytest.raises(ValueError, match="bad.yaml is not valid YAML"):
        load_preset(p)


@pytest.mark.parametrize(
    "module",
    ["data.prepare", "training.run", "evaluation.run", "kg.build", "kg.stats", "kg.export",
     "kg.retrieve", "kg.view", "kg.server"],
)
def test_every_entry_point_prints_its_help(module, capsys):
    import importlib

    with pytest.raises(SystemExit) as done:
        importlib.import_module(module).main(["--help"])
    assert done.value.code == 0
    assert "usage: python -m " + module in capsys.readouterr().out


def test_a_mistyped_flag_is_refused_with_the_nearest_flags(capsys):
    from data.cli import ArgumentParser

    p = ArgumentParser(prog="prog")
    p.add_argument("--train.max_steps", type=int)
    p.add_argument("--graph-prompt", action="store_true")
    with pytest.raises(SystemExit) as exc:
        p.parse_args(["--train.max_step", "3"])  # an abbreviation: argparse would take it as max_steps
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --train.max_step 3" in err and "did you mean --train.max_steps?" in err
    assert "usage:" not in err  # two lines, not the whole usage
    with pytest.raises(SystemExit):
        p.parse_args(["--graph-promt"])
    assert "did you mean --graph-prompt?" in capsys.readouterr().err
