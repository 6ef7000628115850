"""Producing clicks (class and CLI) and reading recommendations back, against a real broker."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Message, Producer

from streamrec.config import Settings
from streamrec.stream.clients.consume import RecommendationFeed
from streamrec.stream.clients.producer import ClickProducer, produce_lines
from streamrec.stream.topics import ClickEvent, Recommendation, ScoredItem, Topics
from streamrec.stream.validate import ClickValidator

ROOT = Path(__file__).resolve().parents[3]
TailFactory = Callable[[Settings, str], Any]
"""conftest's `tail_topic` fixture: opens a TopicTail (records of a topic, `wait_for(done)`)."""


def clicks_read(settings: Settings, tail_topic: TailFactory, count: int) -> list[Message]:
    tail = tail_topic(settings, Topics(settings.kafka.topic_prefix).clicks)
    return tail.wait_for(lambda records: len(records) >= count)


def click(n: int, user: str | None = None) -> ClickEvent:
    return ClickEvent(event_id=f"e{n}", session_id=f"s{n % 3}", user_id=user, item_id=f"i{n}", ts=time.time())


def test_clicks_are_keyed_by_user_else_session(stream_settings: Settings, tail_topic: TailFactory) -> None:
    settings = stream_settings
    with ClickProducer.from_settings(settings) as producer:
        producer.send(click(1))
        producer.send(click(2, user="alice"))
    assert producer.sent == 2 and producer.failed == 0
    messages = clicks_read(settings, tail_topic, 2)
    keys = {ClickEvent.model_validate_json(m.value()).event_id: m.key() for m in messages}
    assert keys == {"e1": b"s1", "e2": b"alice"}


def test_invalid_lines_are_reported_with_line_numbers_and_valid_ones_produced(
    stream_settings: Settings, tail_topic: TailFactory
) -> None:
    settings = stream_settings
    lines = [
        click(1).model_dump_json(),
        "not json",
        "",
        '{"event_id": "e3", "session_id": "s", "item_id": "i"}',
        '{"event_id": "e4", "session_id": "s", "item_id": "i", "ts": 1}',
        click(5, user="bob").model_dump_json(),
    ]
    err = io.StringIO()
    producer = ClickProducer.from_settings(settings)
    report = produce_lines(lines, producer, ClickValidator(settings.validation), err)
    assert producer.flush() == 0
    assert (report.produced, report.invalid, report.blank) == (2, 3, 1)
    complaints = err.getvalue().splitlines()
    assert [c.split(":")[0] for c in complaints] == ["line 2", "line 4", "line 5"]
    assert "ts" in complaints[1] and "ts_out_of_range" in complaints[2]
    produced = clicks_read(settings, tail_topic, 2)
    assert sorted(ClickEvent.model_validate_json(m.value()).event_id for m in produced) == ["e1", "e5"]


def test_cli_produce_exits_nonzero_on_bad_lines(stream_settings: Settings, tail_topic: TailFactory) -> None:
    settings = stream_settings
    env = {**os.environ, "STREAMREC_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
           "STREAMREC_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix}
    stdin = click(7).model_dump_json() + "\n{broken\n"
    done = subprocess.run([sys.executable, "-m", "streamrec", "produce"], input=stdin, capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 1
    assert "line 2: invalid click" in done.stderr and "produced 1 clicks" in done.stderr
    [message] = clicks_read(settings, tail_topic, 1)
    assert message.key() == b"s1"


def recommendation(event_id: str, session: str = "s1") -> bytes:
    return Recommendation(session_id=session, user_id=None, event_id=event_id,
                          items=[ScoredItem(item_id="i", score=1.0)], scorer="sknn", model_version="v",
                          ts_event=1.0, ts_emitted=2.0).model_dump_json().encode()


def test_feed_decodes_skips_garbage_and_drops_redeliveries(stream_settings: Settings) -> None:
    settings = stream_settings
    topic = Topics(settings.kafka.topic_prefix).recommendations
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    for value in (recommendation("e1"), b"garbage", recommendation("e1"), recommendation("e2")):
        producer.produce(topic, key=b"s1", value=value)
    assert producer.flush(10) == 0
    stop = threading.Event()
    timer = threading.Timer(30, stop.set)  # never hang the suite
    timer.start()
    seen = []
    with RecommendationFeed.from_settings(settings, group_id=f"web{uuid.uuid4().hex[:6]}", from_beginning=True,
                                          stop=stop, config={"session.timeout.ms": 2000}) as feed:
        for rec in feed:
            seen.append(rec.event_id)
            if len(seen) == 2:
                feed.stop()
    timer.cancel()
    assert seen == ["e1", "e2"]
    assert feed.invalid == 1 and feed.duplicates == 1
