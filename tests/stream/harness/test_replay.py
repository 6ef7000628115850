"""The replay against a real broker and real workers: counts, prequential judging, DLQ, foreign traffic."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Producer

from streamrec.config import Settings
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate
from streamrec.state.clicklog.types import LoggedClick
from streamrec.stream.harness.collector import OutputCollector
from streamrec.stream.harness.demo import shadow_settings, wait_for_groups, worker_process
from streamrec.stream.harness.prequential import PhaseTally, next_items
from streamrec.stream.harness.replay import DrainPolicy, Pacing, Replayer, load_clicks, replay
from streamrec.stream.kafka import scoring_group, stateful_group
from streamrec.stream.topics import Recommendation, Topics

SMALL = SyntheticSpec(users=20, sessions=80, items=60, intents=4, days=2.0)


def _small_log() -> list[LoggedClick]:
    return sorted(generate(SMALL), key=lambda c: c.ts)


def test_load_clicks_is_in_event_time_order_and_limited() -> None:
    clicks = load_clicks(None, "synthetic", limit=500)
    assert len(clicks) == 500
    assert all(a.ts <= b.ts for a, b in zip(clicks, clicks[1:]))


def test_replay_judges_knn_and_shadow_popularity_on_the_same_stream(stream_settings: Settings, tmp_path: Path) -> None:
    log = _small_log()
    warm, main = log[: len(log) // 2], log[len(log) // 2:]
    bad = LoggedClick(session_id="bad", user_id=None, item_id="i1", ts=1.0)  # before 2000: dead-lettered
    main = main[:10] + [bad] + main[10:]
    shadow = shadow_settings(stream_settings, "pop")
    with worker_process("worker", "all", "quix", stream_settings, tmp_path) as worker, \
            worker_process("shadow", "scoring", "quix", shadow, tmp_path) as shadow_worker:
        groups = [stateful_group(stream_settings), scoring_group(stream_settings), scoring_group(shadow)]
        wait_for_groups(stream_settings, groups, [worker, shadow_worker])
        report = replay(stream_settings, main, warm=warm, drain=DrainPolicy(idle_s=30.0, scorers=2), progress=False)

    assert (report.counts.sent, report.counts.warm_sent, report.counts.dlq) == (len(main), len(warm), 1)
    by_scorer = {s.scorer: s for s in report.scorers}
    assert set(by_scorer) == {"sknn", "pop"}
    judged = sum(target is not None for target in next_items(main))
    for scorer in by_scorer.values():
        assert scorer.recommended == len(main) - 1 and scorer.missing == 0
        assert scorer.judged == judged and scorer.latency.count == len(main) - 1
        assert all(0.0 <= value <= 1.0 for value in scorer.metrics.values())
    assert by_scorer["sknn"].metrics["HR@20"] > by_scorer["pop"].metrics["HR@20"]


def test_a_replayer_judges_consecutive_runs_apart_on_connected_clients(stream_settings: Settings,
                                                                       tmp_path: Path) -> None:
    log = _small_log()
    warm, first, second = log[:100], log[100:250], log[250:330]
    with worker_process("worker", "all", "quix", stream_settings, tmp_path) as worker:
        wait_for_groups(stream_settings, [stateful_group(stream_settings), scoring_group(stream_settings)], [worker])
        with Replayer(stream_settings, drain=DrainPolicy(idle_s=30.0), progress=False) as replayer:
            replayer.warm_up(warm, "warm.tsv")
            reports = [replayer.judge(first), replayer.judge(second, pacing=Pacing(rate_eps=400.0))]

    for report, clicks in zip(reports, (first, second)):
        (sknn,) = report.scorers
        assert (report.counts.sent, report.counts.warm_sent, report.warm_dataset) == (len(clicks), len(warm),
                                                                                      "warm.tsv")
        assert sknn.recommended == len(clicks) and sknn.missing == 0 and sknn.latency.count == len(clicks)
    assert reports[1].send_duration_s >= (len(second) - 1) / 400.0


def test_collector_routes_answers_and_ignores_foreign_traffic(stream_settings: Settings) -> None:
    clicks = _small_log()[:3]
    phase = PhaseTally("run-m", clicks)
    topics = Topics(stream_settings.kafka.topic_prefix)
    producer = Producer({"bootstrap.servers": stream_settings.kafka.bootstrap_servers})

    def answer(event_id: str) -> bytes:
        return Recommendation(session_id="s", user_id=None, event_id=event_id, items=[], scorer="sknn",
                              model_version="v", ts_event=0.0, ts_emitted=0.0).model_dump_json().encode()

    with OutputCollector(stream_settings, [phase]) as collector:
        for index in range(3):
            phase.mark_sent(index, time.perf_counter())
        for value in (b"not json", answer("other-run-m0"), answer("run-m0"), answer("run-m2")):
            producer.produce(topics.recommendations, value=value)
        producer.flush(10)
        _pump_until(collector, lambda: phase.scorers and phase.scorers["sknn"].answered == 2 and collector.undecodable)

    assert phase.scorers["sknn"].answered == 2
    assert collector.undecodable == 1
    assert not phase.complete()


def _pump_until(collector: OutputCollector, done: Callable[[], object], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        collector.pump(until=time.perf_counter() + 0.2)
