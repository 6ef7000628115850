"""Scale-out: scoring processes of one group each learn the whole stream, and agree.

Real broker, real `streamrec worker --role scoring` processes with their own state folders (as on two
hosts). One scenario:

1. worker A alone answers a first part of the stream and commits it;
2. worker B joins the group: before it answers anything it has learned what the group committed, so
   no answer (of either) comes from statistics holding less than that first part;
3. a second part is answered by both (each its partitions);
4. once each reports (streamrec_scorer_info) that it learned every request, both stop and their
   persisted statistics are the same: every partition, not only the ones each answered.

Without the learning reader (`scoring.learn_whole_stream=false`) step 4 fails: each holds about half.
The policy keeps rows below `sknn_neighbours` entries and has no decay, so the statistics do not
depend on the order in which a process interleaved the partitions (see docs/architecture.md).
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable

import pytest
from confluent_kafka import Producer
from traffic_helpers import first_answers

from streamrec.config import Settings
from streamrec.models.registry import build_sknn
from streamrec.state.cooccurrence import CooccurrenceStats
from streamrec.stream.admin import ensure_topics
from streamrec.stream.broker import free_port
from streamrec.stream.topics import ScoringRequest, Topics

FIRST_SESSIONS, SECOND_SESSIONS, LENGTH = 30, 30, 6


def requests(prefix: str, sessions: int) -> list[ScoringRequest]:
    """Every prefix of `sessions` sessions over 30 items, interleaved click by click."""
    out = []
    for n in range(LENGTH):
        for s in range(sessions):
            items = [f"i{(5 * s + 3 * k) % 30}" for k in range(n + 1)]
            out.append(ScoringRequest(event_id=f"{prefix}{s}-{n}", session_id=f"{prefix}{s}", user_id=None,
                                      item_id=items[-1], ts_event=1.7e9 + n, ts_received=1.7e9 + n, session_items=items,
                                      session_ts=[1.7e9 + k for k in range(n + 1)]))
    return out


def produce(settings: Settings, batch: list[ScoringRequest]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "batch.num.messages": 1})
    for request in batch:
        producer.produce(Topics(settings.kafka.topic_prefix).scoring_requests, key=request.session_id.encode(),
                         value=request.model_dump_json().encode())
    assert producer.flush(30) == 0


def learned_count(version: str) -> int:
    return int(version.rsplit("-c", 1)[1])


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


def reported_learned(port: int) -> int | None:
    match = re.search(r'streamrec_scorer_info\{[^}]*model_version="sknn-[^"]*-c(\d+)"', scrape(port))
    return int(match.group(1)) if match else None


def answers_emitted(port: int) -> float:
    match = re.search(r"^streamrec_recommendations_emitted_total (\S+)$", scrape(port), re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.3)
    return condition()


def open_stats(settings: Settings) -> CooccurrenceStats:
    """The persisted statistics of the instance, as its scoring stage opens them."""
    return build_sknn(settings).stats


def instance(settings: Settings, name: str) -> Settings:
    """The same deployment as another host would run it: its own state folder and metrics port."""
    state = settings.state.model_copy(update={"dir": settings.state.dir.parent / f"{settings.state.dir.name}-{name}"})
    return settings.model_copy(update={"state": state, "metrics_port": free_port()})


@pytest.mark.slow
def test_a_joining_instance_catches_up_and_two_instances_hold_the_same_statistics(
        make_settings: Callable[..., Settings], spawn_worker: Callable, tail_topic: Callable) -> None:
    base = make_settings(scoring={"scorer": "sknn", "top_k": 5, "sknn_neighbours": 200, "commit_interval_ms": 200})
    ensure_topics(base)
    a, b = instance(base, "a"), instance(base, "b")
    tail = tail_topic(base, Topics(base.kafka.topic_prefix).recommendations)
    first, second = requests("f", FIRST_SESSIONS), requests("s", SECOND_SESSIONS)

    worker_a = spawn_worker(a, role="scoring")
    produce(base, first)
    done = tail.wait_for(lambda r: {q.event_id for q in first} <= set(first_answers(r)), timeout_s=120)
    assert {q.event_id for q in first} <= set(first_answers(done)), worker_a.log()[-3000:]
    assert wait(lambda: reported_learned(a.metrics_port) == len(first), 60), worker_a.log()[-3000:]

    worker_b = spawn_worker(b, role="scoring")
    # B has joined once A gave up a partition (A's reader then learns it); A keeps answering meanwhile
    assert wait(lambda: re.search(r"answering \S+ partitions \[\d", worker_b.log()) is not None,
                120), worker_b.log()[-3000:]
    produce(base, second)
    done = tail.wait_for(lambda r: {q.event_id for q in second} <= set(first_answers(r)), timeout_s=120)
    answered = first_answers(done)
    assert {q.event_id for q in second} <= set(answered), worker_b.log()[-3000:]
    assert min(learned_count(answered[q.event_id].model_version) for q in second) >= len(first)
    assert answers_emitted(b.metrics_port) > 0, "B never answered: the scenario did not scale out"
    assert answers_emitted(a.metrics_port) > 0

    total = len(first) + len(second)
    for settings, worker in ((a, worker_a), (b, worker_b)):
        assert wait(lambda port=settings.metrics_port: reported_learned(port) == total, 60), worker.log()[-3000:]
    assert worker_a.terminate() == 0 and worker_b.terminate() == 0

    stats_a, stats_b = open_stats(a), open_stats(b)
    try:
        assert stats_a.clicks == stats_b.clicks == total
        assert dict(stats_a.popularities) == pytest.approx(dict(stats_b.popularities), rel=1e-9)
        items = set(stats_a.popularities)
        for item in items:
            assert stats_a.neighbours(item) == pytest.approx(stats_b.neighbours(item), rel=1e-9), item
        topic = Topics(base.kafka.topic_prefix).scoring_requests
        for partition in range(base.kafka.partitions):
            source = f"{topic}:{partition}"
            assert stats_a.learned.watermark(source) == stats_b.learned.watermark(source) is not None
    finally:
        stats_a.close()
        stats_b.close()
