"""The hot swap's follower on a real broker: a stage that lags behind a fast trainer still installs versions."""

from __future__ import annotations

import time
from pathlib import Path

from _continual import base_checkpoint
from confluent_kafka import Consumer, Producer, TopicPartition

from streamrec.config import Settings
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.online.learner import ContinualLearner
from streamrec.models.online.settings import OnlineSettings, StreamExample
from streamrec.models.serving import NeuralScorer
from streamrec.state.checkpoint_store import CheckpointStore
from streamrec.stream.topics import ModelUpdate, Topics
from streamrec.stream.updates.follower import ModelUpdates


def _versions(base: Checkpoint, count: int) -> list[Checkpoint]:
    """`count` successive learner snapshots of `base` (same lineage, different versions)."""
    learner = ContinualLearner(base, OnlineSettings(micro_batch_size=4), device="cpu")
    snapshots = []
    for n in range(count):
        learner.add([StreamExample(("a", "b"), "c", 1.0e9 + n), StreamExample(("f",), "g", 1.0e9 + n)] * 4)
        while learner.step() is not None:
            pass
        snapshots.append(learner.snapshot({}))
    return snapshots


def _announce(settings: Settings, store: CheckpointStore, checkpoint: Checkpoint, sequence: int, through: int) -> None:
    stored = store.publish(lambda path: checkpoint.save(path), {})
    update = ModelUpdate(model=checkpoint.preset, sequence=sequence, version=checkpoint.version, path=str(stored.path),
                         sha256=stored.sha256, trained_through={0: through, 1: through}, last_click_ts=None,
                         examples_trained=0, steps=0, published_at=time.time())
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    producer.produce(Topics(settings.kafka.topic_prefix).model_updates, key=checkpoint.preset.encode(),
                     value=update.model_dump_json().encode())
    producer.flush(10)


def _stage_consumer_at(settings: Settings, offset: int) -> Consumer:
    """A scoring-requests consumer that has answered up to `offset` on both partitions (12 records each)."""
    topic = Topics(settings.kafka.topic_prefix).scoring_requests
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "batch.num.messages": 1})
    for partition in (0, 1):
        for _ in range(offset + 2):
            producer.produce(topic, value=b"{}", partition=partition)
    producer.flush(10)
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "stage-under-test",
                         "enable.auto.commit": False, "fetch.wait.max.ms": settings.kafka.fetch_wait_max_ms})
    consumer.assign([TopicPartition(topic, p, offset) for p in (0, 1)])
    read = 0
    deadline = time.monotonic() + 30
    while read < 4 and time.monotonic() < deadline:
        read += sum(1 for m in consumer.consume(4, 0.5) if m.error() is None)
    return consumer


def test_a_lagging_stage_installs_the_newest_version_its_guard_allows(stream_settings: Settings,
                                                                      tmp_path: Path) -> None:
    """Version 1 trained through offset 5, version 2 through 100; the stage answered up to 12. Version 2 being
    staged must not hide version 1 (it used to replace it, and the stage served its start-up model until it
    had answered past version 2's point)."""
    base = base_checkpoint(tmp_path / "base.pt")
    first, second = _versions(base, 2)
    store = CheckpointStore(tmp_path / "store", keep=5)
    serving = NeuralScorer(base, device="cpu")
    follower = ModelUpdates(stream_settings, serving)
    try:
        _announce(stream_settings, store, first, sequence=1, through=5)
        _announce(stream_settings, store, second, sequence=2, through=100)
        deadline = time.monotonic() + 60
        while len(follower._staged) < 2 and time.monotonic() < deadline:  # both verified, neither installed yet
            time.sleep(0.2)
        consumer = _stage_consumer_at(stream_settings, 10)
        try:
            installed = follower.take_ready(serving, consumer)
            assert installed.version == first.version  # the newest version the guard allows
            assert follower.take_ready(installed, consumer) is installed  # version 2 waits for offset 100
        finally:
            consumer.close()
    finally:
        follower.close()
