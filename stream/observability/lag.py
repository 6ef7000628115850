"""Consumer lag per partition of each stage, read from librdkafka's own statistics.

Both stages consume with librdkafka (the scoring stage directly, Quix through its consumer),
which reports, every `statistics.interval.ms`, each assigned partition's committed offset and
high watermark. No extra broker request is made. Lag = high watermark - committed offset (the
log start when the group has committed nothing yet). Partitions a consumer no longer holds
are removed, so a rebalance does not leave stale series behind. The faust engine uses
aiokafka, which has no such statistics: its stage exports no lag.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from prometheus_client import Gauge

log = logging.getLogger(__name__)

_LABELS = ["stage", "topic", "partition"]
CONSUMER_LAG = Gauge("streamrec_consumer_lag", "Records behind: high watermark - committed offset, per stage and partition.", _LABELS)
COMMITTED_OFFSET = Gauge("streamrec_consumer_committed_offset", "Offset the stage's consumer group committed.", _LABELS)
HIGH_WATERMARK = Gauge("streamrec_consumer_high_watermark", "Partition high watermark seen by the stage's consumer.", _LABELS)


class LagRecorder:
    """librdkafka `stats_cb`: update the lag gauges of `stage` for the partitions of `topics` it holds."""

    def __init__(self, stage: str, topics: tuple[str, ...]) -> None:
        self.stage = stage
        self.topics = topics
        self._held: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def __call__(self, stats_json: str) -> None:
        try:
            stats = json.loads(stats_json)
        except ValueError:
            return
        held: set[tuple[str, str]] = set()
        for topic in self.topics:
            for partition, p in stats.get("topics", {}).get(topic, {}).get("partitions", {}).items():
                if partition == "-1" or not p.get("desired") or p.get("hi_offset", -1) < 0:
                    continue
                committed = p.get("committed_offset", -1)
                start = committed if committed >= 0 else max(p.get("lo_offset", 0), 0)
                labels = (self.stage, topic, partition)
                HIGH_WATERMARK.labels(*labels).set(p["hi_offset"])
                COMMITTED_OFFSET.labels(*labels).set(committed)
                CONSUMER_LAG.labels(*labels).set(max(0, p["hi_offset"] - start))
                held.add((topic, partition))
        with self._lock:
            for topic, partition in self._held - held:
                for gauge in (CONSUMER_LAG, COMMITTED_OFFSET, HIGH_WATERMARK):
                    try:
                        gauge.remove(self.stage, topic, partition)
                    except KeyError:
                        pass
            self._held = held


def lag_config(stage: str, topics: tuple[str, ...], interval_ms: int) -> dict[str, int | Callable[[str], None]]:
    """Consumer settings that make librdkafka report lag of `topics` to the gauges every `interval_ms` (0: off)."""
    if not interval_ms:
        return {}
    return {"statistics.interval.ms": interval_ms, "stats_cb": LagRecorder(stage, topics)}
