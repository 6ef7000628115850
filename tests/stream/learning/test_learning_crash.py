"""The scoring statistics across crashes: every valid click learned exactly once (real broker, real workers).

The count of clicks the kNN has learned is read from the recommendations themselves: a
model_version `sknn-<params>-c<clicks>` names the statistics that answered, which learned the
answered click itself first, so the answer to a probe click sent once everything else was
answered carries the number of clicks learned before it, plus one. That number must equal the
number of distinct valid clicks sent:

- SIGKILL of the whole worker under load: the scoring stage re-reads what it had not committed
  and the stateful stage re-emits what it had not committed (same event_ids, new offsets);
  neither may be learned twice;
- SIGKILL, then the local state folder deleted: the statistics are re-learned from the
  scoring-requests topic before serving, so nothing learned is lost either.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from traffic_helpers import first_answers

from streamrec.config import Settings
from streamrec.stream.admin import ensure_topics
from streamrec.stream.kafka import scoring_group, stateful_group
from streamrec.stream.topics import Recommendation, Topics

SESSIONS = 120
CLICKS_PER_SESSION = 15


def clicks(prefix: str, sessions: int, length: int) -> list[dict[str, object]]:
    """Anonymous sessions walking overlapping item ranges, interleaved click by click (a live mix)."""
    now = time.time() - 120
    return [
        {"event_id": f"{prefix}{s}-{n}", "session_id": f"{prefix}{s}", "user_id": None,
         "item_id": f"i{(7 * s + n) % 97}", "ts": now + n, "type": "view"}
        for n in range(length) for s in range(sessions)
    ]


def produce(settings: Settings, batch: list[dict[str, object]], chunk: int = 0, pause_s: float = 0.0) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "batch.num.messages": 1,
                         "linger.ms": 5})
    topic = Topics(settings.kafka.topic_prefix).clicks
    for position, click in enumerate(batch, start=1):
        producer.produce(topic, key=str(click["session_id"]).encode(), value=orjson.dumps(click))
        if chunk and position % chunk == 0:
            producer.flush()
            time.sleep(pause_s)
    assert producer.flush(30) == 0


def wait_committed(settings: Settings, group: str, topic: str, at_least: int, timeout_s: float = 60.0) -> int:
    """Wait until `group` has committed offsets past `at_least` records of `topic` (all partitions together)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": group})
    partitions = [TopicPartition(topic, p) for p in range(settings.kafka.partitions)]
    deadline, committed = time.monotonic() + timeout_s, 0
    try:
        while committed < at_least and time.monotonic() < deadline:
            committed = sum(max(tp.offset, 0) for tp in consumer.committed(partitions, timeout=10))
            time.sleep(0.2)
    finally:
        consumer.close()
    return committed


def learned_clicks(recommendation: Recommendation) -> int:
    assert recommendation.model_version.startswith("sknn-"), recommendation.model_version
    return int(recommendation.model_version.rsplit("-c", 1)[1])


def run_crash(settings: Settings, spawn_worker: Callable, tail_topic: Callable,
              delete_state: bool) -> tuple[int, int, str]:
    """Stream clicks, SIGKILL the worker mid-stream (optionally deleting state.dir), finish; (learned, sent, log)."""
    ensure_topics(settings)
    sent = clicks("s", SESSIONS, CLICKS_PER_SESSION)
    first, second = sent[: len(sent) // 3], sent[len(sent) // 3 :]
    tail = tail_topic(settings, Topics(settings.kafka.topic_prefix).recommendations)
    worker = spawn_worker(settings)
    produce(settings, first)
    tail.wait_for(lambda r: len(first_answers(r)) >= len(first), timeout_s=120)
    # Both stages commit the first phase before the crash: the stateful stage will not re-emit it,
    # so with the state folder deleted only the statistics' own recovery can bring it back.
    topics = Topics(settings.kafka.topic_prefix)
    assert wait_committed(settings, stateful_group(settings), topics.clicks, len(first)) >= len(first), worker.log()
    committed = wait_committed(settings, scoring_group(settings), topics.scoring_requests, len(first))
    assert committed >= len(first), worker.log()
    feeder = threading.Thread(target=produce, args=(settings, second), kwargs={"chunk": 40, "pause_s": 0.05})
    feeder.start()
    tail.wait_for(lambda r: len(first_answers(r)) >= len(first) + len(second) // 3, timeout_s=120)
    worker.kill()  # the whole process group, under load: both stages die between commits
    feeder.join()
    if delete_state:
        shutil.rmtree(settings.state.dir)
    worker = spawn_worker(settings)
    wanted = {str(c["event_id"]) for c in sent}
    records = tail.wait_for(lambda r: wanted <= set(first_answers(r)), timeout_s=180)
    assert wanted <= set(first_answers(records)), worker.log()
    time.sleep(2.0)  # let re-emitted duplicates, if any, be answered (and learned or not) before the probe
    probe = clicks("probe", 1, 1)
    produce(settings, probe)
    records = tail.wait_for(lambda r: "probe0-0" in first_answers(r), timeout_s=60)
    assert "probe0-0" in first_answers(records), worker.log()
    log = worker.log()
    assert worker.terminate() == 0, log
    # the probe's answer is stamped with statistics that learned its own click first (stages/scoring.py)
    return learned_clicks(first_answers(records)["probe0-0"]) - 1, len(wanted), log


@pytest.mark.slow
def test_a_killed_worker_learns_no_click_twice(make_settings: Callable[..., Settings], spawn_worker: Callable,
                                               tail_topic: Callable) -> None:
    settings = make_settings(scoring={"scorer": "sknn", "top_k": 5})
    learned, sent, log = run_crash(settings, spawn_worker, tail_topic, delete_state=False)
    assert learned == sent, log[-3000:]


@pytest.mark.slow
def test_a_lost_state_folder_is_relearned_from_the_stream(make_settings: Callable[..., Settings],
                                                           spawn_worker: Callable, tail_topic: Callable) -> None:
    settings = make_settings(scoring={"scorer": "sknn", "top_k": 5})
    learned, sent, log = run_crash(settings, spawn_worker, tail_topic, delete_state=True)
    assert learned == sent, log[-3000:]
