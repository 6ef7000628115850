"""Give the C allocator's free pages back to the operating system while a stage runs.

Why: glibc's malloc keeps what RocksDB (memtables flushed, compaction buffers, block-cache
evictions) and a checkpoint's serialised states free in its heaps, and hands pages back only
from the top of a heap. Under a long burst over a large key space the freed memory is
interleaved with live blocks, so the stateful stage's resident memory crept above everything
its settings bound (`bench/overload.py --heap-probe-s` samples glibc's mallinfo2 in the stage:
the free part of the heap grew past the live part; docs/benchmarks.md, "Stateful stage under a burst"). `malloc_trim(0)`
walks every arena and releases each whole free page (madvise MADV_DONTNEED); it takes milliseconds,
so the stage calls it every `state.heap_trim_interval_ms` from its processing thread.

Trimming cannot help blocks that never leave the heap: glibc serves allocations above its mmap
threshold (128 KiB) with their own mappings, returned whole on free, but raises that threshold
to the size of every such block freed (up to 32 MiB), after which RocksDB's memtable arena
blocks and the checkpoints' write batches come from the heap and fragment it. The stage fixes
the threshold at `state.heap_mmap_threshold_kb` (mallopt M_MMAP_THRESHOLD, which also turns the
raising off).

On a C library without `malloc_trim` or `mallopt` (musl, macOS) both do nothing and say so once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable

from streamrec.stream import metrics

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_M_MMAP_THRESHOLD = -3
"""glibc malloc.h: mallopt parameter of the mmap threshold (setting it disables the dynamic threshold)."""


def fix_mmap_threshold(kb: int) -> bool:
    """Serve allocations of at least `kb` KiB with their own mappings, always (0: leave glibc's dynamic
    threshold); True when applied."""
    if kb <= 0:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.info("this C library has no mallopt: state.heap_mmap_threshold_kb has no effect")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, kb * 1024) == 1


class HeapTrimmer:
    """Calls malloc_trim(0) at most every `interval_ms` (0: never); `tick()` is cheap between calls."""

    def __init__(self, interval_ms: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_ms / 1000
        self._clock = clock
        self._trim = _malloc_trim() if interval_ms > 0 else None
        self._next = clock() + self._interval_s
        if interval_ms > 0 and self._trim is None:
            log.info("this C library has no malloc_trim: state.heap_trim_interval_ms has no effect")

    @property
    def active(self) -> bool:
        return self._trim is not None

    def tick(self) -> bool:
        """Trim if the interval has passed since the last trim; True when it trimmed."""
        if self._trim is None:
            return False
        now = self._clock()
        if now < self._next:
            return False
        self._trim(0)
        done = self._clock()
        metrics.HEAP_TRIMS.inc()
        metrics.HEAP_TRIM_SECONDS.inc(max(done - now, 0.0))
        self._next = done + self._interval_s
        return True
