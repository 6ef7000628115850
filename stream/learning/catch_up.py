"""Re-learning at start what the committed offsets say was answered but the statistics lack.

The scoring stage persists its statistics right before it commits offsets, so normally the
statistics' learned-offset watermark of every partition is at or past the committed offset
and there is nothing to do. It is behind when the local folder was lost (deleted, a new
host, a changed `scoring.sknn_*` policy, which opens a fresh store): then, before serving,
every record of the scoring-requests topic from the watermark (or the start of the log) up
to the group's committed offset is read again and learned, through the same ledger that keeps
every click learned once (stream/learning/ledger_gate.py). Nothing is answered or produced here.

Bound: what the topic still holds, i.e. its retention (`kafka.retention_ms` /
`kafka.retention_bytes` for topics streamrec creates). Clicks older than that are gone from
the statistics for good; a warning says how many offsets were lost. Re-reading costs one
fetch of the retained log at start (YooChoose-100k's 70k requests: seconds).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from streamrec.config import Settings
from streamrec.models.scorer import Scorer, persist_scorer
from streamrec.stream import metrics
from streamrec.stream.clients.gaps import GapGuard
from streamrec.stream.kafka import build_consumer, consumer_config, relearn_group
from streamrec.stream.learning.ledger_gate import LedgerGate
from streamrec.stream.learning.whole_stream import LEARNING_STAGE, decode_requests
from streamrec.stream.topics import Topics

log = logging.getLogger(__name__)

_METADATA_TIMEOUT_S = 10.0
_STALL_TIMEOUT_S = 30.0
"""Give up re-learning (and serve with what was learned) when no record arrives for this long."""


def catch_up(settings: Settings, group_id: str, scorers: Sequence[Scorer], gate: LedgerGate,
             stop: threading.Event) -> int:
    """Learn the scoring requests between the statistics' watermarks and `group_id`'s committed offsets.

    Returns how many clicks the first scorer learned. A no-op when no scorer persists its
    statistics (in-memory statistics start empty by design) or when nothing is behind.
    """
    topic = Topics(settings.kafka.topic_prefix).scoring_requests
    probe = build_consumer(settings.kafka, group_id, {"enable.auto.commit": False})
    try:
        ranges = _behind(probe, topic, scorers, gate)
    except KafkaException as exc:  # the broker is unreachable: the stage's own consumer will say so too
        log.warning("could not compare the statistics with the committed offsets (%s); serving without re-learning",
                    exc)
        return 0
    finally:
        probe.close()
    if not ranges:
        return 0
    log.info("scoring statistics are behind the committed offsets: re-learning %s",
             ", ".join(f"partition {p} offsets {a}..{b - 1}" for p, (a, b) in sorted(ranges.items())))
    learned = relearn(settings, group_id, topic, ranges, scorers, gate, stop)
    for scorer in scorers:
        persist_scorer(scorer)
    metrics.CLICKS_RELEARNED_AT_START.inc(learned)
    log.info("re-learned %d clicks from %s", learned, topic)
    return learned


def _behind(probe: Consumer, topic: str, scorers: Sequence[Scorer], gate: LedgerGate) -> dict[int, tuple[int, int]]:
    """partition -> [first offset to learn, committed offset) for every partition the statistics lag on."""
    metadata = probe.list_topics(topic, timeout=_METADATA_TIMEOUT_S).topics.get(topic)
    if metadata is None or metadata.error is not None:
        return {}
    partitions = sorted(metadata.partitions)
    committed = probe.committed([TopicPartition(topic, p) for p in partitions], timeout=_METADATA_TIMEOUT_S)
    ranges: dict[int, tuple[int, int]] = {}
    for tp in committed:
        if tp.offset < 0:  # nothing committed: nothing was answered, nothing to re-learn
            continue
        durable, watermark = gate.durable_watermark(scorers, topic, tp.partition)
        if not durable:
            return {}
        low, _high = probe.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=_METADATA_TIMEOUT_S)
        start = low if watermark is None else max(watermark, low)
        if watermark is not None and low > watermark or watermark is None and low > 0:
            lost = low - (watermark or 0)
            log.warning("partition %d: %d answered scoring requests are past the topic's retention and cannot be "
                        "re-learned (bound: kafka.retention_ms)", tp.partition, lost)
        if start < tp.offset:
            ranges[tp.partition] = (start, tp.offset)
    return ranges


def read_ranges(reader: Consumer, topic: str, ranges: dict[int, tuple[int, int]], scorers: Sequence[Scorer],
                gate: LedgerGate, batch_size: int, stop: threading.Event) -> int:
    """Learn [start, end) of each partition in `ranges` with `reader` (assigned here); the clicks the first scorer
    learned.

    Offsets a fetch skipped are read again (stream/clients/gaps.py), so a range is learned whole."""
    guard = GapGuard(LEARNING_STAGE)
    for partition, (start, _) in ranges.items():
        guard.expect(topic, partition, start)
    reader.assign([TopicPartition(topic, p, start) for p, (start, _) in ranges.items()])
    pending = set(ranges)
    learned, last_progress = 0, time.monotonic()
    while pending and not stop.is_set():
        batch: list[Message] = []
        for message in guard.admit(reader.consume(batch_size, 0.5)):
            error, partition = message.error(), message.partition()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    if guard.expected.get((topic, partition), 0) >= ranges[partition][1]:
                        pending.discard(partition)
                else:
                    log.warning("re-learning: %s", error)
                continue
            last_progress = time.monotonic()
            end = ranges[partition][1]
            if message.offset() >= end - 1 and partition in pending:
                pending.discard(partition)
                reader.pause([TopicPartition(topic, partition)])
            if message.offset() >= end:
                continue
            batch.append(message)
        for (_, partition), offset in guard.take_reseeks().items():
            reader.seek(TopicPartition(topic, partition, offset))
        requests, sources = decode_requests(batch)
        if requests:
            learned += gate.learn(scorers, requests, sources)
        if time.monotonic() - last_progress > _STALL_TIMEOUT_S:
            log.warning("re-learning stalled on partitions %s; serving with what was learned", sorted(pending))
            break
    return learned


def relearn(settings: Settings, group_id: str, topic: str, ranges: dict[int, tuple[int, int]],
            scorers: Sequence[Scorer], gate: LedgerGate, stop: threading.Event) -> int:
    """`read_ranges` with a reader of its own (outside every group, never committing)."""
    # never commits: only assigned partitions are read
    reader = build_consumer(settings.kafka, relearn_group(group_id), {
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        **consumer_config(settings),
    })
    try:
        return read_ranges(reader, topic, ranges, scorers, gate, settings.scoring.batch_max_size, stop)
    finally:
        reader.close()
