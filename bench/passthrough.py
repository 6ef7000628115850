"""The floor of the benchmark: a plain confluent-kafka consume -> produce loop, no state, no model.

It reads `clicks` and answers each with an empty Recommendation (scorer "passthrough"), so
the very same replay harness measures it exactly like the real pipeline: whatever the
pipeline costs beyond this is streamrec's own work (validation, RocksDB state, the
internal hop, scoring). Settings come from STREAMREC_* variables like a worker's.

    python bench/passthrough.py      # until SIGTERM / Ctrl-C
"""

from __future__ import annotations

import threading
import time

import orjson
from confluent_kafka import Consumer, KafkaError, Message, Producer

from streamrec.config import Settings, load_settings
from streamrec.stream.kafka import consumer_config, producer_config
from streamrec.stream.lifecycle import stop_on_signals
from streamrec.stream.topics import Topics

SCORER_NAME = "passthrough"
_BATCH = 500
_POLL_S = 0.1


def passthrough_group(settings: Settings) -> str:
    """Consumer group of the passthrough (the bench waits for it to be Stable)."""
    return f"{settings.kafka.consumer_group}-passthrough"


def answer(click: Message, emitted_at: float) -> bytes | None:
    """An empty Recommendation for one click record (None when it is not a JSON click)."""
    try:
        event = orjson.loads(click.value() or b"")
        return orjson.dumps({
            "session_id": event["session_id"], "user_id": event.get("user_id"), "event_id": event["event_id"],
            "items": [], "scorer": SCORER_NAME, "model_version": "none", "ts_event": event["ts"],
            "ts_emitted": emitted_at,
        })
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


def _produce(producer: Producer, topic: str, key: bytes | None, value: bytes) -> None:
    """Produce, waiting for room when the local queue is full."""
    while True:
        try:
            producer.produce(topic, key=key, value=value)
            return
        except BufferError:
            producer.poll(0.1)


def run_passthrough(settings: Settings, stop: threading.Event) -> None:
    """Consume clicks, produce one answer each, until `stop` is set."""
    topics = Topics(settings.kafka.topic_prefix)
    kafka = settings.kafka
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": passthrough_group(settings),
                         "auto.offset.reset": "earliest", **consumer_config(settings)})
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers, **producer_config(settings)})
    consumer.subscribe([topics.clicks])
    try:
        while not stop.is_set():
            first = consumer.poll(_POLL_S)  # then what is already fetched: no waiting to fill a batch
            batch = [first, *consumer.consume(_BATCH - 1, 0)] if first is not None else []
            for message in batch:
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    continue
                record = answer(message, time.time()) if error is None else None
                if record is not None:
                    _produce(producer, topics.recommendations, message.key(), record)
            producer.poll(0)
    finally:
        consumer.close()
        producer.flush(5.0)


def main() -> None:
    stop = threading.Event()
    stop_on_signals(stop)
    run_passthrough(load_settings(), stop)


if __name__ == "__main__":
    main()
