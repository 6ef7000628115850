"""`streamrec serve` over real HTTP, a real broker and a real worker: lookups, click intake, restart."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import orjson
import pytest
from confluent_kafka import Producer

from streamrec.config import Settings
from streamrec.stream.admin import ensure_topics
from streamrec.stream.harness.demo import shadow_settings
from streamrec.stream.topics import Topics

if TYPE_CHECKING:
    from conftest import ApiProcess  # tests/stream/api/conftest.py

pytestmark = pytest.mark.slow


def _click(session: str, item: str, user: str | None = None) -> dict[str, object]:
    return {"event_id": f"e-{uuid.uuid4().hex[:12]}", "session_id": session, "user_id": user, "item_id": item,
            "ts": time.time(), "type": "view"}


def _poll_answer(api: ApiProcess, path: str, event_id: str, timeout_s: float = 60.0,
                 **params: str) -> tuple[dict, float]:
    """GET `path` until it answers `event_id`; the body and the seconds it took."""
    started = time.monotonic()
    body: dict = {}
    while time.monotonic() - started < timeout_s:
        response = api.client.get(path, params=params)
        if response.status_code == 200:
            body = response.json()
            if body["event_id"] == event_id:
                return body, time.monotonic() - started
        else:
            assert response.status_code == 404, response.text
        time.sleep(0.02)
    raise AssertionError(f"{path} never answered {event_id} (last body {body}):\n{api.log()[-2000:]}")


FAST_KAFKA = {"single_record_batches": False, "fetch_wait_max_ms": 10}
"""The demo's latency settings: Tansu holds each fetch for fetch_wait_max_ms, and the test defaults
(single-record batches, 500 ms waits, for exact watermarks) cost ~0.5 s per hop over three hops."""


def test_get_returns_the_recommendation_for_a_posted_click(
    make_settings: Callable[..., Settings], spawn_worker: Callable, spawn_api: Callable
) -> None:
    settings = make_settings(kafka=FAST_KAFKA)
    ensure_topics(settings)
    worker = spawn_worker(settings)
    shadow = spawn_worker(shadow_settings(settings, "pop"), role="scoring")
    api = spawn_api(settings)
    api.wait_healthy()
    assert api.client.get("/sessions/nobody/recommendations").status_code == 404
    slashed = _click("web/s-1", "i1")  # ids are free-form strings: a "/" (sent as %2F or not) still routes
    assert api.client.post("/clicks", content=orjson.dumps(slashed)).status_code == 202
    assert _poll_answer(api, "/sessions/web%2Fs-1/recommendations", slashed["event_id"])[0]["session_id"] == "web/s-1"

    # A few clicks so the kNN has co-occurrences; the last one is the one we time.
    latencies = []
    for item in ["i1", "i2", "i3", "i1", "i2"]:
        click = _click("s-http", item, user="u-http")
        posted = api.client.post("/clicks", content=orjson.dumps(click))
        assert posted.status_code == 202, posted.text
        assert posted.json()["event_id"] == click["event_id"]
        body, waited_s = _poll_answer(api, "/sessions/s-http/recommendations", click["event_id"])
        latencies.append(waited_s)
    print(f"POST /clicks -> GET shows its recommendation: {', '.join(f'{s * 1000:.0f} ms' for s in latencies)}")
    warm = sorted(latencies[1:])  # the first click also waits for the stages' first fetches
    assert warm[len(warm) // 2] < 1.0, (f"median POST -> GET {warm[len(warm) // 2]:.2f} s after warm-up "
                                        "(the target: within a second)")
    assert worker.alive and shadow.alive

    assert body["session_id"] == "s-http" and body["user_id"] == "u-http"
    assert body["scorer"] == settings.scoring.scorer and body["model_version"]
    assert isinstance(body["items"], list)
    user_body, _ = _poll_answer(api, "/users/u-http/recommendations", click["event_id"])
    assert user_body["session_id"] == "s-http"

    # The shadow's answers to the same clicks are kept apart, under their scorer.
    shadow_body, _ = _poll_answer(api, "/sessions/s-http/recommendations", click["event_id"], scorer="pop")
    assert shadow_body["scorer"] == "pop"
    again = api.client.get("/sessions/s-http/recommendations").json()
    assert again["scorer"] == settings.scoring.scorer
    missing = api.client.get("/sessions/s-http/recommendations", params={"scorer": "nope"})
    assert missing.status_code == 404 and sorted(missing.json()["scorers"]) == sorted({"pop", settings.scoring.scorer})

    health = api.client.get("/healthz").json()
    assert health["broker_reachable"] and health["consumer_assigned"]
    exposition = api.client.get("/metrics").text
    assert "streamrec_api_clicks_posted_total 6.0" in exposition
    assert 'streamrec_api_model_info{model_version=' in exposition
    assert ('streamrec_api_http_requests_total{route="/sessions/{session_id:path}/recommendations",status="200"}'
            in exposition)
    assert api.client.get("/openapi.json").json()["paths"]["/clicks"]["post"]["requestBody"]


BAD_BODIES: dict[str, bytes] = {
    "empty_payload": b"",
    "not_json": b"{not json",
    "not_utf8": b'{"event_id": "\xff\xfe"}',
    "not_an_object": b'["e1", "s1"]',
    "missing_field": orjson.dumps({"event_id": "e1", "session_id": "s1", "ts": 1.7e9}),
    "unknown_field": orjson.dumps({**_click("s1", "i1"), "price": 3}),
    "wrong_type": orjson.dumps({**_click("s1", "i1"), "ts": "yesterday"}),
    "empty_id": orjson.dumps({**_click("s1", "i1"), "item_id": "  "}),
    "id_too_long": orjson.dumps({**_click("s1", "i1"), "session_id": "s" * 500}),
    "ts_out_of_range": orjson.dumps({**_click("s1", "i1"), "ts": 12.0}),
    "unknown_click_type": orjson.dumps({**_click("s1", "i1"), "type": "hover"}),
    "non_finite_number": b'{"event_id":"e1","session_id":"s1","item_id":"i1","ts":NaN}',
    "oversized_payload": b'{"event_id": "' + b"e" * 1_000_000 + b'"}',
}


def test_bad_clicks_get_422_with_the_reason_and_never_reach_the_topic(
    stream_settings: Settings, spawn_api: Callable, tail_topic: Callable
) -> None:
    api = spawn_api(stream_settings)
    api.wait_healthy()
    for reason, body in BAD_BODIES.items():
        response = api.client.post("/clicks", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, (reason, response.text)
        assert response.json()["reason"] == reason, (reason, response.json())
        assert response.json()["detail"]

    sentinel = _click("s-sentinel", "i1")
    assert api.client.post("/clicks", content=orjson.dumps(sentinel)).status_code == 202
    tail = tail_topic(stream_settings, Topics(stream_settings.kafka.topic_prefix).clicks)
    records = tail.wait_for(lambda got: any(orjson.loads(m.value())["event_id"] == sentinel["event_id"] for m in got))
    time.sleep(1.0)
    records = tail.wait_for(lambda got: False, timeout_s=1.0)
    assert [orjson.loads(m.value()) for m in records] == [sentinel]
    assert [m.key() for m in records] == [b"s-sentinel"]
    exposition = api.client.get("/metrics").text
    for reason in BAD_BODIES:
        assert f'streamrec_api_clicks_refused_total{{reason="{reason}"}} 1.0' in exposition


def _recommendation(session: str, event: str, ts_event: float, scorer: str = "sknn") -> bytes:
    return orjson.dumps({"session_id": session, "user_id": None, "event_id": event,
                         "items": [{"item_id": "i9", "score": 1.0}], "scorer": scorer, "model_version": "v1",
                         "ts_event": ts_event, "ts_emitted": ts_event + 0.01})


def _seen_total(api: ApiProcess) -> float:
    for line in api.client.get("/metrics").text.splitlines():
        if line.startswith('streamrec_api_recommendations_seen_total{scorer="sknn"}'):
            return float(line.split()[-1])
    return 0.0


def test_a_restarted_instance_resumes_from_its_store(stream_settings: Settings, spawn_api: Callable) -> None:
    topic = Topics(stream_settings.kafka.topic_prefix).recommendations
    producer = Producer({"bootstrap.servers": stream_settings.kafka.bootstrap_servers, "batch.num.messages": 1})
    producer.produce(topic, key=b"a", value=_recommendation("a", "a1", 100.0))
    producer.produce(topic, key=b"b", value=_recommendation("b", "b1", 100.0))
    producer.produce(topic, key=b"x", value=b"not a recommendation")  # skipped, counted, never stops the feed
    producer.flush(10)

    first = spawn_api(stream_settings)
    first.wait_healthy()
    _poll_answer(first, "/sessions/a/recommendations", "a1")
    _poll_answer(first, "/sessions/b/recommendations", "b1")
    assert _seen_total(first) == 2
    assert "streamrec_api_recommendations_invalid_total 1.0" in first.client.get("/metrics").text
    time.sleep(1.5)  # let the store's batch with the invalid record's offset land
    first.kill()

    producer.produce(topic, key=b"a", value=_recommendation("a", "a2", 200.0))
    producer.produce(topic, key=b"b", value=_recommendation("b", "b0", 50.0))  # older than b1: must not win
    producer.flush(10)
    second = spawn_api(stream_settings, port=first.port)
    second.wait_healthy()
    assert second.client.get("/sessions/b/recommendations").json()["event_id"] == "b1"  # from the store at once
    _poll_answer(second, "/sessions/a/recommendations", "a2")
    deadline = time.monotonic() + 30
    while _seen_total(second) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    assert _seen_total(second) == 2  # only the two new records: resumed, not re-read from the beginning
    assert second.client.get("/sessions/b/recommendations").json()["event_id"] == "b1"
    with pytest.raises(httpx.HTTPStatusError):
        second.client.get("/sessions/zzz/recommendations").raise_for_status()
