"""Topics get the settings every engine needs, whichever command touches them first.

Before, `streamrec produce` on a fresh deployment let the broker auto-create `clicks` without
retention settings, and every later worker start exited 1 with `KeyError: 'retention.ms'`
inside Quix Streams. Now every producing command creates the topics first, and
`ensure_topics` repairs an existing topic that lacks them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource
from traffic_helpers import make_stream, wait_event_ids

from streamrec.config import Settings
from streamrec.stream.admin import ensure_topics
from streamrec.stream.harness.demo import settings_env
from streamrec.stream.topics import Topics

REPO_ROOT = Path(__file__).resolve().parents[2]


def _retention(settings: Settings, topic: str) -> str | None:
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entry = admin.describe_configs([resource])[resource].result(timeout=10).get("retention.ms")
    return None if entry is None else entry.value


def test_cli_produce_on_fresh_topics_then_the_worker_answers(
    make_settings: Callable[..., Settings], spawn_worker: Callable, tail_topic: Callable
) -> None:
    settings = make_settings(scoring={"scorer": "pop", "top_k": 5})
    topics = Topics(settings.kafka.topic_prefix)
    stream = make_stream(users=2, anonymous=2, length=3)
    lines = "".join(orjson.dumps({k: v for k, v in c.items() if k != "n"}).decode() + "\n" for c in stream.clicks)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")} | settings_env(settings)
    done = subprocess.run([sys.executable, "-m", "streamrec", "produce"], input=lines, capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr

    worker = spawn_worker(settings)
    valid = {str(c["event_id"]) for c in stream.clicks}
    assert wait_event_ids(tail_topic(settings, topics.recommendations), valid, timeout_s=60) == valid, worker.log()
    assert worker.alive, worker.log()
    assert _retention(settings, topics.clicks) == str(settings.kafka.retention_ms)
    assert worker.terminate() == 0, worker.log()


def test_ensure_topics_repairs_an_auto_created_topic(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    clicks = Topics(settings.kafka.topic_prefix).clicks
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    producer.produce(clicks, key=b"k", value=b"{}")  # the broker auto-creates the topic, without retention
    assert producer.flush(30) == 0
    assert _retention(settings, clicks) is None

    ensure_topics(settings)
    assert _retention(settings, clicks) == str(settings.kafka.retention_ms)
