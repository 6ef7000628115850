"""Heap a RocksDB write batch holds per byte of what it carries (the `CHECKPOINT_COPIES` of the memory bound).

    .venv/bin/python bench/write_batch_memory.py [--states 10000] [--state-bytes 2000]

A Quix checkpoint flushes the states it changed through one rocksdict `WriteBatch`; its buffer
grows by doubling, so it holds more than the states' bytes. Prints the payload and the glibc heap
the batch added (mallinfo2 in use, before vs after), and their ratio; docs/deployment.md, memory.
"""

from __future__ import annotations

import argparse
import ctypes
import os

from rocksdict import WriteBatch

MIB = 2**20


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=10_000,
                        help="states in one checkpoint (state.commit_every_clicks)")
    parser.add_argument("--state-bytes", type=int, default=2_000, help="serialised size of one state")
    args = parser.parse_args()
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2

    def in_use_mb() -> float:
        heap = libc.mallinfo2()
        return (heap.uordblks + heap.hblkhd) / MIB

    keys = [b"visitor-%08d" % n for n in range(args.states)]
    values = [os.urandom(args.state_bytes) for _ in range(args.states)]
    payload_mb = sum(len(k) + len(v) for k, v in zip(keys, values)) / MIB
    before = in_use_mb()
    batch = WriteBatch(raw_mode=True)
    for key, value in zip(keys, values):
        batch.put(key, value)
    held_mb = in_use_mb() - before
    print(f"{args.states:,} states of {args.state_bytes:,} bytes: payload {payload_mb:.1f} MB, write batch holds "
          f"{held_mb:.1f} MB of heap: x{held_mb / payload_mb:.2f} the payload ({len(batch)} entries)")


if __name__ == "__main__":
    main()
