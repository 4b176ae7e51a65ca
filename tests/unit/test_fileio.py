"""Atomic writes: whole or nothing, and concurrent writers of one file never collide."""
import threading

import pytest

from data.fileio import atomic_write, atomic_write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "x.json"
    atomic_write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as fh:
            fh.write("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_concurrent_writers_each_finish_and_one_whole_version_remains(tmp_path):
    target = tmp_path / "split.jsonl"
    errors = []

    def write(k):
        try:
            for _ in range(20):
                atomic_write_text(target, f"{k}\n" * 1000)
        except Exception as exc:  # noqa: BLE001  (any failure is the test's finding)
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    lines = target.read_text().splitlines()
    assert len(lines) == 1000 and len(set(lines)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["split.jsonl"]
