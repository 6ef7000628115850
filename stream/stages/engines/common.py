"""What both stateful-stage engines share: RocksDB memory knobs, the stop watcher, the memory bound.

Kafka clients, their settings and the group names are not engine concerns: stream/kafka.py.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from streamrec.config import Settings

MIB = 1024 * 1024


@dataclass(frozen=True)
class RocksDBMemory:
    """The RocksDB memory knobs both engines set, in bytes (from settings.state; docs/deployment.md has the bound)."""

    block_cache_bytes: int
    write_buffer_bytes: int
    max_write_buffers: int


def rocksdb_memory(settings: Settings) -> RocksDBMemory:
    state = settings.state
    return RocksDBMemory(
        block_cache_bytes=state.rocksdb_block_cache_mb * MIB,
        write_buffer_bytes=state.rocksdb_write_buffer_mb * MIB,
        max_write_buffers=state.rocksdb_max_write_buffers,
    )


@contextlib.contextmanager
def stop_when_set(stop: threading.Event | None, on_stop: Callable[[], None]) -> Iterator[None]:
    """Call `on_stop` from a watcher thread once `stop` is set, so a blocking `run()` can be ended from outside."""
    if stop is None:
        yield
        return
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if stop.wait(timeout=0.2):
                on_stop()
                return

    watcher = threading.Thread(target=watch, name="stateful-stop-watcher", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        watcher.join()


STAGE_BASE_RSS_MB = 160
"""Resident memory of a `streamrec worker --role stateful` before the state grows (interpreter, imports,
librdkafka clients, RocksDB's own structures); measured by bench/overload.py (docs/benchmarks.md, "Stateful stage
under a burst")."""
COLUMN_FAMILIES_PER_PARTITION = 2
"""Quix opens each partition's database with its data and its metadata (offsets) column family; faust one."""
CHECKPOINT_COPIES = 4
"""Bytes held per byte of the states a Quix checkpoint changed, at its flush: the transaction's copy (1), RocksDB's
write batch, whose buffer grows by doubling (up to 2; bench/write_batch_memory.py measures it), and the batch's
previous buffer while the last doubling copies it (up to 1). The changelog copy waits in the producer
queue, which has its own bound."""
CONSUMER_BUFFER_COPIES = 2
"""The consumer's prefetch queue (`kafka.consumer_buffer_kbytes`) and one fetch response being received, which
`fetch.max.bytes` caps at the same size (consumer_config)."""


def stateful_memory_bound_mb(settings: Settings, partitions_per_process: int, max_state_bytes: int) -> float:
    """Upper bound of one stateful-stage process's resident memory, in MiB, from the memory settings.

    base + block cache (once per process on quix, per partition on faust) + every column family's
    memtables + the producer queue + the consumer prefetch (its queue and one fetch response) + the
    states of one checkpoint (quix; `max_state_bytes` is the serialised size of the largest visitor
    state). Infinite on quix with `commit_every_clicks = 0`: a checkpoint then holds whatever 5 s bring
    (docs/deployment.md, memory). On faust the same terms are an estimate, not a bound: its aiokafka
    clients' buffers are not in it (bench/overload.py --engine faust measured a peak above it: docs/benchmarks.md,
    "Stateful stage under a burst").
    """
    state, kafka = settings.state, settings.kafka
    quix = state.engine == "quix"
    if quix and state.commit_every_clicks == 0:
        return math.inf
    caches = 1 if quix else partitions_per_process
    families = COLUMN_FAMILIES_PER_PARTITION if quix else 1
    memtables_mb = partitions_per_process * families * state.rocksdb_write_buffer_mb * state.rocksdb_max_write_buffers
    checkpoint_mb = state.commit_every_clicks * CHECKPOINT_COPIES * max_state_bytes / MIB if quix else 0.0
    return (STAGE_BASE_RSS_MB + caches * state.rocksdb_block_cache_mb + memtables_mb
            + (kafka.producer_buffer_kbytes + CONSUMER_BUFFER_COPIES * kafka.consumer_buffer_kbytes) / 1024 + checkpoint_mb)
