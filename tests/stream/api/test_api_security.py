"""`streamrec serve`'s write key (api.write_api_key) and CORS allow-list (api.cors_allow_origins), over real HTTP.

A real `streamrec serve` subprocess on the session's real broker, configured only by STREAMREC_*
variables as a deployment would be; requests go through httpx, as a browser's would arrive.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import orjson
import pytest

from streamrec.config import Settings
from streamrec.stream.admin import ensure_topics
from streamrec.stream.topics import Topics

if TYPE_CHECKING:
    from conftest import ApiProcess  # tests/stream/api/conftest.py

pytestmark = pytest.mark.slow

KEY = "k3y-" + "0123456789abcdef"
WRONG_KEY = KEY[:-1] + "0"  # same length, last character differs
SHOP = "https://shop.example.com"
OTHER = "https://elsewhere.example.org"
ALLOW_ORIGIN = "access-control-allow-origin"


def _click(session: str) -> bytes:
    return orjson.dumps({"event_id": f"e-{uuid.uuid4().hex[:12]}", "session_id": session, "item_id": "i1",
                         "ts": time.time(), "type": "view"})


def _post(api: ApiProcess, body: bytes, **headers: str) -> httpx.Response:
    return api.client.post("/clicks", content=body, headers={"content-type": "application/json", **headers})


def _preflight(api: ApiProcess, origin: str) -> httpx.Response:
    return api.client.options("/clicks", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers": "content-type,x-api-key"})


def _assert_one_line_401(response: httpx.Response, says: str) -> None:
    assert response.status_code == 401, response.text
    assert "\n" not in response.text and list(response.json()) == ["detail"], response.text
    assert says in response.json()["detail"], response.text


def test_the_write_key_guards_post_clicks_only_and_cors_answers_allowed_origins_only(
    make_settings: Callable[..., Settings], spawn_api: Callable, tail_topic: Callable
) -> None:
    settings = make_settings(api={"write_api_key": KEY, "cors_allow_origins": [SHOP]})
    ensure_topics(settings)
    api: ApiProcess = spawn_api(settings)
    api.wait_healthy()

    refused = {
        "no key": _post(api, without_key := _click("s-key")),
        "wrong key": _post(api, wrong := _click("s-key"), **{"X-API-Key": WRONG_KEY}),
        "key as a bearer token": _post(api, bearer := _click("s-key"), Authorization=f"Bearer {KEY}"),
    }
    _assert_one_line_401(refused["no key"], "X-API-Key")
    _assert_one_line_401(refused["wrong key"], "wrong X-API-Key")
    _assert_one_line_401(refused["key as a bearer token"], "X-API-Key")
    accepted = _post(api, good := _click("s-key"), **{"X-API-Key": KEY})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["event_id"] == orjson.loads(good)["event_id"]

    # Same session, so same partition: a refused click produced would sit before the accepted one.
    tail = tail_topic(settings, Topics(settings.kafka.topic_prefix).clicks)
    records = tail.wait_for(lambda got: any(m.value() == good for m in got))
    assert [m.value() for m in records] == [good], [without_key, wrong, bearer]

    # Read routes stay open.
    assert api.client.get("/sessions/nobody/recommendations").status_code == 404
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/metrics").status_code == 200

    # CORS: an allowed origin gets the header on every answer (a 401 included, so the page can read why) ...
    assert _post(api, _click("s-cors"), Origin=SHOP, **{"X-API-Key": KEY}).headers.get(ALLOW_ORIGIN) == SHOP
    refused_from_shop = _post(api, _click("s-cors"), Origin=SHOP)
    _assert_one_line_401(refused_from_shop, "X-API-Key")
    assert refused_from_shop.headers.get(ALLOW_ORIGIN) == SHOP
    assert api.client.get("/healthz", headers={"Origin": SHOP}).headers.get(ALLOW_ORIGIN) == SHOP
    preflight = _preflight(api, SHOP)
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers.get(ALLOW_ORIGIN) == SHOP
    assert "POST" in preflight.headers["access-control-allow-methods"].split(", ")
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower().split(", ")
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower().split(", ")

    # ... another origin gets none, on a simple request or a preflight.
    assert ALLOW_ORIGIN not in api.client.get("/healthz", headers={"Origin": OTHER}).headers
    assert ALLOW_ORIGIN not in _post(api, _click("s-cors"), Origin=OTHER, **{"X-API-Key": KEY}).headers
    refused_preflight = _preflight(api, OTHER)
    assert refused_preflight.status_code != 200 and ALLOW_ORIGIN not in refused_preflight.headers


def test_without_the_settings_post_clicks_is_open_and_no_answer_carries_cors_headers(
    stream_settings: Settings, spawn_api: Callable
) -> None:
    assert stream_settings.api.write_api_key is None and stream_settings.api.cors_allow_origins == []
    api: ApiProcess = spawn_api(stream_settings)
    api.wait_healthy()
    posted = _post(api, _click("s-open"), Origin=SHOP)
    assert posted.status_code == 202, posted.text
    assert ALLOW_ORIGIN not in posted.headers
    assert ALLOW_ORIGIN not in api.client.get("/healthz", headers={"Origin": SHOP}).headers
    preflight = _preflight(api, SHOP)
    assert preflight.status_code == 405 and ALLOW_ORIGIN not in preflight.headers
