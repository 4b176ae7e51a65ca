import json

import pytest

from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration


def test_shipped_corpus_prepares_to_spec(prepared_data, tmp_path):
    proc = run_cli("data.prepare", "--out_dir", str(tmp_path), "--json")
    s = json.loads(proc.stdout)
    assert s["valid_items"] >= 1500
    for domain, row in s["by_domain_difficulty"].items():
        assert row["total"] >= 500, domain
    assert s["splits"]["train_curated"] == 1000
    assert s["splits"]["eval"] == s["valid_items"] - 1000
    assert s["cross_split_near_duplicates"] == 0
    # the cross-shard paraphrases issue 14 names are merged (write-through/write-back already by the question rule)
    merged = {(p["kept"], p["dropped"]) for p in s["paraphrase_pairs"]}
    assert {("cs-dsw-0116", "cs-sys-0157"), ("cs-alg-0154", "cs-dsw-0182"), ("cs-alg-0012", "cs-sys-0114"),
            ("ai-llm-0073", "ai-mldl-0122"), ("st-inf-0033", "st-prob-0139")} <= merged, merged
    listed = [json.loads(line) for line in open(tmp_path / "duplicates.jsonl")]
    assert any((d["kept"], d["dropped"], d["kind"]) == ("cs-dsw-0112", "cs-sys-0118", "near") for d in listed)
    # a paraphrase merge joins items of two shards, never two items of one (the shard is the id's prefix)
    assert all(k.rsplit("-", 1)[0] != d.rsplit("-", 1)[0] for k, d in merged)
    assert s["duplicates_dropped"]["paraphrase"] == len(merged) and s["valid_items"] == s["items_read"] - sum(
        s["duplicates_dropped"].values())
    # running twice gives byte-identical split files
    for name in ("train", "dev", "eval", "duplicates"):
        assert (tmp_path / f"{name}.jsonl").read_bytes() == (prepared_data / f"{name}.jsonl").read_bytes(), name
    ids = [json.loads(line)["id"] for name in ("train", "dev", "eval") for line in open(tmp_path / f"{name}.jsonl")]
    assert len(ids) == len(set(ids)) == s["valid_items"]


def test_shipped_answers_follow_the_style_sheet(prepared_data):
    from data.loaders import read_split

    items = [it for name in ("train", "dev", "eval") for it in read_split(prepared_data / f"{name}.jsonl")]
    for it in items:
        n = len(it.answer.split())
        assert 50 <= n <= 200, (it.id, n)
        assert "###" not in it.answer and it.answer.rstrip()[-1] in ".)%", it.id
        assert it.difficulty in ("basic", "intermediate", "advanced") and it.tags, it.id


def test_bad_file_is_rejected_naming_each_line(tmp_path):
    good = {"id": "a", "domain": "cs", "question": "What is a heap?",
            "answer": "A heap is a tree with the heap property."}
    lines = [json.dumps(good), json.dumps({**good, "id": "b", "answer": None}),
             json.dumps({**good, "id": "c", "domain": "art"}),
             '{"id": "d", broken', json.dumps({**good, "id": "e", "answer": "x" * 1_000_000})]
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(lines) + "\n")
    proc = run_cli("data.prepare", "--corpus", str(p), "--out_dir", str(tmp_path / "out"), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    for line in (2, 3, 4, 5):
        assert f"bad.jsonl:{line}:" in proc.stderr
    assert "1 valid rows" in proc.stderr
