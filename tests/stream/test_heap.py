"""HeapTrimmer hands a fragmented glibc heap's free pages back to the OS (stream/stages/heap.py)."""

from __future__ import annotations

import pytest

from streamrec.stream.stages.heap import HeapTrimmer, fix_mmap_threshold


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


def test_large_blocks_get_their_own_mappings_once_the_threshold_is_fixed() -> None:
    """glibc raises its mmap threshold to the size of every mapped block freed, after which large blocks come from
    the heap, between small live ones, and stay resident when freed; with the threshold fixed they are unmapped."""
    if not fix_mmap_threshold(128):
        pytest.skip("this C library has no mallopt")
    first = b"\x01" * (8 * 1024 * 1024)  # a mapped block; freeing it would raise glibc's dynamic threshold to 8 MiB
    del first
    before = _rss_mb()
    blocks, pins = [], []
    for _ in range(64):  # 1 MiB blocks, each followed by a live 64 KiB block (below the threshold: from the heap)
        blocks.append(b"\x01" * (1024 * 1024))
        pins.append(b"\x02" * (64 * 1024))
    during = _rss_mb()
    del blocks
    after = _rss_mb()
    assert during - before > 48 and during - after > 48, (before, during, after)  # handed back on free, no trim needed
    assert len(pins) == 64 and not fix_mmap_threshold(0)
