"""Topic names and the wire schemas of every record streamrec reads or writes.

This is the one place that knows what travels on Kafka. docs/events.md shows
JSON examples of each schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

import orjson

from pydantic import BaseModel, ConfigDict, Field

CLICKS = "clicks"
"""Click events from the web apps; keyed by user_id when known, else session_id."""
RECOMMENDATIONS = "recommendations"
"""Next-item recommendations; keyed by session_id."""
DLQ = "clicks.dlq"
"""Malformed clicks with the reason and the original bytes."""
SCORING_REQUESTS = "streamrec.scoring-requests"
"""Internal: one request per valid click, from the stateful stage to the scoring stage."""

ALL_TOPICS = (CLICKS, RECOMMENDATIONS, DLQ, SCORING_REQUESTS)


@dataclass(frozen=True)
class Topics:
    """The topic names of one deployment: the constants above behind `kafka.topic_prefix`."""

    prefix: str = ""

    @property
    def clicks(self) -> str:
        return self.prefix + CLICKS

    @property
    def recommendations(self) -> str:
        return self.prefix + RECOMMENDATIONS

    @property
    def dlq(self) -> str:
        return self.prefix + DLQ

    @property
    def scoring_requests(self) -> str:
        return self.prefix + SCORING_REQUESTS

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(self.prefix + t for t in ALL_TOPICS)


class ClickType(str, Enum):
    view = "view"
    add_to_cart = "add_to_cart"
    purchase = "purchase"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClickEvent(_Record):
    """What a web app produces for one user action."""

    event_id: str
    session_id: str
    user_id: str | None = None
    item_id: str
    ts: float = Field(description="Event time, unix seconds.")
    type: ClickType = ClickType.view

    @property
    def key(self) -> str:
        """Kafka key: the user when known (their sessions and memory live together), else the session."""
        return self.user_id if self.user_id is not None else self.session_id


class ScoringRequest(_Record):
    """Internal hand-off: a valid click plus the state the scorer needs."""

    event_id: str
    session_id: str
    user_id: str | None
    item_id: str
    ts_event: float
    ts_received: float = Field(description="Wall clock when the stateful stage accepted the click (unix seconds).")
    session_items: list[str] = Field(description="The session's clicks, oldest first; the last is this click.")
    session_ts: list[float]
    history_items: list[str] = Field(default_factory=list, description="The user's closed-session clicks, oldest first.")
    ts_produced: float | None = Field(
        None, description="Kafka timestamp of the click record (its produce time, unix seconds): the start of the "
        "click-to-recommendation latency the scoring stage measures."
    )


class ScoredItem(_Record):
    item_id: str
    score: float


class Recommendation(_Record):
    """What the web apps consume: the next items for a session after one click."""

    session_id: str
    user_id: str | None
    event_id: str = Field(description="event_id of the click that triggered this list.")
    items: list[ScoredItem]
    scorer: str
    model_version: str
    ts_event: float
    ts_emitted: float


class DeadLetter(_Record):
    """A click that could not be accepted, with why, and its original bytes (base64)."""

    reason: str
    detail: str
    original_b64: str
    original_key_b64: str | None = None
    source_topic: str = CLICKS
    source_partition: int | None = None
    source_offset: int | None = None
    ts_dead: float


# --- hot-path codecs -------------------------------------------------------------------
# One recommendation is written per click and read by every consumer of the topic. Building
# and validating the pydantic models above costs ~30 us (write) and ~13 us (read) per list of
# 20; these plain-dict codecs cost ~3 us each and produce/accept exactly the same JSON
# (tests/stream/test_topics.py checks both directions against the models).


def encode_recommendation(
    request: ScoringRequest, ranked: Sequence[tuple[str, float]], scorer: str, model_version: str, emitted_at: float
) -> bytes:
    """The `Recommendation` JSON answering `request` with `ranked` (item_id, score) pairs, best first."""
    return orjson.dumps({
        "session_id": request.session_id,
        "user_id": request.user_id,
        "event_id": request.event_id,
        "items": [{"item_id": item, "score": score} for item, score in ranked],
        "scorer": scorer,
        "model_version": model_version,
        "ts_event": request.ts_event,
        "ts_emitted": emitted_at,
    })


class Answer(NamedTuple):
    """What a reader judging recommendations needs of one record: which click, who answered, the items."""

    event_id: str
    scorer: str
    model_version: str
    item_ids: list[str]


def read_answer(value: bytes | None) -> Answer:
    """The `Answer` in a `recommendations` record; ValueError when it is not a recommendation."""
    try:
        doc = orjson.loads(value or b"")
        answer = Answer(doc["event_id"], doc["scorer"], doc["model_version"], [i["item_id"] for i in doc["items"]])
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a recommendation: {exc}") from exc
    if not all(type(f) is str for f in (answer.event_id, answer.scorer, answer.model_version, *answer.item_ids)):
        raise ValueError("not a recommendation: a field that must be a string is not")
    return answer
