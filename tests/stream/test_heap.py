"""HeapTrimmer hands a fragmented glibc heap's free pages back to the OS (stream/stages/heap.py)."""

from __future__ import annotations

import pytest

from streamrec.stream.stages.heap import HeapTrimmer


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


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
    """Free 3 of every 4 heap blocks (16 KiB, below glibc's mmap threshold): they stay resident until the trim."""
    clock = _Clock()
    trimmer = HeapTrimmer(1, clock=clock)
    if not trimmer.active:
        pytest.skip("this C library has no malloc_trim")
    blocks = [bytes(16 * 1024) for _ in range(12_000)]  # ~190 MiB of heap, every page touched (zeroed)
    kept = blocks[3::4]  # every 4th block stays live, the last one among them: the heap's top cannot shrink
    del blocks
    before = _rss_mb()
    clock.now = 1.0
    assert trimmer.tick()
    after = _rss_mb()
    assert before - after > 80, (before, after)  # ~140 MiB was free between the live blocks
    assert len(kept) == 3_000
