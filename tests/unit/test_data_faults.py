"""Hostile corpus files (issue 12): each is one paragraph naming file and line, exit code 2, nothing written."""
import csv
import json
import logging

import numpy as np
import pytest

from data.loaders import CorpusError, load_items
from data.normalize import control_character_problem, control_characters
from data.prepare import main as prepare_main

GOOD = {"id": "g1", "domain": "cs", "question": "What is a hash table?", "answer": "A map from keys to values."}


def jsonl(path, *rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def run_prepare(capsys, out_dir, *corpus):
    args = ["--out_dir", str(out_dir), "--train_size", "2", "--dev_size", "0"]
    code = prepare_main(["--corpus", *map(str, corpus), *args])
    return code, capsys.readouterr().err


@pytest.fixture
def out_dir(tmp_path):
    """A split folder from an earlier, good run: a failed command must leave it as it was."""
    out = tmp_path / "splits"
    out.mkdir()
    (out / "train.jsonl").write_text(json.dumps(GOOD) + "\n")
    return out


def check_rejected(code, err, out_dir, *expected):
    assert code == 2
    assert "error: " in err and "Traceback" not in err
    for text in expected:
        assert text in err, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["train.jsonl"]  # no embeddings cache, no split rewritten
    assert (out_dir / "train.jsonl").read_text() == json.dumps(GOOD) + "\n"


def test_a_csv_field_over_128_kb_is_a_row_problem_not_a_traceback(tmp_path, out_dir, capsys):
    path = tmp_path / "big.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "domain", "question", "answer"])
        w.writerow(["big", "cs", "What is x?", "y" * 140_000])  # over csv's 131,072 field limit
        w.writerow(["ok", "cs", "What is z?", "z is fine."])
    items, problems = load_items([str(path)], strict=False)
    assert [it.id for it in items] == ["ok"]  # the rows after it are read
    assert [str(p) for p in problems] == [f"{path}:2: row is 140,015 characters, over the 64,000-character limit"]
    assert csv.field_size_limit() == 131_072  # the module-wide limit is restored
    check_rejected(*run_prepare(capsys, out_dir, path), out_dir, f"{path}:2: row is 140,015 characters")


def test_a_deeply_nested_json_line_is_a_row_problem(tmp_path, out_dir, capsys):
    path = jsonl(tmp_path / "nested.jsonl", GOOD, "[" * 20_000 + "]" * 20_000)
    items, problems = load_items([str(path)], strict=False)
    assert [it.id for it in items] == ["g1"]
    assert [str(p) for p in problems] == [f"{path}:2: JSON nested too deeply (a QA row is one flat object)"]
    check_rejected(*run_prepare(capsys, out_dir, path), out_dir, f"{path}:2: JSON nested too deeply")


@pytest.mark.parametrize("content", ["", "\n\n", "id,domain,question,answer\n"])
def test_an_empty_corpus_file_is_named(tmp_path, out_dir, capsys, content):
    """Was: "error: need at least one array to stack" (data.prepare); kg.build built a graph without QA items."""
    path = tmp_path / ("qa.csv" if content.startswith("id") else "qa.jsonl")
    path.write_text(content)
    with pytest.raises(CorpusError, match="holds no QA rows"):
        load_items([str(path)])
    check_rejected(*run_prepare(capsys, out_dir, path), out_dir, f"{path}: holds no QA rows")


def test_control_characters_are_rejected_with_where_they_are(tmp_path, out_dir, capsys):
    rows = [
        {**GOOD, "id": "nul", "question": "What is a\u0000 hash?"},
        {**GOOD, "id": "esc", "answer": "Line one.\nA \u001b[31mred\u001b[0m answer."},
        {**GOOD, "id": "c1", "tags": ["hashing\u0085"]},
        {**GOOD, "id": "bel\u0007"},
        {**GOOD, "id": "tab", "question": "What\tis a tab?"},  # tab and line breaks are text
    ]
    path = jsonl(tmp_path / "ctl.jsonl", *rows)
    items, problems = load_items([str(path)], strict=False)
    assert [it.id for it in items] == ["tab"]
    assert [str(p) for p in problems] == [
        f"{path}:1: question holds the control character U+0000 (NUL) at line 1, column 10; "
        "remove it (only tab and line breaks are allowed)",
        f"{path}:2: answer holds the control character U+001B (ESC) at line 2, column 3 (2 in all); "
        "remove it (only tab and line breaks are allowed)",
        f"{path}:3: a tag holds the control character U+0085 at line 1, column 8; "
        "remove it (only tab and line breaks are allowed)",
        f"{path}:4: id holds the control character U+0007 (BEL) at line 1, column 4; "
        "remove it (only tab and line breaks are allowed)",
    ]
    expected = f"{path}:1: question holds the control character U+0000"
    check_rejected(*run_prepare(capsys, out_dir, path), out_dir, expected)


def test_the_control_character_rule_is_exactly_unicode_cc_without_tab_and_line_breaks():
    import unicodedata

    text = "".join(chr(i) for i in range(0x3000))
    expected = [i for i, ch in enumerate(text) if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r"]
    assert control_characters(text) == expected and len(expected) == 62
    assert control_character_problem("a\tb\r\nc", "x") is None


def test_a_corrupt_embedding_cache_is_recomputed_with_a_warning(tmp_path, caplog):
    from data.embedding import embed_cached

    texts = ["What is a hash table?", "What is a p-value?"]
    cache = tmp_path / "emb.npz"
    fresh = embed_cached(texts, tmp_path / "fresh.npz")
    cache.write_bytes((tmp_path / "fresh.npz").read_bytes()[:200])  # cut short, as a kill or a full disk leaves it
    with caplog.at_level(logging.WARNING, logger="data.embedding"):
        again = embed_cached(texts, cache)
    np.testing.assert_allclose(again, fresh, atol=1e-6)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"embedding cache {cache} is unreadable (BadZipFile" in warning
    assert "computing its embeddings again" in warning
    with np.load(cache) as z:  # replaced by a good one
        assert z["vectors"].shape == (2, fresh.shape[1])


def test_data_prepare_recomputes_a_corrupt_question_cache(tmp_path, capsys, caplog):
    """The whole command: exit 0, a warning naming the cache, the splits written, the cache readable again."""
    questions = ["How does a hash table resolve collisions?", "Why is quicksort fast on average?",
                 "What does a p-value measure?", "When would you use a Bayesian prior?",
                 "What is attention in a transformer?", "How does dropout reduce overfitting?",
                 "What is the difference between a process and a thread?", "What is a confidence interval?"]
    path = jsonl(tmp_path / "qa.jsonl", *[
        {"id": f"q{i}", "domain": ("cs", "cs", "stats", "stats", "ai", "ai", "cs", "stats")[i], "question": q,
         "answer": "A short answer that explains it in a few plain words."} for i, q in enumerate(questions)])
    out = tmp_path / "out"
    out.mkdir()
    (out / "question_embeddings.npz").write_bytes(b"PK\x03\x04 not a zip")
    with caplog.at_level(logging.WARNING):
        code = prepare_main(["--corpus", str(path), "--out_dir", str(out), "--train_size", "4", "--dev_size", "1",
                             "--json"])
    assert code == 0, capsys.readouterr().err
    warned = f"embedding cache {out / 'question_embeddings.npz'} is unreadable"
    assert any(warned in r.getMessage() for r in caplog.records)
    assert json.loads(capsys.readouterr().out)["valid_items"] == 8
    with np.load(out / "question_embeddings.npz") as z:
        assert len(z["keys"]) == 8
