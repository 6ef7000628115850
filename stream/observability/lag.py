"""Consumer lag per partition of each stage, read from librdkafka's own statistics.

Both stages consume with librdkafka (the scoring stage directly, Quix through its consumer),
which reports, every `statistics.interval.ms`, each assigned partition's committed offset and
high watermark. No extra broker request is made. Lag = high watermark - committed offset (the
log start when the group has committed nothing yet). Partitions a consumer no longer holds
are removed, so a rebalance does not leave stale series behind. The faust engine uses
aiokafka, which has no such statistics: for it `GroupLagPoller` asks the broker for the group's
committed offsets and the watermarks every interval (one small request per partition) and
fills the same gauges, for every partition of the topic (the group's lag, whichever process
holds the partition).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import Gauge

from streamrec.stream.kafka import Cluster, build_consumer

log = logging.getLogger(__name__)

_LABELS = ["stage", "topic", "partition"]
CONSUMER_LAG = Gauge("streamrec_consumer_lag",
                     "Records behind: high watermark - committed offset, per stage and partition.", _LABELS)
COMMITTED_OFFSET = Gauge("streamrec_consumer_committed_offset", "Offset the stage's consumer group committed.", _LABELS)
HIGH_WATERMARK = Gauge("streamrec_consumer_high_watermark", "Partition high watermark seen by the stage's consumer.",
                       _LABELS)


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


class GroupLagPoller:
    """The lag gauges of `stage` from a consumer group's committed offsets, for clients without statistics (faust).

    A confluent-kafka consumer that never subscribes (it only reads the group's commits and the
    watermarks), polled every `interval_ms` on a daemon thread until `stop` is set.
    """

    def __init__(self, cluster: Cluster, group: str, stage: str, topics: tuple[str, ...], interval_ms: int) -> None:
        self.group, self.stage, self.topics, self.interval_s = group, stage, topics, interval_ms / 1000
        self._cluster = cluster

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(stop,), name=f"lag-{self.stage}", daemon=True)
        thread.start()
        return thread

    def _run(self, stop: threading.Event) -> None:
        consumer = build_consumer(self._cluster, self.group, {"enable.auto.commit": False})
        try:
            while not stop.wait(self.interval_s):
                try:
                    self.poll(consumer)
                except KafkaException as exc:  # the broker is away: the health monitor reports that; try again later
                    log.debug("lag of %s not read: %s", self.group, exc)
        finally:
            consumer.close()

    def poll(self, consumer: Consumer) -> None:
        """Set the gauges once: lag = high watermark - committed offset (the log start before any commit)."""
        partitions = [TopicPartition(topic, p) for topic in self.topics
                      for p in consumer.list_topics(topic, timeout=5).topics[topic].partitions]
        for tp in consumer.committed(partitions, timeout=5):
            low, high = consumer.get_watermark_offsets(tp, timeout=5)
            labels = (self.stage, tp.topic, str(tp.partition))
            HIGH_WATERMARK.labels(*labels).set(high)
            COMMITTED_OFFSET.labels(*labels).set(tp.offset)
            CONSUMER_LAG.labels(*labels).set(max(0, high - (tp.offset if tp.offset >= 0 else low)))
