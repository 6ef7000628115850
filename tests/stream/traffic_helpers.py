"""Synthetic click traffic for end-to-end tests of a worker: sessions, producing them, waiting for their event ids."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from confluent_kafka import Message, Producer

from streamrec.config import Settings
from streamrec.stream.topics import Recommendation, Topics

GAP_S = 1800.0


@dataclass(frozen=True)
class Stream:
    """Synthetic traffic: each known user has an old (closed) session then a live one; anonymous sessions."""

    clicks: list[dict[str, object]]

    def phase(self, lo: int, hi: int) -> list[dict[str, object]]:
        """Clicks whose position inside their session is in [lo, hi), interleaved across sessions."""
        return [c for c in self.clicks if lo <= int(c["n"]) < hi]  # type: ignore[call-overload]

    def items_of(self, session_id: str) -> list[str]:
        return [str(c["item_id"]) for c in self.clicks if c["session_id"] == session_id]


def make_stream(users: int = 15, anonymous: int = 15, length: int = 10) -> Stream:
    """Known user u has session u-old (4 clicks, GAP_S+ before) then u-live; anonymous sessions a<i>."""
    now = time.time()
    clicks: list[dict[str, object]] = []
    for n in range(length):
        for u in range(users):
            if n < 4:
                clicks.append(_click(f"u{u}-old", f"u{u}", f"i{(u + n) % 23}", now - 2 * GAP_S + n, n))
            clicks.append(_click(f"u{u}-live", f"u{u}", f"i{(3 * u + n) % 29}", now - 60 + n, n))
        for a in range(anonymous):
            clicks.append(_click(f"a{a}", None, f"i{(5 * a + n) % 31}", now - 60 + n, n))
    return Stream(clicks)


def _click(session_id: str, user_id: str | None, item_id: str, ts: float, n: int) -> dict[str, object]:
    return {"event_id": f"{session_id}-{n}", "session_id": session_id, "user_id": user_id, "item_id": item_id,
            "ts": ts, "type": "view", "n": n}


def produce(settings: Settings, clicks: Iterable[dict[str, object]], pause_s: float = 0.0) -> None:
    """Produce clicks keyed as the contract says; with `pause_s`, one at a time (a live stream)."""
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "batch.num.messages": 1})
    topic = Topics(settings.kafka.topic_prefix).clicks
    for click in clicks:
        body = {k: v for k, v in click.items() if k != "n"}
        producer.produce(topic, key=str(click["user_id"] or click["session_id"]).encode(), value=orjson.dumps(body))
        if pause_s:
            producer.flush()
            time.sleep(pause_s)
    assert producer.flush(30) == 0


def event_ids(records: list[Message]) -> set[str]:
    return {orjson.loads(m.value())["event_id"] for m in records}


def wait_event_ids(tail: object, wanted: int | set[str], timeout_s: float = 90.0) -> set[str]:
    def done(records: list[Message]) -> bool:
        seen = event_ids(records)
        return len(seen) >= wanted if isinstance(wanted, int) else wanted <= seen

    return event_ids(tail.wait_for(done, timeout_s))  # type: ignore[attr-defined]


def first_answers(records: list[Message]) -> dict[str, Recommendation]:
    """The first recommendation of each event_id (a redelivery repeats an earlier one)."""
    first: dict[str, Recommendation] = {}
    for message in records:
        rec = Recommendation.model_validate_json(message.value())
        first.setdefault(rec.event_id, rec)
    return first
