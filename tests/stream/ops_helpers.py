"""Helpers of the operations tests: one click in, its answer out; scraping a worker's /metrics."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Callable

import orjson
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from streamrec.config import Settings
from streamrec.stream.topics import Topics


def send_clicks(settings: Settings, count: int, session: str | None = None) -> list[str]:
    """Produce `count` clicks of one new session (a live stream: now-ish times); returns their event ids."""
    session = session or f"s-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "batch.num.messages": 1})
    ids = []
    for n in range(count):
        event_id = f"{session}-{n}"
        body = {"event_id": event_id, "session_id": session, "item_id": f"i{n % 7}", "ts": time.time() - 10 + n * 0.01}
        producer.produce(Topics(settings.kafka.topic_prefix).clicks, key=session.encode(), value=orjson.dumps(body))
        ids.append(event_id)
    assert producer.flush(30) == 0
    return ids


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of http://127.0.0.1:port/metrics by (name, sorted labels); {} when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0, every_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every_s)
    return condition()
