"""`streamrec` with a sampler of the process's memory: glibc's heap (mallinfo2) and RocksDB's own figures.

    python bench/heap_probe.py OUT.jsonl EVERY_S worker --role stateful

Runs the CLI in this process and appends one JSON line per EVERY_S seconds to OUT.jsonl: resident
memory, glibc's heap in use and free (free = memory the allocator keeps but nothing uses), and per
Quix store partition and column family the RocksDB memtables, block cache and table readers (MB).
bench/overload.py starts the stateful stage through it with --heap-probe-s (docs/benchmarks.md).
"""

from __future__ import annotations

import ctypes
import gc
import json
import sys
import threading
import time

MIB = 2**20
ROCKSDB_MB = ("cur-size-all-mem-tables", "block-cache-usage", "estimate-table-readers-mem")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def _rocksdb() -> dict[str, dict[str, float]]:
    from quixstreams.state.rocksdb.partition import RocksDBStorePartition

    found: dict[str, dict[str, float]] = {}
    for n, partition in enumerate(o for o in gc.get_objects() if isinstance(o, RocksDBStorePartition)):
        db = partition._db
        for family in db.list_cf(partition._path):
            handle = db if family == "default" else db.get_column_family(family)
            found[f"p{n}:{family}"] = {name: round((handle.property_int_value(f"rocksdb.{name}") or 0) / MIB, 1)
                                       for name in ROCKSDB_MB}
    return found


def _sample(out: str, every_s: float) -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    with open(out, "a") as lines:
        while True:
            time.sleep(every_s)
            heap = libc.mallinfo2()
            line = {"t": round(time.time(), 1), "rss_mb": round(_rss_mb()),
                    "heap_mb": (heap.arena + heap.hblkhd) // MIB,
                    "heap_in_use_mb": (heap.uordblks + heap.hblkhd) // MIB, "heap_free_mb": heap.fordblks // MIB}
            try:
                line["rocksdb"] = _rocksdb()
            except Exception as exc:  # noqa: BLE001 - a diagnostic: report, never stop the stage
                line["rocksdb_error"] = repr(exc)
            lines.write(json.dumps(line) + "\n")
            lines.flush()


def main() -> None:
    out, every_s = sys.argv[1], float(sys.argv[2])
    threading.Thread(target=_sample, args=(out, every_s), name="heap-probe", daemon=True).start()
    from streamrec.cli import app

    sys.argv = ["streamrec", *sys.argv[3:]]
    app()


if __name__ == "__main__":
    main()
