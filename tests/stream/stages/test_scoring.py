"""The scoring stage against a real broker: one answer per request, DLQ, at least once, scorer failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from confluent_kafka import KafkaError, Producer

from streamrec.config import Settings, load_settings
from streamrec.models.popularity import popularity
from streamrec.models.registry import build_scorer
from streamrec.models.scorer import Query, Ranked
from streamrec.stream.admin import ensure_topics
from streamrec.stream.stages.scoring import INVALID_REQUEST, ScoringStage, history_supply_warning, run_scoring_stage
from streamrec.stream.topics import DeadLetter, Recommendation, ScoringRequest, Topics

TailFactory = Callable[[Settings, str], Any]
"""conftest's `tail_topic` fixture: opens a TopicTail (records of a topic, `wait_for(done)`)."""


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    loaded = make_settings(scoring={"scorer": "sknn", "batch_max_wait_ms": 20, "top_k": 5})
    ensure_topics(loaded)
    return loaded


def request(session: str, items: Sequence[str], n: int) -> ScoringRequest:
    return ScoringRequest(
        event_id=f"{session}-e{n}", session_id=session, user_id=None, item_id=items[-1], ts_event=1.7e9 + n,
        ts_received=1.7e9 + n, session_items=list(items), session_ts=[1.7e9 + i for i in range(len(items))],
    )


def sessions_requests(prefix: str, n_sessions: int = 6) -> list[ScoringRequest]:
    """Every prefix of a few short sessions, as the stateful stage would send them."""
    out = []
    for s in range(n_sessions):
        items = [f"item{(s + i) % 5}" for i in range(4)]
        out += [request(f"{prefix}{s}", items[: i + 1], i) for i in range(len(items))]
    return out


def produce(settings: Settings, records: Sequence[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    for key, value in records:
        producer.produce(Topics(settings.kafka.topic_prefix).scoring_requests, key=key, value=value)
    assert producer.flush(10) == 0


def produce_requests(settings: Settings, requests: Sequence[ScoringRequest]) -> None:
    produce(settings, [(r.session_id.encode(), r.model_dump_json().encode()) for r in requests])


def answers(tail: Any, event_ids: set[str], min_count: int = 0) -> list[Recommendation]:
    """Recommendations read so far, once they cover `event_ids` (and number at least `min_count`)."""
    decode = lambda records: [Recommendation.model_validate_json(m.value()) for m in records]  # noqa: E731
    return decode(tail.wait_for(lambda rs: len(rs) >= min_count and event_ids <= {r.event_id for r in decode(rs)}))


class running:
    """Run a scoring stage in a thread for the duration of a `with` block."""

    def __init__(self, target: Callable[[threading.Event], None]) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=target, args=(self.stop,), daemon=True)

    def __enter__(self) -> running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def test_one_recommendation_per_request_stamped_with_the_scorer(settings: Settings, tail_topic: TailFactory) -> None:
    requests = sessions_requests("s")
    produce_requests(settings, requests)
    tail = tail_topic(settings, Topics(settings.kafka.topic_prefix).recommendations)
    with running(lambda stop: run_scoring_stage(settings, stop)):
        recs = answers(tail, {r.event_id for r in requests})
    by_event = {r.event_id: r for r in recs}
    assert set(by_event) == {r.event_id for r in requests}
    assert len(recs) == len(requests)  # nothing answered twice in a clean run
    for req in requests:
        rec = by_event[req.event_id]
        assert rec.session_id == req.session_id and rec.ts_event == req.ts_event
        assert rec.scorer == "sknn" and rec.model_version.startswith("sknn-")
        assert rec.ts_emitted >= rec.ts_event
    # The stamp names the statistics that answered ("sknn-<params>-c<clicks learned>"): the first
    # batch's had learned its own clicks, at most one per session (a session's later clicks wait).
    assert 1 <= min(int(r.model_version.rsplit("-c", 1)[1]) for r in recs) <= len({r.session_id for r in requests})

    # Every click was learned: the same sessions asked again, under new event ids, are now answered
    # from co-occurrence statistics.
    again = sessions_requests("t")
    produce_requests(settings, again)
    with running(lambda stop: run_scoring_stage(settings, stop)):
        recs_again = answers(tail, {r.event_id for r in again})
    assert all(rec.items for rec in recs_again if rec.event_id in {r.event_id for r in again})


def test_an_answer_sees_its_own_click_but_never_the_click_it_is_judged_on(
    make_settings: Callable[..., Settings], tail_topic: TailFactory,
) -> None:
    """Prequential honesty within a batch, as a replay faster than people click fills one.

    One partition holds click x1 of a session, its next click x2, and the first click ever on an item
    in another session; they are fetched into one batch. The answer to x1 is judged on x2: it must not
    offer it (a later click of a session with an earlier request in the batch is learned only after
    answering). The new item's click was known when the batch was answered: its answer offers it back.
    """
    settings = make_settings(scoring={"scorer": "sknn", "batch_max_wait_ms": 200, "top_k": 5})
    ensure_topics(settings)
    first, second = request("solo", ["x1"], 1), request("solo", ["x1", "x2"], 2)
    fresh = request("other", ["brandnew"], 3)
    produce(settings, [(b"one-partition", r.model_dump_json().encode()) for r in (first, second, fresh)])
    tail = tail_topic(settings, Topics(settings.kafka.topic_prefix).recommendations)
    with running(lambda stop: run_scoring_stage(settings, stop)):
        recs = {r.event_id: r for r in answers(tail, {first.event_id, second.event_id, fresh.event_id})}
    assert "x2" not in [i.item_id for i in recs[first.event_id].items]
    assert "brandnew" in [i.item_id for i in recs[fresh.event_id].items]


def test_undecodable_requests_are_dead_lettered_and_the_rest_answered(settings: Settings,
                                                                      tail_topic: TailFactory) -> None:
    good = sessions_requests("ok", n_sessions=1)
    bad = [(b"k1", b"\xff not json"), (b"k2", b'{"event_id": "x"}'), (b"k3", b"")]
    produce(settings, bad)
    produce_requests(settings, good)
    topics = Topics(settings.kafka.topic_prefix)
    recommendations, dlq = tail_topic(settings, topics.recommendations), tail_topic(settings, topics.dlq)
    with running(lambda stop: run_scoring_stage(settings, stop)):
        recs = answers(recommendations, {r.event_id for r in good})
        letters = [DeadLetter.model_validate_json(m.value()) for m in dlq.wait_for(lambda rs: len(rs) >= 3)]
    assert {r.event_id for r in recs} == {r.event_id for r in good}
    assert len(letters) == 3 and {letter.reason for letter in letters} == {INVALID_REQUEST}
    assert {letter.source_topic for letter in letters} == {Topics(settings.kafka.topic_prefix).scoring_requests}
    assert all(letter.source_offset is not None and letter.detail for letter in letters)


class _NoCommitStage(ScoringStage):
    """Produces its answers but dies before committing, like a crash between the two."""

    def _commit(self) -> None:
        return None


def test_at_least_once_across_a_crash_before_commit_and_a_clean_restart(settings: Settings,
                                                                        tail_topic: TailFactory) -> None:
    first, second = sessions_requests("a"), sessions_requests("b")
    produce_requests(settings, first)
    tail = tail_topic(settings, Topics(settings.kafka.topic_prefix).recommendations)
    crashed = _NoCommitStage(settings, popularity(), popularity())
    with running(crashed.run):
        answers(tail, {r.event_id for r in first})
    produce_requests(settings, second)
    # the restarted stage gets the uncommitted first batch again, and the new one
    with running(lambda stop: run_scoring_stage(settings, stop)):
        recs = answers(tail, {r.event_id for r in first + second}, min_count=2 * len(first) + len(second))
    counts: dict[str, int] = {}
    for rec in recs:
        counts[rec.event_id] = counts.get(rec.event_id, 0) + 1
    assert all(counts[r.event_id] == 2 for r in first)
    assert all(counts[r.event_id] >= 1 for r in second)
    # everything is committed now: a third run answers nothing again
    produce_requests(settings, [request("late", ["item1"], 0)])
    with running(lambda stop: run_scoring_stage(settings, stop)):
        recs = answers(tail, {"late-e0"})
        time.sleep(1.0)  # room for a wrongly redelivered batch to show up before we count
        recs = answers(tail, {"late-e0"})
    assert sum(1 for rec in recs if rec.event_id == "late-e0") == 1
    assert len(recs) == sum(counts.values()) + 1


class _BrokenScorer:
    """A scorer whose model call always raises (a bug, a lost GPU)."""

    name = "broken"
    version = "broken-1"

    def recommend(self, queries: Sequence[Query], k: int) -> list[Ranked]:
        raise RuntimeError("model exploded")

    def observe(self, sessions: Sequence[Sequence[str]]) -> None:
        raise RuntimeError("cannot learn either")


def test_a_failing_scorer_is_replaced_by_the_fallback_and_no_click_is_lost(settings: Settings,
                                                                           tail_topic: TailFactory) -> None:
    requests = sessions_requests("f", n_sessions=2)
    produce_requests(settings, requests)
    tail = tail_topic(settings, Topics(settings.kafka.topic_prefix).recommendations)
    stage = ScoringStage(settings, _BrokenScorer(), popularity())
    with running(stage.run):
        recs = answers(tail, {r.event_id for r in requests})
    assert {r.event_id for r in recs} == {r.event_id for r in requests}
    assert {r.scorer for r in recs} == {"pop"}


def test_a_scorer_that_reads_history_is_warned_about_when_requests_carry_none() -> None:
    class WithMemory:  # stands for a GLAD memory preset: the only thing that matters here is the declaration
        name, version, reads_history = "glad", "v", True

    knn = build_scorer(load_settings(), persist=False)
    assert history_supply_warning(knn, load_settings()) is None  # the kNN reads no history
    warning = history_supply_warning(WithMemory(), load_settings())  # type: ignore[arg-type]
    assert warning is not None and "max_request_items" in warning
    assert history_supply_warning(WithMemory(), load_settings(history={"max_request_items": 200})) is None  # type: ignore[arg-type]


def test_a_dead_letter_the_broker_refuses_as_too_large_is_retried_without_its_original_bytes() -> None:
    """A broker whose message.max.bytes is below ours refuses even a bounded dead letter (Tansu has no such
    limit, so the refusal is handed to the stage as the broker would report it)."""
    settings = load_settings(kafka={"bootstrap_servers": "127.0.0.1:1", "topic_prefix": "x."})
    stage = ScoringStage(settings, popularity(), popularity())
    try:
        letter = DeadLetter(reason="invalid_scoring_request", detail="bad", original_b64="eA==", ts_dead=1.0,
                            original_size=1, original_sha256="h")
        refused = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Broker: Message size too large")
        retried = stage._retry_value("x.clicks.dlq", letter.model_dump_json().encode(), refused)
        again = DeadLetter.model_validate_json(retried)
        assert again.original_b64 == "" and again.truncated and again.original_sha256 == "h"
        assert "too large" in again.detail
        other = KafkaError(KafkaError._MSG_TIMED_OUT)
        assert stage._retry_value("x.clicks.dlq", b"same", other) == b"same"
        assert stage._retry_value("x.recommendations", b"same", refused) == b"same"
    finally:
        stage._consumer.close()
