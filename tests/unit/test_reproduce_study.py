"""scripts/reproduce_study.sh: valid bash, and on a machine without a GPU (or without the model) it stops at
once with a message that says what is missing and what to do, before anything is trained or written."""
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "reproduce_study.sh"


def run(tmp_path, *args, **env):
    full = dict(os.environ, RUNS=str(tmp_path / "runs"), **env)
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=full)


def test_the_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_no_gpu_fails_fast_with_a_clear_message(tmp_path):
    proc = run(tmp_path, NVIDIA_SMI=str(tmp_path / "no-such-nvidia-smi"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no NVIDIA GPU") and "needs a GPU" in proc.stderr
    assert "python -m training.run" in proc.stderr  # what to run on a CPU instead
    assert not (tmp_path / "runs").exists()


def test_a_driver_without_devices_counts_as_no_gpu(tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'No devices were found'\nexit 6\n")
    fake.chmod(0o755)
    proc = run(tmp_path, NVIDIA_SMI=str(fake))
    assert proc.returncode == 2 and "lists none (No devices were found)" in proc.stderr


def test_a_missing_model_is_named_with_how_to_get_it(tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: Test GPU (UUID: GPU-0)'\n")
    fake.chmod(0o755)
    empty_cache = tmp_path / "hf"
    proc = run(tmp_path, NVIDIA_SMI=str(fake), HF_HOME=str(empty_cache), HF_HUB_OFFLINE="1")
    assert proc.returncode == 2
    assert "model meta-llama/Llama-2-7b-chat-hf is not in the local Hugging Face cache" in proc.stderr
    assert "huggingface-cli download meta-llama/Llama-2-7b-chat-hf" in proc.stderr
    proc = run(tmp_path, str(tmp_path / "no-such-folder"), NVIDIA_SMI=str(fake))
    assert proc.returncode == 2 and f"model folder {tmp_path / 'no-such-folder'} cannot be used" in proc.stderr
    assert not (tmp_path / "runs").exists()
