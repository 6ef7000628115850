"""HeapTrimmer and the fixed mmap threshold hand a fragmented glibc heap's free memory back to the OS
(stream/stages/heap.py). The resident-memory measurements run in a fresh interpreter, where no other
thread allocates between the readings."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from streamrec.stream.stages.heap import HeapTrimmer, fix_mmap_threshold

_MEASURE = """
import json, sys
from streamrec.stream.stages.heap import HeapTrimmer, fix_mmap_threshold

def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

def trim(apply):
    # free 3 of every 4 heap blocks (16 KiB, below the mmap threshold): the pages stay resident until a trim
    clock = [0.0]
    trimmer = HeapTrimmer(1, clock=lambda: clock[0])
    blocks = [b"\\x01" * (16 * 1024) for _ in range(12_000)]  # ~190 MiB of heap, every page written
    kept = blocks[3::4]  # every 4th stays live, the last among them: the heap's top cannot shrink
    del blocks
    before = rss_mb()
    clock[0] = 1.0
    if apply:
        trimmer.tick()
    return {"active": trimmer.active, "released_mb": before - rss_mb(), "kept": len(kept)}

def threshold(apply):
    # glibc raises its mmap threshold to the size of a mapped block freed; later large blocks then come from
    # the heap, between small live ones, and stay resident when freed
    fixed = fix_mmap_threshold(128) if apply else False
    first = b"\\x01" * (8 * 1024 * 1024)
    del first
    blocks, pins = [], []
    for _ in range(64):  # 1 MiB blocks, each followed by a live 64 KiB block (below any threshold: from the heap)
        blocks.append(b"\\x01" * (1024 * 1024))
        pins.append(b"\\x02" * (64 * 1024))
    during = rss_mb()
    del blocks
    return {"active": fixed or not apply, "released_mb": during - rss_mb(), "kept": len(pins)}

print(json.dumps({"trim": trim, "threshold": threshold}[sys.argv[1]](sys.argv[2] == "1")))
"""


def _measure(case: str, apply: bool) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", _MEASURE, case, "1" if apply else "0"], capture_output=True, text=True,
                          timeout=120, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["active"]:
        pytest.skip("this C library has no malloc_trim / mallopt")
    return result


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_trims_only_once_the_interval_has_passed() -> None:
    clock = _Clock()
    trimmer = HeapTrimmer(1000, clock=clock)
    if not trimmer.active:
        pytest.skip("this C library has no malloc_trim")
    assert not trimmer.tick()
    clock.now = 0.999
    assert not trimmer.tick()
    clock.now = 1.0
    assert trimmer.tick()
    assert not trimmer.tick()  # the next one is a full interval later
    assert not HeapTrimmer(0, clock=clock).active and not HeapTrimmer(0, clock=clock).tick()


def test_a_trim_returns_the_free_pages_between_live_blocks() -> None:
    assert _measure("trim", apply=False)["released_mb"] < 20  # without the trim the free pages stay resident
    assert _measure("trim", apply=True)["released_mb"] > 80  # ~140 MiB was free between the live blocks


def test_large_blocks_get_their_own_mappings_once_the_threshold_is_fixed() -> None:
    assert _measure("threshold", apply=False)["released_mb"] < 20  # glibc's raised threshold: they stay resident
    assert _measure("threshold", apply=True)["released_mb"] > 48  # unmapped on free, no trim needed
    assert not fix_mmap_threshold(0)
