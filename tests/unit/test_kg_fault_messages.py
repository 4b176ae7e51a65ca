"""kg input and locking faults that need no graph store (issue 12); the store-side cases are in
tests/integration/test_kg_faults.py."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kg.builder import read_notes
from kg.locks import LockTimeoutError, exclusive_lock
from kg.vocabulary import VocabularyError, load_vocabulary

ROOT = Path(__file__).resolve().parents[2]


def test_note_ids_are_paths_under_the_notes_root(tmp_path):
    notes = tmp_path / "notes"
    texts = {"a": "Dropout is a kind of regularization.", "b/deeper": "A hash table maps keys to buckets."}
    for sub, text in texts.items():
        (notes / sub).mkdir(parents=True)
        (notes / sub / "dup.md").write_text(f"# Title\n\n{text}\n")
    single = tmp_path / "single.md"
    single.write_text("Gradient descent follows the negative gradient.\n")
    docs = read_notes([str(notes), str(single)])
    assert {d.id: d.text for d in docs} == {
        "a/dup.md#1": "Dropout is a kind of regularization.",
        "b/deeper/dup.md#1": "A hash table maps keys to buckets.",
        "single.md#0": "Gradient descent follows the negative gradient.",
    }


def test_one_relative_path_under_two_roots_is_an_error_naming_both(tmp_path):
    for root in ("r1", "r2"):
        (tmp_path / root).mkdir()
        (tmp_path / root / "week.md").write_text("Dropout is a kind of regularization.\n")
    with pytest.raises(ValueError) as err:
        read_notes([str(tmp_path / "r1"), str(tmp_path / "r2")])
    first, second = tmp_path / "r1" / "week.md", tmp_path / "r2" / "week.md"
    assert f"{second}: has the note id 'week.md' of {first}" in str(err.value)


def test_control_characters_in_notes_and_vocabulary_are_named_by_file_and_line(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ok.md").write_text("Dropout is a kind of regularization.\n")
    (notes / "nul.md").write_text("Fine first line.\n\nSecond\x00 paragraph with four words.\n")
    (notes / "latin1.md").write_bytes("caf\xe9 is not utf-8 here at all".encode("latin-1"))
    with pytest.raises(ValueError) as err:
        read_notes([str(notes)])
    message = str(err.value)
    assert message.startswith("2 problem(s) in the notes; nothing was written to the graph:")
    assert f"{notes / 'nul.md'}: the note holds the control character U+0000 (NUL) at line 3, column 7" in message
    assert f"{notes / 'latin1.md'}: not UTF-8 text (invalid continuation byte at byte 3)" in message
    vocab = tmp_path / "concepts_x.jsonl"
    vocab.write_text(json.dumps({"id": "x", "name": "x", "domain": "cs", "aliases": ["x\x7f"], "definition": ""}) + "\n"
                     + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(VocabularyError) as err:
        load_vocabulary([vocab])
    assert err.value.problems == [
        f"{vocab}:1: an alias holds the control character U+007F (DEL) at line 1, column 2; "
        "remove it (only tab and line breaks are allowed)",
        f"{vocab}:2: JSON nested too deeply (a concept is one flat object)",
    ]


def test_a_non_utf8_question_to_kg_retrieve_is_a_clear_error(tmp_path):
    """Was: a tokenizers TypeError traceback. The bytes arrive from the shell as they would from a script."""
    db = tmp_path / "db"
    proc = subprocess.run([sys.executable.encode(), b"-m", b"kg.retrieve", b"What is a \xff hash?", b"--data_dir",
                           str(db).encode()], cwd=ROOT, capture_output=True, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert err == ("error: the question is not valid UTF-8 text (byte 0xFF at character 11); give it in UTF-8 "
                   "(check the terminal's or the calling script's encoding)\n")
    assert not db.exists()  # refused before the store was started


def test_a_malformed_neo4j_uri_is_one_paragraph_without_the_password(tmp_path, capsys, monkeypatch):
    """Was: the driver's ConfigurationError traceback, the URI with its password printed in it."""
    from kg.stats import main

    db = tmp_path / "db"
    for uri, shown, reason in (
        ("bolt//neo:s3cret@localhost:7687", "bolt//***@localhost:7687", "no scheme (expected bolt:// or neo4j://"),
        ("bolt://neo:s3cret@localhost:notaport", "bolt://localhost:notaport", "Port could not be cast to integer"),
    ):
        code = main(["--uri", uri, "--data_dir", str(db)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert err.startswith(f"error: Neo4j URI {shown!r} is malformed: ") and reason in err
        assert "s3cret" not in err and "Traceback" not in err
    # a password inside a well-formed URI: the driver gets it apart from the address, and messages mask it
    monkeypatch.setenv("NEO4J_URI", "neo4j://neo:s3cret@127.0.0.1:1")
    code = main(["--connect_timeout", "2", "--data_dir", str(db)])
    err = capsys.readouterr().err
    assert code == 2 and "Neo4j at neo4j://neo:***@127.0.0.1:1 is not reachable" in err and "s3cret" not in err
    assert not db.exists()  # the embedded store was never touched


def test_store_config_keeps_credentials_out_of_the_uri():
    from kg.store import StoreConfig

    cfg = StoreConfig(uri="neo4j://neo:p%40ss@db.example:7687")
    assert (cfg.uri, cfg.user, cfg.password) == ("neo4j://db.example:7687", "neo", "p@ss")
    flag_wins = StoreConfig(uri="bolt://neo:inuri@h:7687", user="admin", password="flag")
    assert (flag_wins.uri, flag_wins.user, flag_wins.password) == ("bolt://h:7687", "admin", "flag")


def hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the lock (flock locks conflict between processes)."""
    code = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); from kg.locks import exclusive_lock\n"
            f"with exclusive_lock(__import__('pathlib').Path({str(path)!r}), 5, 'x'):\n"
            f"    print('held', flush=True); time.sleep({seconds})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_waits_saying_for_whom_then_proceeds(tmp_path, caplog):
    lock = tmp_path / "build.lock"
    holder = hold_lock(lock, 1.5)
    t0 = time.monotonic()
    with caplog.at_level("WARNING", logger="kg.locks"):
        with exclusive_lock(lock, 60, "another build is writing to the store"):
            waited = time.monotonic() - t0
            assert f"pid {os.getpid()}, since " in lock.read_text()  # now we are the holder
    holder.wait(10)
    assert waited > 0.5  # it did wait for the holder to finish
    (msg,) = [r.getMessage() for r in caplog.records]
    assert msg.startswith(f"another build is writing to the store (held by pid {holder.pid}, since ")
    assert msg.endswith("waiting up to 60 s")
    assert lock.read_text() == ""  # released: no stale holder shown to the next waiter


def test_a_writer_that_waits_too_long_gives_up_with_a_clear_error(tmp_path):
    lock = tmp_path / "build.lock"
    holder = hold_lock(lock, 5)
    try:
        with pytest.raises(LockTimeoutError) as err:
            with exclusive_lock(lock, 0.3, "another build is writing to the store", "Nothing was written."):
                pytest.fail("the lock was taken while another process held it")
        assert str(err.value).startswith(f"another build is writing to the store (held by pid {holder.pid}")
        assert str(err.value).endswith("; gave up after 0.3 s. Nothing was written.")
    finally:
        holder.kill()
        holder.wait()
