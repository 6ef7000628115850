"""The embedded broker (start, answer, stop, no orphans; the CLI verb) and idempotent topic creation."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from streamrec.config import Settings
from streamrec.stream.admin import ensure_topics
from streamrec.stream.broker import EmbeddedBroker, free_port
from streamrec.stream.topics import Topics

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_embedded_broker_answers_then_stops() -> None:
    with EmbeddedBroker() as broker:
        metadata = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(timeout=10)
        assert metadata.brokers
        assert broker.running
    assert not broker.running
    broker.stop()  # idempotent


def test_cli_prints_the_address_and_stops_cleanly_on_sigterm() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "streamrec", "broker", "--port", str(port)], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == f"streamrec broker ready: bootstrap_servers=127.0.0.1:{port}"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    with pytest.raises(ConnectionRefusedError):  # the tansu child went with it
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_ensure_topics_is_idempotent_and_sets_retention(stream_settings: Settings) -> None:
    topics = Topics(stream_settings.kafka.topic_prefix)
    assert ensure_topics(stream_settings) == []  # the fixture already created them
    admin = AdminClient({"bootstrap.servers": stream_settings.kafka.bootstrap_servers})
    described = admin.list_topics(timeout=10).topics
    assert set(topics.all) <= set(described)
    partitioned = [name for name in topics.all if name != topics.model_updates]
    assert all(len(described[name].partitions) == stream_settings.kafka.partitions for name in partitioned)
    assert len(described[topics.model_updates].partitions) == 1  # announcements stay in order
    compacted = ConfigResource(ConfigResource.Type.TOPIC, topics.model_updates)
    assert admin.describe_configs([compacted])[compacted].result(timeout=10)["cleanup.policy"].value == "compact"
    resource = ConfigResource(ConfigResource.Type.TOPIC, topics.clicks)
    config = admin.describe_configs([resource])[resource].result(timeout=10)
    assert config["retention.ms"].value == str(stream_settings.kafka.retention_ms)
