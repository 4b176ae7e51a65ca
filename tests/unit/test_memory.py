"""glibc tuning of the entry points: with keep_heap_small, freed activation-sized blocks go back to the system."""
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CHILD = """
import sys, numpy as np
if sys.argv[1] == "small":
    from model.memory import keep_heap_small
    assert keep_heap_small()
def rss():
    return int([l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1]) // 1024
base = rss()
keep = []
for _ in range(3):
    blocks = [np.ones((1 + i % 7) * 1_000_000 // 8) for i in range(40)]  # 1-7 MB, like activations
    keep.append(np.ones(1000))  # a small survivor allocated after them
    del blocks
held = rss() - base  # what the next training step starts from
if sys.argv[1] == "trim":
    from model.memory import release_memory
    release_memory()
print(held, rss() - base)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and malloc_trim are Linux-only")
def test_freed_activation_sized_blocks_leave_the_process():
    def retained(mode):
        out = subprocess.run([sys.executable, "-c", CHILD, mode], cwd=ROOT, capture_output=True, text=True, check=True)
        return [int(x) for x in out.stdout.split()]

    (default, _), (small, _), (before_trim, after_trim) = retained("default"), retained("small"), retained("trim")
    assert default > 80, default  # glibc's default keeps freed activation-sized blocks in the heap (MB)
    assert small < default / 3, (small, default)
    assert after_trim < before_trim / 3, (before_trim, after_trim)  # release_memory between phases
