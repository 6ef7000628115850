"""The memory settings reach the engines: RocksDB block cache and memtables, librdkafka's queues.

Without them Quix Streams opens a 1 GiB block cache and 3 x 64 MiB memtables per column family,
faust a 2 GiB cache per partition, and librdkafka queues up to 1 GiB of unsent records, which a
large key space fills (bench/overload.py, docs/deployment.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from streamrec.config import Settings, load_settings
from streamrec.stream.stages.engines.common import MIB
from streamrec.stream.stages.engines.registry import stateful_memory_bound_mb

SettingsFactory = Callable[..., Settings]
"""tests/conftest.py's `make_settings` fixture (not imported: another conftest.py may own that module name)."""

MEMORY = {"rocksdb_block_cache_mb": 3, "rocksdb_write_buffer_mb": 5, "rocksdb_max_write_buffers": 4,
          "commit_every_clicks": 7}
KAFKA = {"producer_buffer_kbytes": 2048, "consumer_buffer_kbytes": 4096}


def test_quix_application_gets_the_memory_settings(make_settings: SettingsFactory) -> None:
    from streamrec.stream.stages.engines.quix import build_application

    settings = make_settings(state=MEMORY, kafka=KAFKA)
    app, _ = build_application(settings)
    options = app._config.rocksdb_options
    assert (options.block_cache_size, options.write_buffer_size,
            options.max_write_buffer_number) == (3 * MIB, 5 * MIB, 4)
    assert app._config.producer_extra_config["queue.buffering.max.kbytes"] == 2048
    assert app._config.consumer_extra_config["queued.max.messages.kbytes"] == 4096
    assert app._config.consumer_extra_config["fetch.max.bytes"] == 4096 * 1024
    assert app._config.commit_every == 7


def test_faust_table_store_gets_the_memory_settings(make_settings: SettingsFactory) -> None:
    from streamrec.stream.stages.engines.faust import build_app

    settings = make_settings(state={**MEMORY, "engine": "faust"})
    app = build_app(settings)
    (table,) = app.tables.values()
    options: Any = table.data.rocksdb_options  # the store faust opens each partition's database with
    assert (options.block_cache_size, options.write_buffer_size,
            options.max_write_buffer_number) == (3 * MIB, 5 * MIB, 4)


def test_bound_grows_with_each_memory_setting() -> None:
    def bound(state: dict[str, Any] = MEMORY, kafka: dict[str, Any] = KAFKA) -> float:
        return stateful_memory_bound_mb(load_settings(state=state, kafka=kafka), partitions_per_process=2,
                                        max_state_bytes=MIB)

    base = bound()
    assert bound(state={**MEMORY, "rocksdb_block_cache_mb": 13}) == base + 10
    # partitions x column families x buffers
    assert bound(state={**MEMORY, "rocksdb_write_buffer_mb": 6}) == base + 2 * 2 * 4
    assert bound(kafka={**KAFKA, "producer_buffer_kbytes": 3072}) == base + 1
    assert bound(kafka={**KAFKA, "consumer_buffer_kbytes": 5120}) == base + 2  # the queue and one fetch response
    assert bound(state={**MEMORY, "commit_every_clicks": 8}) == base + 4  # the checkpoint's states, held up to 4 times
    assert bound(state={**MEMORY, "commit_every_clicks": 0}) == math.inf  # quix then checkpoints every 5 s only
    # a cache per partition, one family, no checkpoint cache
    assert bound(state={**MEMORY, "engine": "faust"}) == base + 3 - 2 * 5 * 4 - 7 * 4
