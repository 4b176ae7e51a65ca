"""The files a trained run saves (one definition of their names) and a check that they are whole.

A run's `adapter/` folder (and each checkpoint) holds the PEFT adapter (`adapter_config.json`,
`adapter_model.safetensors`) and, for the graph modes, the graph modules and their config. The check reads
only the safetensors header (8 bytes of length, then JSON): a file cut short by a full disk or a killed copy
is named before any model is loaded, not after minutes of generating other systems' answers.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_FILES = (ADAPTER_CONFIG, ADAPTER_WEIGHTS)
GRAPH_WEIGHTS = "graph_modules.safetensors"
GRAPH_CONFIG = "graph_config.json"
GRAPH_FILES = (GRAPH_WEIGHTS, GRAPH_CONFIG)
CHOSEN_CHECKPOINT = "studyllama_checkpoint.txt"  # in adapter/: which checkpoint was copied there


class AdapterNotFoundError(RuntimeError):
    """An adapter folder is missing, incomplete or damaged."""


def safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file cannot be loaded (missing, truncated, unreadable header), or None."""
    if not path.is_file():
        return f"{path} is missing"
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"{path} is truncated ({size} bytes; not even its header length)"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                return f"{path} is truncated ({size} bytes; its header alone claims {n + 8})"
            header = json.loads(fh.read(n))
    except (OSError, ValueError) as exc:
        return f"{path} has an unreadable header ({exc})"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    need = 8 + n + max(ends, default=0)
    if size < need:
        return f"{path} is truncated: {size} bytes where its header describes {need} (copied or written only in part?)"
    return None


def json_problem(path: Path) -> str | None:
    if not path.is_file():
        return f"{path} is missing"
    try:
        json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{path} is not valid JSON ({exc})"
    return None


def check_weights(folder: str | Path, files: tuple[str, ...]) -> None:
    """Raise AdapterNotFoundError naming every missing or damaged file of `files` in `folder`."""
    folder = Path(folder)
    if not folder.is_dir() or not any((folder / f).exists() for f in files):
        raise AdapterNotFoundError(
            f"No adapter at {folder}: expected {', '.join(files)} (a run directory's `adapter/` folder written by "
            "`python -m training.run`).")
    problems = [p for p in (safetensors_problem(folder / f) if f.endswith(".safetensors") else json_problem(folder / f)
                            for f in files) if p]
    if problems:
        raise AdapterNotFoundError(f"The adapter at {folder} cannot be loaded: {'; '.join(problems)}. Train the run "
                                   "again, or copy a checkpoint's files back (`python -m training.run --resume "
                                   "--run_dir "
                                   "RUN` copies the chosen checkpoint again).")
