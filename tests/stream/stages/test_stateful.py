"""StatefulStep: raw record + stored state -> new state + one output record (pure; metrics in __call__)."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client import REGISTRY

from streamrec.config import Settings, load_settings
from streamrec.state.session import SessionGraph
from streamrec.state.visitor import SessionPolicy
from streamrec.stream.stages.stateful import StatefulStep, StepResult, encode_scoring_request, session_policy
from streamrec.stream.topics import ClickEvent, DeadLetter, ScoringRequest

NOW = 1_800_000_000.0


@pytest.fixture
def settings() -> Settings:
    return load_settings(kafka={"topic_prefix": "x."}, history={"max_request_items": 3},
                         session={"inactivity_gap_s": 100.0})


def raw(n: int, session: str = "s1", user: str | None = "u1", ts: float | None = None) -> tuple[bytes, bytes]:
    body = {"event_id": f"{session}-{n}", "session_id": session, "user_id": user, "item_id": f"{session}-i{n}",
            "ts": NOW - 1000 + n if ts is None else ts}
    return (user or session).encode(), orjson.dumps(body)


def run(step: StatefulStep, records: list[tuple[bytes, bytes]],
        stored: dict | None = None) -> tuple[list[StepResult], dict | None]:
    results = []
    for key, value in records:
        result = step.step(key, value, stored, NOW)
        stored = result.state if result.state is not None else stored
        results.append(result)
    return results, stored


def request_of(result: StepResult) -> ScoringRequest:
    return ScoringRequest.model_validate_json(result.output.value)


def test_valid_click_updates_state_and_asks_for_scoring(settings: Settings) -> None:
    step = StatefulStep(settings)
    results, stored = run(step, [raw(0), raw(1)])
    last = results[-1]
    assert last.output.topic == "x.streamrec.scoring-requests" and last.output.key == b"s1"
    request = request_of(last)
    assert (request.event_id, request.item_id, request.user_id) == ("s1-1", "s1-i1", "u1")
    assert request.session_items == ["s1-i0", "s1-i1"]
    assert request.session_ts == [NOW - 1000, NOW - 999]
    assert request.ts_received == NOW
    assert stored is not None and stored["s"][0]["i"] == ["s1-i0", "s1-i1"]


def test_redelivery_keeps_state_and_answers_from_the_session_as_it_was(settings: Settings) -> None:
    step = StatefulStep(settings)
    _, stored = run(step, [raw(0), raw(1), raw(2)])
    again = step.step(*raw(1), stored, NOW)
    assert again.state is None and again.duplicate
    assert request_of(again).session_items == ["s1-i0", "s1-i1"]


def test_history_sent_is_capped_to_the_newest_items(settings: Settings) -> None:
    step = StatefulStep(settings)
    old = [raw(n, session="old") for n in range(5)]
    old = [(b"u1", orjson.dumps({**orjson.loads(v), "user_id": "u1"})) for _, v in old]
    results, _ = run(step, [*old, raw(0, ts=NOW)])
    assert results[-1].sessions_closed == 1
    assert request_of(results[-1]).history_items == ["old-i2", "old-i3", "old-i4"]


def test_malformed_record_goes_to_the_dlq_and_leaves_state_alone(settings: Settings) -> None:
    step = StatefulStep(settings)
    _, stored = run(step, [raw(0)])
    result = step.step(b"u1", b"{oops", stored, NOW, partition=3, offset=7)
    assert result.state is None and result.rejection is not None
    assert result.output.topic == "x.clicks.dlq" and result.output.key == b"u1"
    letter = DeadLetter.model_validate_json(result.output.value)
    assert (letter.reason, letter.source_topic, letter.source_partition,
            letter.source_offset) == ("not_json", "x.clicks", 3, 7)


def test_recording_a_step_counts_it_in_metrics(settings: Settings) -> None:
    step = StatefulStep(settings)

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (sample("streamrec_clicks_accepted_total"), sample("streamrec_clicks_duplicate_total"),
              sample("streamrec_clicks_dead_lettered_total", reason="not_json"),
              sample("streamrec_scoring_requests_emitted_total"))
    first = step.record(step.step(*raw(0), None, NOW))
    step.record(step.step(*raw(0), first.state, NOW))
    step.record(step.step(b"u1", b"nope", None, NOW))
    after = (sample("streamrec_clicks_accepted_total"), sample("streamrec_clicks_duplicate_total"),
             sample("streamrec_clicks_dead_lettered_total", reason="not_json"),
             sample("streamrec_scoring_requests_emitted_total"))
    assert [a - b for a, b in zip(after, before)] == [1, 1, 1, 2]


def test_policy_comes_from_settings(settings: Settings) -> None:
    assert session_policy(settings) == SessionPolicy(max_length=50, inactivity_gap_s=100.0, max_open_per_visitor=8,
                                                     history_max_items=500)


def test_a_request_over_the_size_limit_drops_its_oldest_history_then_session_clicks() -> None:
    click = ClickEvent(event_id="e9", session_id="s1", item_id="i" * 100 + "9", ts=NOW)
    session = SessionGraph("s1", items=[f"{n}" + "i" * 100 for n in range(10)], ts=[NOW - 10 + n for n in range(10)],
                           event_ids=[f"e{n}" for n in range(10)])
    history = [f"h{n}-" + "x" * 100 for n in range(2000)]
    whole = encode_scoring_request(click, session, history, NOW)
    assert len(whole) > 200_000
    trimmed = ScoringRequest.model_validate_json(encode_scoring_request(click, session, history, NOW, max_bytes=50_000))
    assert len(trimmed.model_dump_json()) <= 50_000
    kept = len(trimmed.history_items)
    assert 0 < kept < len(history) and trimmed.history_items == history[-kept:]
    assert trimmed.session_items == session.items
    tiny = ScoringRequest.model_validate_json(encode_scoring_request(click, session, history, NOW, max_bytes=600))
    assert tiny.history_items == [] and tiny.session_items == session.items[-len(tiny.session_items):]
    assert tiny.session_items[-1] == session.items[-1] and len(tiny.session_items) < len(session.items)
