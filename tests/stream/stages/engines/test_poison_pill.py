"""A poison pill: one ~800 KB click among valid ones, on both engines.

Before, its dead letter (the original bytes in base64, ~1.07 MB) exceeded the producer's
1,000,000-byte limit: Quix exited 1 on every restart, faust's agent crashed and stalled, and
nothing behind the record was ever answered. Now every dead letter is bounded: the original
bytes are cut to `kafka.dlq_max_original_bytes`, with their size and sha256 kept.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable

import orjson
import pytest
from confluent_kafka import Producer
from test_engines import ENGINES
from traffic_helpers import make_stream, produce, wait_event_ids

from streamrec.config import Settings
from streamrec.stream.admin import ensure_topics
from streamrec.stream.topics import DeadLetter, Topics

PILL_BYTES = 800_000


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_an_800kb_click_is_dead_lettered_truncated_and_the_clicks_behind_it_are_answered(
    engine: str, make_settings: Callable[..., Settings], spawn_worker: Callable, tail_topic: Callable
) -> None:
    settings = make_settings(state={"engine": engine}, scoring={"scorer": "pop", "top_k": 5})
    ensure_topics(settings)
    topics = Topics(settings.kafka.topic_prefix)
    stream = make_stream(users=3, anonymous=3, length=4)
    pad = "x" * (PILL_BYTES - 100)
    pill = orjson.dumps({"event_id": "pill", "session_id": "s-pill", "item_id": "i1", "ts": time.time(), "pad": pad})
    pill = pill[:PILL_BYTES - 1] + b"}" if len(pill) > PILL_BYTES else pill

    worker = spawn_worker(settings, engine=engine)
    half = len(stream.clicks) // 2
    produce(settings, stream.clicks[:half])
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "batch.num.messages": 1})
    producer.produce(topics.clicks, key=b"s-pill", value=pill)
    assert producer.flush(30) == 0
    produce(settings, stream.clicks[half:])

    valid = {str(c["event_id"]) for c in stream.clicks}
    answered = wait_event_ids(tail_topic(settings, topics.recommendations), valid, timeout_s=60)
    assert answered == valid, worker.log()
    [record] = tail_topic(settings, topics.dlq).wait_for(lambda r: len(r) >= 1, timeout_s=30)
    assert len(record.value()) <= settings.kafka.max_message_bytes
    letter = DeadLetter.model_validate_json(record.value())
    assert letter.reason == "oversized_payload" and letter.truncated
    assert letter.original_size == len(pill) and letter.original_sha256 == hashlib.sha256(pill).hexdigest()
    kept = base64.b64decode(letter.original_b64)
    assert kept == pill[:settings.kafka.dlq_max_original_bytes] and len(kept) < len(pill)
    assert base64.b64decode(letter.original_key_b64 or "") == b"s-pill" and letter.original_key_size == 6
    assert worker.alive and worker.log().count("worker starting") == 1, worker.log()
    assert "Traceback" not in worker.log(), worker.log()
    assert worker.terminate() == 0, worker.log()
