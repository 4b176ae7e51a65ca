"""The converted-model cache keyed by the GGUF's content (issue 12: two installs reconverted it in turn), and a
model folder whose config.json is broken."""
import json
import os

import pytest

from model import resolve
from model.resolve import CONTENT_MARKER, LEGACY_MARKER, ModelNotFoundError, convert_gguf, gguf_content_key


@pytest.fixture
def two_installs(tmp_path):
    """One (fake) GGUF installed twice: other folders, other inodes, other mtimes, same bytes."""
    data = b"GGUF" + os.urandom(3000)
    a, b = tmp_path / "venv-a" / "m.gguf", tmp_path / "venv-b" / "m.gguf"
    for path, mtime in ((a, 1_700_000_000), (b, 1_800_000_000)):
        path.parent.mkdir()
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
    return a, b


def test_two_copies_with_different_mtimes_share_one_key(two_installs, tmp_path):
    import hashlib

    a, b = two_installs
    cache = tmp_path / "cache"
    assert a.stat().st_mtime != b.stat().st_mtime and a.stat().st_ino != b.stat().st_ino
    key = gguf_content_key(a, cache)
    assert key == gguf_content_key(b, cache) == hashlib.sha256(a.read_bytes()).hexdigest()
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF" + b"\0" * 3000)
    assert gguf_content_key(other, cache) != key


def test_the_hash_is_remembered_by_inode_size_and_mtime(two_installs, tmp_path):
    a, _ = two_installs
    cache = tmp_path / "cache"
    real = gguf_content_key(a, cache)
    index = json.loads((cache / "gguf_hashes.json").read_text())
    st = a.stat()
    stat_key = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    assert index[stat_key] == real
    index[stat_key] = "f" * 64  # a repeat must answer from the index, not read the file
    (cache / "gguf_hashes.json").write_text(json.dumps(index))
    assert gguf_content_key(a, cache) == "f" * 64
    os.utime(a, (1_750_000_000, 1_750_000_000))  # a touched file is hashed again
    assert gguf_content_key(a, cache) == real
    (cache / "gguf_hashes.json").write_text("{not json")  # a damaged index is only a lost cache
    assert gguf_content_key(a, cache) == real


def test_a_second_install_reuses_the_conversion(two_installs, tmp_path, monkeypatch):
    """Copy b finds the checkpoint converted from copy a: no reconversion, nothing rewritten."""
    a, b = two_installs
    out = tmp_path / "cache" / "models" / "M"
    out.mkdir(parents=True)
    (out / CONTENT_MARKER).write_text(json.dumps({"gguf": "m.gguf", "sha256": gguf_content_key(a, out.parent)}))
    (out / "model.safetensors").write_bytes(b"weights")
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    import transformers

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_conversion)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_conversion)
    assert convert_gguf(b, out) == out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    changed = tmp_path / "changed.gguf"
    changed.write_bytes(b"GGUF other weights")
    with pytest.raises(AssertionError, match="converted again"):
        convert_gguf(changed, out)  # other bytes under the same name: converted, not reused


def test_a_conversion_by_an_older_version_of_this_very_file_is_adopted(two_installs, tmp_path):
    a, b = two_installs
    out = tmp_path / "cache" / "models" / "M"
    out.mkdir(parents=True)
    st = a.stat()
    (out / LEGACY_MARKER).write_text(json.dumps({"gguf": "m.gguf", "size": st.st_size, "mtime": int(st.st_mtime)}))
    assert convert_gguf(a, out) == out
    assert json.loads((out / CONTENT_MARKER).read_text())["sha256"] == gguf_content_key(a, out.parent)


def test_a_broken_config_json_in_a_model_folder_is_named(tmp_path, monkeypatch, capsys):
    """Was: transformers' OSError traceback from training.run. Now ModelNotFoundError (exit 2 in every CLI)."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama",\n  broken')
    with pytest.raises(ModelNotFoundError) as err:
        resolve.resolve_model(str(folder))
    assert str(err.value) == (f"{folder / 'config.json'} is not valid JSON (Expecting property name enclosed in double "
                              "quotes at line 2, column 3); the checkpoint is damaged or was edited by hand: copy or "
                              "download it again.")
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(ModelNotFoundError, match='has no "model_type"'):
        resolve.resolve_model(str(folder))
    # through an entry point: exit 2, one line, the folder as it was and no cache written
    monkeypatch.setenv("STUDYLLAMA_CACHE", str(tmp_path / "cache"))
    (folder / "config.json").write_text('{"model_type": "llama",\n  broken')
    from evaluation.serve import main

    assert main(["--model", str(folder), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'config.json'} is not valid JSON" in err and "Traceback" not in err
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"] and not (tmp_path / "cache").exists()
