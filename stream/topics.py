"""Topic names and the wire schemas of every record streamrec reads or writes.

This is the one place that knows what travels on Kafka. docs/events.md shows
JSON examples of each schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

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
