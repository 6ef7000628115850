"""Reading what a pipeline answers: `recommendations` and the DLQ, routed to the replay phase of each click.

Part of the replay harness (stream/harness/replay.py); on its own, it is how a test or a benchmark
reads answers to clicks it sent, timed on arrival.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from time import perf_counter, sleep, time

import orjson
from confluent_kafka import KafkaError, Message, TopicPartition

from streamrec.config.settings import Settings
from streamrec.stream.clients.gaps import GapGuard
from streamrec.stream.harness.prequential import PhaseTally
from streamrec.stream.kafka import build_consumer, consumer_config, reader_group
from streamrec.stream.topics import Answer, DeadLetter, Topics, read_answer

_MIN_POLL_S = 0.001
"""Shortest wait handed to librdkafka (it rounds down to whole milliseconds)."""
_CONSUME_BATCH = 1000
_METADATA_TIMEOUT_S = 30.0
COLLECTOR_STAGE = "collector"
"""Label of the replay's collector in `streamrec_offset_gaps_total`."""


class OutputCollector:
    """Reads `recommendations` and the DLQ from the moment it opens and routes each record to its phase.

    It assigns partitions itself (no consumer group: no join delay, no committed offsets)
    starting at the first offset written after it opened. Records of other traffic on the
    same topics are skipped by event id; undecodable ones are counted, never fatal.
    """

    def __init__(self, settings: Settings, phases: Sequence[PhaseTally] = ()) -> None:
        self.topics = Topics(settings.kafka.topic_prefix)
        self.phases = list(phases)
        self.undecodable = 0
        self.last_arrival = perf_counter()
        self.guard = GapGuard(COLLECTOR_STAGE)
        """Answers a fetch skipped are read again (stream/clients/gaps.py): a missing answer is the pipeline's."""
        self._consumer = build_consumer(settings.kafka, reader_group(settings, "replay"), {
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            # Should a start offset be refused as out of range (Tansu does so on a partition that is
            # still empty), re-read from the start rather than jump to the end past early answers:
            # records of other runs are dropped by event id anyway.
            "auto.offset.reset": "earliest",
            **consumer_config(settings),
        })

    def __enter__(self) -> OutputCollector:
        offsets = self._start_offsets(int(time() * 1000))
        for tp in offsets:
            self.guard.expect(tp.topic, tp.partition, tp.offset)
        self._consumer.assign(offsets)
        return self

    def __exit__(self, *exc: object) -> None:
        self._consumer.close()

    def _start_offsets(self, since_ms: int) -> list[TopicPartition]:
        """First offset at/after `since_ms` per partition; where none yet, the high watermark.

        A concrete offset (not the logical END) leaves no window in which an early answer
        could be skipped. Brokers that under-report the watermark (Tansu) only make us read
        a few older records, which the event-id filter drops.
        """
        names = (self.topics.recommendations, self.topics.dlq)
        metadata = self._consumer.list_topics(timeout=_METADATA_TIMEOUT_S).topics
        wanted = [TopicPartition(t, p, since_ms)
                  for t in names for p in (metadata[t].partitions if t in metadata else {})]
        if len(wanted) == 0:
            raise RuntimeError(f"topics {names} do not exist on the broker (start a worker first, it creates them)")
        offsets = self._consumer.offsets_for_times(wanted, timeout=_METADATA_TIMEOUT_S)
        for tp in offsets:
            if tp.offset < 0:
                tp.offset = self._consumer.get_watermark_offsets(tp, timeout=_METADATA_TIMEOUT_S)[1]
        return offsets

    def follow(self, phase: PhaseTally) -> None:
        """Route the answers to `phase`'s clicks to it from now on (a collector can serve several replays)."""
        self.phases.append(phase)

    def pump(self, until: float) -> None:
        """Handle every record that arrives before perf_counter() reaches `until` (0: only what is queued).

        librdkafka counts timeouts in whole milliseconds, so a wait under 1 ms would return at
        once and spin: it is slept instead (the harness shares the CPU with the pipeline it measures).
        """
        while True:
            batch = self._consumer.consume(_CONSUME_BATCH, timeout=0)
            if batch:
                self._handle(batch, perf_counter())
                continue
            remaining = until - perf_counter()
            if remaining <= 0:
                return
            if remaining < _MIN_POLL_S:
                sleep(remaining)
                return
            message = self._consumer.poll(remaining)  # returns at the first record: its arrival time is exact
            if message is not None:
                self._handle([message], perf_counter())

    def _handle(self, messages: list[Message], received_at: float) -> None:
        self.last_arrival = received_at
        messages = self.guard.admit(messages)
        for (topic, partition), offset in self.guard.take_reseeks().items():
            self._consumer.seek(TopicPartition(topic, partition, offset))
        for message in messages:
            if message.error() is not None:
                if message.error().code() != KafkaError._PARTITION_EOF:
                    self.undecodable += 1
                continue
            try:
                if message.topic() == self.topics.dlq:
                    self._on_dead_letter(DeadLetter.model_validate_json(message.value() or b""))
                else:
                    self._on_recommendation(read_answer(message.value()), received_at)
            except ValueError:  # pydantic's ValidationError is a ValueError too
                self.undecodable += 1

    def _locate(self, event_id: str) -> tuple[PhaseTally, int] | None:
        for phase in self.phases:
            index = phase.index_of(event_id)
            if index is not None:
                return phase, index
        return None

    def _on_recommendation(self, answer: Answer, received_at: float) -> None:
        found = self._locate(answer.event_id)
        if found is not None:
            found[0].on_recommendation(found[1], answer, received_at)

    def _on_dead_letter(self, dead: DeadLetter) -> None:
        """Attribute a dead letter to its click through the event id inside the original bytes."""
        try:
            original = orjson.loads(base64.b64decode(dead.original_b64))
        except (ValueError, orjson.JSONDecodeError):
            return  # not one of ours: our clicks are always valid JSON
        event_id = original.get("event_id") if isinstance(original, dict) else None
        found = self._locate(event_id) if isinstance(event_id, str) else None
        if found is not None:
            found[0].on_dead_letter(found[1])
