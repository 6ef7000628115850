"""Under a burst over a key space larger than its memory settings, a real stateful-stage
process stays under the bound those settings give (engines/registry.stateful_memory_bound_mb, docs/deployment.md).

Before the memory settings the stage had the engines' own limits (a 1 GiB block cache, 3 x 64 MiB memtables per
column family, a checkpoint every 5 s holding every state it changed): its memory followed the key space and the
backlog. The settings here are small so that a burst a test can afford fills every buffer they bound.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import orjson
from ops_helpers import scrape, wait_until

from streamrec.config import Settings
from streamrec.stream.admin import ensure_topics
from streamrec.stream.broker import free_port
from streamrec.stream.clients.producer import ClickProducer
from streamrec.stream.stages.engines.registry import stateful_memory_bound_mb
from streamrec.stream.stages.stateful import anonymous_state_bytes
from streamrec.stream.topics import Topics

CLICKS, SESSIONS, ITEMS = 150_000, 15_000, 100_000
SMALL_MEMORY = {"rocksdb_block_cache_mb": 4, "rocksdb_write_buffer_mb": 2, "rocksdb_max_write_buffers": 2,
                "commit_every_clicks": 2_000}
SMALL_QUEUES = {"producer_buffer_kbytes": 4096, "consumer_buffer_kbytes": 2048,
                "single_record_batches": False, "fetch_wait_max_ms": 10}


def _produce_burst(settings: Settings) -> None:
    """CLICKS anonymous clicks round-robin over SESSIONS, an hour of event time (no session closes)."""
    rng = random.Random(10)
    start = time.time() - 3600
    with ClickProducer(settings.kafka.bootstrap_servers, Topics(settings.kafka.topic_prefix).clicks,
                       {"linger.ms": 50}) as clicks:
        for n in range(CLICKS):
            session = f"s{n % SESSIONS}"
            clicks.send_raw(session.encode(), orjson.dumps({"event_id": f"e{n}", "session_id": session,
                                                            "item_id": f"i{rng.randrange(ITEMS)}",
                                                            "ts": start + n * 3000 / CLICKS}))
        assert clicks.flush(120) == 0 and clicks.failed == 0


def _memory_kb(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as status:
        return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in status) if k in ("VmRSS", "VmHWM")}


def test_stateful_stage_stays_under_its_memory_bound_through_a_burst(
    make_settings: Callable[..., Settings], spawn_worker: Callable
) -> None:
    port = free_port()
    settings = make_settings(state=SMALL_MEMORY, kafka=SMALL_QUEUES, metrics_port=port)
    ensure_topics(settings)
    _produce_burst(settings)  # all of it waits in `clicks` before the stage starts: a backlog, read flat out
    worker = spawn_worker(settings, role="stateful")
    peak_rss_kb = 0

    def drained() -> bool:
        nonlocal peak_rss_kb
        assert worker.alive, worker.log()
        peak_rss_kb = max(peak_rss_kb, _memory_kb(worker.process.pid)["VmRSS"])
        return (scrape(port).get(("streamrec_clicks_accepted_total", ())) or 0) >= CLICKS

    assert wait_until(drained, timeout_s=300, every_s=0.5), worker.log()
    peak_mb = _memory_kb(worker.process.pid)["VmHWM"] / 1024
    state_bytes = anonymous_state_bytes(settings, -(-CLICKS // SESSIONS), len(f"e{CLICKS}"))
    bound_mb = stateful_memory_bound_mb(settings, partitions_per_process=settings.kafka.partitions,
                                        max_state_bytes=state_bytes)
    assert peak_mb <= bound_mb, f"peak RSS {peak_mb:.0f} MB above the bound {bound_mb:.0f} MB"
    assert worker.terminate() == 0, worker.log()
