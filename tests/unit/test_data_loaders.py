import json

import pytest

from data.loaders import CorpusError, load_items, read_split, write_jsonl
from data.normalize import normalize_text, question_key


def good_row(i, **kw):
    row = {"id": f"x{i}", "domain": "cs", "question": f"What is thing {i}?", "answer": "It is a thing. " * 10,
           "difficulty": "basic", "tags": ["t", "u"]}
    row.update(kw)
    return row


def write_lines(path, lines):
    path.write_bytes(b"".join(lines))
    return path


def test_loads_valid_jsonl(tmp_path):
    p = write_lines(tmp_path / "a.jsonl", [json.dumps(good_row(i)).encode() + b"\n" for i in range(3)])
    items, problems = load_items([str(p)])
    assert [it.id for it in items] == ["x0", "x1", "x2"] and problems == []
    assert items[0].tags == ("t", "u")


def test_every_bad_row_is_named_with_its_line(tmp_path):
    lines = [
        json.dumps(good_row(0)).encode() + b"\n",
        json.dumps({k: v for k, v in good_row(1).items() if k != "answer"}).encode() + b"\n",  # line 2: missing answer
        json.dumps(good_row(2, domain="biology")).encode() + b"\n",  # line 3: unknown domain
        b'{"id": "x3", "domain": "cs", "question": "broken\n',  # line 4: broken JSON
        json.dumps(good_row(4, answer="a" * 1_000_000)).encode() + b"\n",  # line 5: 1 MB answer
        json.dumps(good_row(0)).encode() + b"\n",  # line 6: duplicate id
        b'{"id": "x6", "domain": "cs", "question": "caf\xe9?", "answer": "x"}\n',  # line 7: not UTF-8
        json.dumps(good_row(7, answer="   ")).encode() + b"\n",  # line 8: empty answer
        json.dumps(good_row(8)).encode() + b"\n",
    ]
    p = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(CorpusError) as err:
        load_items([str(p)])
    msg = str(err.value)
    for line, reason in [(2, "missing field 'answer'"), (3, "unknown domain 'biology'"), (4, "broken JSON"),
                         (5, "over the"), (6, "duplicate id 'x0'"), (7, "bad encoding"), (8, "empty answer")]:
        assert f"bad.jsonl:{line}: " in msg and reason in msg, (line, reason, msg)
    assert "2 valid rows" in msg
    items, problems = load_items([str(p)], strict=False)
    assert [it.id for it in items] == ["x0", "x8"]  # no valid row dropped
    assert len(problems) == 7


def test_csv_with_field_map_and_default_domain(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("qid,prompt,response\n1,What is a heap?,A heap is a tree.\n2,,No question here.\n")
    with pytest.raises(CorpusError) as err:
        load_items([str(p)], field_map={"id": "qid", "question": "prompt", "answer": "response"}, default_domain="cs")
    assert "mine.csv:3: empty question" in str(err.value)
    items, _ = load_items([str(p)], field_map={"id": "qid", "question": "prompt", "answer": "response"},
                          default_domain="cs", strict=False)
    assert items[0].question == "What is a heap?" and items[0].domain == "cs" and items[0].source == "mine.csv"


def test_hf_datasets_loader(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps(good_row(i)) for i in range(2)) + "\n")
    items, _ = load_items([f"hf:{p}"])
    assert len(items) == 2


def test_missing_file_and_unsupported_type(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(CorpusError) as err:
        load_items([str(tmp_path / "nope.jsonl"), str(tmp_path / "x.txt")])
    assert "does not exist" in str(err.value) and "unsupported file type" in str(err.value)


def test_normalisation():
    assert normalize_text("  a\u200b  b\r\n\n\n\nc\t d ") == "a b\n\nc d"
    assert question_key("What is a Hash-Table?") == question_key("what is a hash table")


def test_write_is_byte_identical(tmp_path, items):
    write_jsonl(items, tmp_path / "a.jsonl")
    write_jsonl(items, tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert read_split(tmp_path / "a.jsonl") == items


def test_origins_name_the_file_each_item_came_from(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    a = write_lines(folder / "a.jsonl", [json.dumps(good_row(i)).encode() + b"\n" for i in range(2)])
    b = write_lines(folder / "b.jsonl", [json.dumps(good_row(i)).encode() + b"\n" for i in range(2, 4)])
    origins = {}
    items, _ = load_items([str(folder)], origins=origins)
    assert origins == {"x0": str(a), "x1": str(a), "x2": str(b), "x3": str(b)} and len(items) == 4
