"""No silent gaps: an offset a fetch skipped is noticed, read again, answered and counted.

The gap is forced on a real consumer against the real broker: right after the scoring stage read
offset 1 of a partition, its consumer is moved to offset 4, as if the broker's fetch answer had left
out offsets 2 and 3 (what the embedded Tansu does now and then at short fetch waits). Without the
gap guard those two requests would never be answered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import Message, Producer, TopicPartition
from prometheus_client import REGISTRY

from streamrec.config import Settings
from streamrec.models.popularity import popularity
from streamrec.stream.admin import ensure_topics
from streamrec.stream.clients.gaps import REFETCHED, UNFILLED, GapGuard
from streamrec.stream.stages.scoring import SCORING_STAGE, ScoringStage
from streamrec.stream.topics import Recommendation, ScoringRequest, Topics

REQUESTS = 10
SKIP_FROM, SKIP_TO = 2, 4


class _SkippingStage(ScoringStage):
    """The real stage; once, after offset SKIP_FROM - 1 of partition 0, its consumer jumps to SKIP_TO."""

    skipped = False

    def _next_batch(self, wait_s: float = 0.5) -> list[Message]:
        batch = super()._next_batch(wait_s)
        if not self.skipped and any(m.partition() == 0 and m.offset() == SKIP_FROM - 1 for m in batch):
            self._consumer.seek(TopicPartition(self.topics.scoring_requests, 0, SKIP_TO))
            self.skipped = True
        return batch


def gaps_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("streamrec_offset_gaps_total", {"stage": SCORING_STAGE, "outcome": outcome}) or 0.0


def test_a_skipped_offset_is_detected_read_again_answered_and_counted(make_settings: Callable[..., Settings],
                                                                       tail_topic: Callable[..., Any]) -> None:
    settings = make_settings(scoring={"scorer": "pop", "batch_max_size": 1, "top_k": 5}, kafka={"partitions": 1})
    ensure_topics(settings)
    topics = Topics(settings.kafka.topic_prefix)
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "batch.num.messages": 1})
    sent = [ScoringRequest(event_id=f"g{n}", session_id=f"s{n}", user_id=None, item_id=f"i{n}", ts_event=1.7e9 + n,
                           ts_received=1.7e9 + n, session_items=[f"i{n}"], session_ts=[1.7e9 + n])
            for n in range(REQUESTS)]
    for request in sent:
        producer.produce(topics.scoring_requests, key=request.session_id.encode(),
                         value=request.model_dump_json().encode(), partition=0)
    assert producer.flush(30) == 0
    before = gaps_counted(REFETCHED)
    tail = tail_topic(settings, topics.recommendations)
    stage = _SkippingStage(settings, popularity(), popularity())
    stop = threading.Event()
    thread = threading.Thread(target=stage.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wanted = {r.event_id for r in sent}
        decode = lambda records: [Recommendation.model_validate_json(m.value()).event_id for m in records]  # noqa: E731
        records = tail.wait_for(lambda rs: wanted <= set(decode(rs)), timeout_s=60)
    finally:
        stop.set()
        thread.join(timeout=30)
    answered = decode(records)
    assert stage.skipped, "the forced jump never happened"
    assert set(answered) == wanted  # offsets 2 and 3 were read again and answered
    assert len(answered) == len(wanted)  # and nothing past the gap was answered twice
    assert stage._guard.settled[REFETCHED] == 1
    assert gaps_counted(REFETCHED) == before + 1


def test_an_engine_consumer_that_cannot_seek_back_counts_and_logs_the_gap(caplog: Any) -> None:
    """The stateful stage's Quix consumer cannot re-read (its checkpoint only moves forward): `see` notices the jump."""
    guard = GapGuard("stateful")
    before = REGISTRY.get_sample_value("streamrec_offset_gaps_total", {"stage": "stateful", "outcome": UNFILLED}) or 0.0
    for offset in (0, 1, 4, 5):
        guard.see("clicks", 0, offset)
    guard.forget([("clicks", 0)])  # reassigned: it starts where the group committed, which is no gap
    guard.see("clicks", 0, 9)
    assert guard.settled[UNFILLED] == 1
    gaps = REGISTRY.get_sample_value("streamrec_offset_gaps_total", {"stage": "stateful", "outcome": UNFILLED})
    assert gaps == before + 1
    assert any("2..3" in record.getMessage() for record in caplog.records)
