"""What the stateful-stage engines share: RocksDB memory knobs, the stop watcher, the memory bound's terms.

Kafka clients, their settings and the group names are not engine concerns: stream/kafka.py.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
CHECKPOINT_COPIES = 4
"""Bytes held per byte of the states a Quix checkpoint changed, at its flush: the transaction's copy (1), RocksDB's
write batch, whose buffer grows by doubling (up to 2; bench/write_batch_memory.py measures it), and the batch's
previous buffer while the last doubling copies it (up to 1). The changelog copy waits in the producer
queue, which has its own bound."""
CONSUMER_BUFFER_COPIES = 2
"""The consumer's prefetch queue (`kafka.consumer_buffer_kbytes`) and one fetch response being received, which
`fetch.max.bytes` caps at the same size (consumer_config)."""


@dataclass(frozen=True)
class MemoryShape:
    """How an engine's memory grows with the settings: what the bound below multiplies per engine."""

    block_cache_per_partition: bool
    """True: RocksDB opens one block cache per partition (faust); False: one per process (quix)."""
    column_families_per_partition: int
    """Column families of each partition's database (quix: data and offsets; faust: one)."""
    checkpoint_holds_states: bool
    """Every state a checkpoint changed waits in memory until it commits (quix; faust writes through)."""
    bound_is_estimate: bool = False
    """The library has client buffers the formula cannot see (faust's aiokafka): an estimate, not a bound."""


def memory_bound_mb(shape: MemoryShape, settings: Settings, partitions_per_process: int, max_state_bytes: int) -> float:
    """Upper bound of one stateful-stage process's resident memory, in MiB, from the memory settings.

    base + block cache (once per process, or per partition) + every column family's memtables +
    the producer queue + the consumer prefetch (its queue and one fetch response) + the states of
    one checkpoint where a checkpoint holds them (`max_state_bytes` is the serialised size of the
    largest visitor state). Infinite when such a checkpoint has no click limit
    (`commit_every_clicks = 0`: it then holds whatever 5 s bring; docs/deployment.md, memory).
    Where `shape.bound_is_estimate` (faust) the same terms are an estimate, not a bound: its aiokafka
    clients' buffers are not in it (bench/overload.py --engine faust measured a peak above it: docs/benchmarks.md,
    "Stateful stage under a burst").
    """
    state, kafka = settings.state, settings.kafka
    if shape.checkpoint_holds_states and state.commit_every_clicks == 0:
        return math.inf
    caches = partitions_per_process if shape.block_cache_per_partition else 1
    memtables_mb = (partitions_per_process * shape.column_families_per_partition
                    * state.rocksdb_write_buffer_mb * state.rocksdb_max_write_buffers)
    checkpoint_mb = (state.commit_every_clicks * CHECKPOINT_COPIES * max_state_bytes / MIB
                     if shape.checkpoint_holds_states else 0.0)
    return (STAGE_BASE_RSS_MB + caches * state.rocksdb_block_cache_mb + memtables_mb
            + (kafka.producer_buffer_kbytes + CONSUMER_BUFFER_COPIES * kafka.consumer_buffer_kbytes) / 1024
            + checkpoint_mb)
