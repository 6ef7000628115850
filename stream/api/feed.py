"""The API's consumer thread: recommendations into the store, clicks and dead letters into the live figures.

Scaling out means more identical instances, each reading the WHOLE topics: the consumer
uses `assign()` on every partition, never a group subscription, so no instance depends on
another and none is rebalanced away from partitions. (librdkafka wants a group.id even so;
each instance gets a unique one and never commits to it.) Recommendations are read from the
offset the store recorded (a restart resumes) or, the first time, from the start of the
topic's retention; clicks and dead letters only feed live figures and are read from the end;
model updates (the versions the trainer announced: the dashboard's swap timeline) from the start.
New partitions are picked up every `_METADATA_EVERY_S`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    TIMESTAMP_NOT_AVAILABLE,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from streamrec.config import Settings
from streamrec.stream.api import metrics
from streamrec.stream.api.live import LiveStats
from streamrec.stream.api.store import RecommendationStore, StoredAnswer, decode_recommendation
from streamrec.stream.clients.gaps import GapGuard
from streamrec.stream.kafka import build_consumer, reader_group
from streamrec.stream.topics import ClickEvent, ModelUpdate, Topics
from streamrec.stream.validate import ClickValidator

log = logging.getLogger("streamrec.api")
API_STAGE = "api"
"""Label of the API's feed in `streamrec_offset_gaps_total`."""

_BATCH = 1000
_POLL_S = 0.1
_LAG_EVERY_S = 2.0
_METADATA_EVERY_S = 10.0
_BROKER_TIMEOUT_S = 5.0


@dataclass
class FeedHealth:
    """What /healthz reports: is the broker answering, are partitions assigned, how far behind is the store."""

    broker_ok_at: float | None = None
    """Monotonic time of the last successful broker call."""
    error: str | None = None
    assigned: dict[str, int] = field(default_factory=dict)
    """Partitions assigned, by topic."""
    lag: dict[str, int] = field(default_factory=dict)
    """Records not yet read, by topic (high watermark - next offset, summed over partitions)."""
    caught_up: bool = False
    """The store has read recommendations up to the high watermark once since start."""


class ApiFeed:
    """Consume until `stop`; owns the consumer (one thread), shares the store and the figures."""

    def __init__(self, settings: Settings, store: RecommendationStore, stats: LiveStats) -> None:
        self.topics = Topics(settings.kafka.topic_prefix)
        self.health = FeedHealth()
        self._store = store
        self._stats = stats
        self._validator = ClickValidator(settings.validation)
        self._next: dict[tuple[str, int], int] = {}
        self._guard = GapGuard(API_STAGE, topics=frozenset({self.topics.recommendations}))
        """Answers a fetch skipped are read again before later ones are stored (stream/clients/gaps.py)."""
        self._consumer = build_consumer(settings.kafka, reader_group(settings, "api", unique_chars=12), {
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "fetch.wait.max.ms": settings.kafka.fetch_wait_max_ms,
        })
        self._thread = threading.Thread(target=self._run, name="recommendation-feed", daemon=True)
        self._stop = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()

    def _run(self) -> None:
        next_metadata = next_lag = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_metadata:
                    self._assign_new_partitions()
                    next_metadata = now + _METADATA_EVERY_S
                if now >= next_lag:
                    self._refresh_lag()
                    next_lag = now + _LAG_EVERY_S
            except KafkaException as exc:
                self.health.error = str(exc)
                log.warning("broker call failed: %s", exc)
                next_metadata = next_lag = now + 1.0
            if not self._next:
                self._stop.wait(0.5)
                continue
            try:
                self._handle(self._consumer.consume(num_messages=_BATCH, timeout=_POLL_S))
            except Exception:  # never let one bad batch end the feed: read it again from the store's offsets
                log.exception("recommendation feed: a batch failed; re-reading from the stored offsets")
                self._stop.wait(1.0)
                self._rewind()

    def _assign_new_partitions(self) -> None:
        metadata = self._consumer.list_topics(timeout=_BROKER_TIMEOUT_S)
        self._mark_broker_ok()
        wanted: list[TopicPartition] = []
        for topic in (self.topics.recommendations, self.topics.clicks, self.topics.dlq, self.topics.model_updates):
            described = metadata.topics.get(topic)
            if described is None or described.error is not None:
                continue
            for partition in sorted(described.partitions):
                if (topic, partition) in self._next:
                    continue
                if topic == self.topics.recommendations:
                    stored = self._store.offset(topic, partition)
                    start = OFFSET_BEGINNING if stored is None else stored
                elif topic == self.topics.model_updates:
                    start = OFFSET_BEGINNING
                else:
                    start = OFFSET_END
                wanted.append(TopicPartition(topic, partition, start))
        if not wanted:
            return
        for tp in wanted:
            low, high = self._consumer.get_watermark_offsets(tp, timeout=_BROKER_TIMEOUT_S, cached=False)
            self._next[(tp.topic, tp.partition)] = {OFFSET_BEGINNING: low, OFFSET_END: high}.get(tp.offset, tp.offset)
        self._consumer.incremental_assign(wanted)
        for tp in wanted:
            self._guard.expect(tp.topic, tp.partition, self._next[(tp.topic, tp.partition)])
        for tp in wanted:
            self.health.assigned[tp.topic] = self.health.assigned.get(tp.topic, 0) + 1
        log.info("assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in wanted))

    def _rewind(self) -> None:
        """Seek every recommendations partition back to the offset the store holds (the batch was not stored)."""
        for (topic, partition) in list(self._next):
            if topic != self.topics.recommendations:
                continue
            stored = self._store.offset(topic, partition)
            try:
                if stored is None:
                    stored, _ = self._consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                                     timeout=_BROKER_TIMEOUT_S)
                self._consumer.seek(TopicPartition(topic, partition, stored))
                self._guard.expect(topic, partition, stored)
                self._next[(topic, partition)] = stored
            except KafkaException as exc:
                log.warning("could not rewind %s[%d]: %s", topic, partition, exc)

    def _refresh_lag(self) -> None:
        lag: dict[str, int] = {}
        for (topic, partition), next_offset in list(self._next.items()):
            _, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=_BROKER_TIMEOUT_S,
                                                           cached=False)
            lag[topic] = lag.get(topic, 0) + max(high - next_offset, 0)
        self._mark_broker_ok()
        self.health.lag = lag
        if lag.get(self.topics.recommendations, 0) == 0 and self.topics.recommendations in self.health.assigned:
            self.health.caught_up = True

    def _mark_broker_ok(self) -> None:
        self.health.broker_ok_at = time.monotonic()
        self.health.error = None

    def _handle(self, messages: list[Message]) -> None:
        answers: list[StoredAnswer] = []
        offsets: dict[tuple[str, int], int] = {}
        read_at = time.time()
        messages = self._guard.admit(messages)
        for (topic, partition), offset in self._guard.take_reseeks().items():
            self._consumer.seek(TopicPartition(topic, partition, offset))
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("recommendation feed: %s", error)
                continue
            topic, partition = message.topic(), message.partition()
            self._next[(topic, partition)] = message.offset() + 1
            if topic == self.topics.recommendations:
                offsets[(topic, partition)] = message.offset() + 1
                answer = self._answer(message, read_at)
                if answer is not None:
                    answers.append(answer)
            elif topic == self.topics.clicks:
                self._click(message)
            elif topic == self.topics.model_updates:
                self._model_update(message)
            else:
                self._dead_letter(message)
        if offsets:
            self._store.apply(answers, offsets)

    def _answer(self, message: Message, read_at: float) -> StoredAnswer | None:
        try:
            answer = decode_recommendation(message.value())
        except ValueError as exc:
            metrics.ANSWERS_INVALID.inc()
            log.warning("skipping %s[%d]@%d: %s", message.topic(), message.partition(), message.offset(), exc)
            return None
        metrics.ANSWERS_SEEN.labels(answer.scorer).inc()
        latency = self._stats.on_answer(answer, read_at)
        if latency is not None:
            metrics.END_TO_END.observe(latency)
        return answer

    def _click(self, message: Message) -> None:
        click = self._validator.parse(message.key(), message.value(), time.time())
        if not isinstance(click, ClickEvent):
            return  # the stateful stage dead-letters it; the API counts it when it reaches the DLQ
        metrics.CLICKS_SEEN.inc()
        kind, stamp_ms = message.timestamp()
        produced_at = stamp_ms / 1000.0 if kind != TIMESTAMP_NOT_AVAILABLE else None
        for scorer, hit in self._stats.on_click(click.event_id, click.session_id, click.item_id, produced_at):
            metrics.JUDGED.labels(scorer, str(hit).lower()).inc()

    def _model_update(self, message: Message) -> None:
        try:
            self._stats.on_model_update(ModelUpdate.model_validate_json(message.value() or b""))
        except ValueError as exc:  # pydantic's ValidationError is one
            log.warning("skipping model update %s[%d]@%d: %s", message.topic(), message.partition(), message.offset(),
                        exc)

    def _dead_letter(self, message: Message) -> None:
        try:
            reason = str(orjson.loads(message.value() or b"")["reason"])[:64]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            reason = "undecodable"
        metrics.DEAD_LETTERS_SEEN.labels(reason).inc()
        self._stats.on_dead_letter(reason)
