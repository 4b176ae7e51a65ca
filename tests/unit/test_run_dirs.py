"""Run directories under bad input (issue 12): every case ends in one paragraph and exit code 2, before anything
is written, and leaves the run directory, its adapter and the prediction caches exactly as they were.

The runs here are written by the project's own config code (training.run.build_configs) with hand-made weight
files, so every check runs in seconds: nothing loads a model unless the case is about the model's context."""
import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.conftest import make_items

ADAPTER_CONFIG = {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"], "task_type": "CAUSAL_LM"}


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under folder -> sha256 of its bytes (what 'left as it was' is checked against)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def write_eval_split(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "eval.jsonl"
    path.write_text("".join(json.dumps(it.to_dict()) + "\n" for it in make_items(2)))
    return path


def saved_config(run_dir: Path, data_dir: Path, *flags: str) -> dict:
    from training.run import build_configs, build_parser

    cfgs = build_configs(build_parser().parse_args(["--run_dir", str(run_dir),
                                                    "--data.out_dir", str(data_dir), *flags]))
    return {name: asdict(c) for name, c in cfgs.items()}


def fake_safetensors(path: Path, n_floats: int = 64) -> None:
    """A well-formed safetensors file with one float32 tensor (header + data)."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [n_floats], "data_offsets": [0, 4 * n_floats]}}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(4 * n_floats))


def finished_run(tmp_path: Path, *flags: str) -> Path:
    """A run directory as training.run leaves it when finished: config, adapter, train summary, evaluation."""
    run = tmp_path / "run"
    data = tmp_path / "data"
    write_eval_split(data)
    (run / "adapter").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(saved_config(run, data, *flags), indent=2, sort_keys=True) + "\n")
    (run / "run_info.json").write_text('{"seed": 42}\n')
    (run / "adapter" / "adapter_config.json").write_text(json.dumps(ADAPTER_CONFIG))
    fake_safetensors(run / "adapter" / "adapter_model.safetensors")
    (run / "train_summary.json").write_text('{"global_step": 2}\n')
    (run / "eval" / "predictions").mkdir(parents=True)
    (run / "eval" / "predictions" / "plain.jsonl").write_text('{"id": "cs-000", "prediction": "cached"}\n')
    (run / "eval" / "metrics.json").write_text('{"n_items": 1}\n')
    return run


def run_main(module: str, argv: list[str], capsys) -> tuple[int, str]:
    import importlib

    code = importlib.import_module(module).main(argv)
    err = capsys.readouterr().err
    return code, err


def one_paragraph(err: str) -> bool:
    return err.startswith("error: ") and "Traceback" not in err


# ---- training.run -------------------------------------------------------------------------------------------

def test_a_failed_command_leaves_a_finished_run_byte_identical(tmp_path, capsys):
    run = finished_run(tmp_path)
    before = snapshot(run)
    code, err = run_main("training.run", ["--run_dir", str(run), "--model.name", "nobody/typo-model"], capsys)
    assert code == 2 and one_paragraph(err) and "holds a finished run" in err and "--resume" in err
    assert "--overwrite" in err
    assert snapshot(run) == before
    # --overwrite is explicit, but a model that is not here still stops the command before anything is removed
    code, err = run_main("training.run", ["--run_dir", str(run), "--model.name", "nobody/typo-model", "--overwrite"],
                         capsys)
    assert code == 2 and one_paragraph(err) and "never downloads" in err
    assert snapshot(run) == before
    code, err = run_main("training.run", ["--run_dir", str(run), "--resume", "--overwrite"], capsys)
    assert code == 2 and "contradict" in err and snapshot(run) == before


def test_checkpoints_of_an_unfinished_run_are_not_trained_over(tmp_path, capsys):
    run = tmp_path / "half"
    (run / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (run / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}")
    before = snapshot(run)
    code, err = run_main("training.run", ["--run_dir", str(run)], capsys)
    assert code == 2 and one_paragraph(err) and "checkpoints of an unfinished run" in err and snapshot(run) == before


def test_an_unknown_model_writes_nothing(tmp_path, capsys):
    run = tmp_path / "new"
    code, err = run_main("training.run", ["--run_dir", str(run), "--model.name", "nobody/typo-model"], capsys)
    assert code == 2 and one_paragraph(err) and "never downloads" in err
    assert not run.exists()


@pytest.mark.parametrize("preset, expected", [
    ("train: {epochs: many}\n", "train.epochs must be a number, got 'many' (str)"),
    ("model: {lora_r: 8.5}\n", "model.lora_r must be an integer, got 8.5 (float)"),
    ("graph: {text_evidence: maybe}\n", "graph.text_evidence must be true or false, got 'maybe'"),
    ("eval: {smaple: 3}\n", "unknown EvalConfig key(s) in eval: smaple"),
    ("eval: {judge: {kidn: local}}\n", "unknown JudgeConfig key(s) in eval.judge: kidn"),
    ("evaluation: {sample: 3}\n", "unknown section(s) ['evaluation']"),
])
def test_bad_preset_values_are_named_with_the_file(tmp_path, capsys, preset, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(preset)
    run = tmp_path / "run"
    code, err = run_main("training.run", ["--preset", str(path), "--run_dir", str(run)], capsys)
    assert code == 2 and one_paragraph(err), err
    assert expected in err and str(path) in err
    assert not run.exists()


def test_bad_flags_and_a_file_as_run_dir(tmp_path, capsys):
    run = tmp_path / "run"
    code, err = run_main("training.run", ["--run_dir", str(run), "--train.num_threads", "-1"], capsys)
    assert code == 2 and one_paragraph(err) and "num_threads must be at least 1" in err and not run.exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    code, err = run_main("training.run", ["--run_dir", str(a_file)], capsys)
    assert code == 2 and one_paragraph(err) and f"{a_file} is a file, not a run directory" in err
    assert a_file.read_text() == "mine\n"


# ---- evaluation.run -----------------------------------------------------------------------------------------

def test_evaluation_refuses_a_file_as_out_dir_or_run_dir(tmp_path, capsys):
    eval_file = write_eval_split(tmp_path / "data")
    a_file = tmp_path / "out.txt"
    a_file.write_text("keep\n")
    code, err = run_main("evaluation.run",
                         ["--eval_file", str(eval_file), "--systems", "plain", "--out_dir", str(a_file)],
                         capsys)
    assert code == 2 and one_paragraph(err) and f"{a_file} is a file, not an output folder (--out_dir)" in err
    assert a_file.read_text() == "keep\n"
    code, err = run_main("evaluation.run", ["--run_dir", str(a_file)], capsys)
    assert code == 2 and one_paragraph(err) and "is a file, not a run directory" in err


def test_a_truncated_adapter_is_named_before_any_answer_is_generated(tmp_path, capsys):
    run = finished_run(tmp_path)
    weights = run / "adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # a copy cut short
    before = snapshot(run)
    # plain first: without the check, its answers would be generated before the adapter is found damaged
    code, err = run_main("evaluation.run", ["--run_dir", str(run), "--systems", "plain,finetuned", "--out_dir",
                                            str(tmp_path / "eval")], capsys)
    assert code == 2 and one_paragraph(err)
    assert "adapter_model.safetensors is truncated" in err and str(run / "adapter") in err
    assert not (tmp_path / "eval").exists() and snapshot(run) == before  # no cache written, nothing changed
    (run / "adapter" / "adapter_config.json").unlink()
    weights.unlink()
    code, err = run_main("evaluation.run", ["--run_dir", str(run), "--systems", "finetuned"], capsys)
    assert code == 2 and "No adapter at" in err


def test_weight_file_checks_on_real_safetensors(tmp_path):
    import torch
    from safetensors.torch import save_file

    from model.weight_files import safetensors_problem

    path = tmp_path / "w.safetensors"
    save_file({"a": torch.ones(10, 10), "b": torch.zeros(3)}, str(path))
    assert safetensors_problem(path) is None
    whole = path.read_bytes()
    for cut in (4, 20, len(whole) - 1):
        path.write_bytes(whole[:cut])
        assert "truncated" in safetensors_problem(path)
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    assert "unreadable header" in safetensors_problem(path)


# ---- evaluation.ask -----------------------------------------------------------------------------------------

def test_ask_refuses_a_question_longer_than_the_models_context(tiny_model, tokenizer, tmp_path, capsys):
    """The tiny model has 512 positions: a question of about 600 tokens must be refused before generating."""
    model_dir = tmp_path / "tiny"
    tiny_model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    run = finished_run(tmp_path, "--model.name", str(model_dir), "--model.quantization", "none",
                       "--model.device", "cpu")
    from peft import LoraConfig, get_peft_model

    get_peft_model(tiny_model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], task_type="CAUSAL_LM")
                   ).save_pretrained(run / "adapter")
    before = snapshot(run)
    question = "Why does a heap keep its smallest element at the root? " * 50
    code, err = run_main("evaluation.ask", [question, "--run_dir", str(run), "--max_new_tokens", "16",
                                            "-o", str(tmp_path / "page.html")], capsys)
    assert code == 2 and one_paragraph(err), err
    assert "do not fit the model's context of 512 positions" in err and "the question (" in err
    assert not (tmp_path / "page.html").exists() and snapshot(run) == before
