import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args, timeout=900, check=True, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=env, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited "
                             f"{proc.returncode}\nSTDOUT:\n{proc.stdout[-3000:]}\nSTDERR:\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory):
    """The shipped corpus prepared once for the integration tests."""
    out = tmp_path_factory.mktemp("data")
    run_cli("data.prepare", "--out_dir", str(out), "--json")
    return out


# a training run small enough for CI: a handful of real 4-bit steps on the bundled model
TINY_RUN = [
    "--train.train_limit", "8", "--train.max_steps", "2", "--train.batch_size", "4", "--train.micro_batch_size", "4",
    "--train.save_steps", "1", "--train.max_length", "256", "--train.dev_limit", "2",
    "--train.dev_max_new_tokens", "16",
    "--train.logging_steps", "1", "--eval.sample", "3", "--eval.max_new_tokens", "24", "--eval.batch_size", "3",
]


@pytest.fixture(scope="session")
def kg_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("kg")
    return base / "db", base / "work"


def store_args(dirs):
    return ["--data_dir", str(dirs[0]), "--work_dir", str(dirs[1])]


@pytest.fixture(scope="session")
def built(kg_dirs):
    """The concept graph built once from the shipped corpus into a temporary embedded FalkorDB."""
    import json

    proc = run_cli("kg.build", "--json", *store_args(kg_dirs))
    yield json.loads(proc.stdout)
    run_cli("kg.server", "stop", "--data_dir", str(kg_dirs[0]), check=False)


def start_bundled_server(log_path: Path, timeout: float = 600):
    """`evaluation.serve` on the bundled model (full precision, raw prompts) on a free port: (process, base URL)."""
    import time

    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    with open(log_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "evaluation.serve", "--model", "bundled",
                                 "--quantization", "none",
                                 "--device", "cpu", "--port", "0", "--raw_prompt"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    url, deadline = None, time.monotonic() + timeout
    while url is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("serving"):
            url = line.split(" at ")[1].split()[0]
    if url is None:
        proc.kill()
        raise AssertionError(f"the server never printed its URL:\n{Path(log_path).read_text()[-4000:]}")
    return proc, url
