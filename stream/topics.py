"""Topic names and the wire schemas of every record streamrec reads or writes.

This is the one place that knows what travels on Kafka. docs/events.md shows
JSON examples of each schema.
"""

from __future__ import annotations

import base64
import hashlib
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

MODEL_UPDATES = "streamrec.model-updates"
"""Compacted: one announcement per published model version (ModelUpdate), from the trainer to every scoring stage."""

ALL_TOPICS = (CLICKS, RECOMMENDATIONS, DLQ, SCORING_REQUESTS, MODEL_UPDATES)
COMPACTED_TOPICS = (MODEL_UPDATES,)
"""Created with cleanup.policy=compact and one partition (announcements stay in order)."""

ONLINE_SUFFIX = "+online"
"""Appended to the scorer name of a stage that swaps versions in, so a frozen twin of the same preset
(`updates.follow = false`) is told apart in every report (and the dashboard knows whose versions are models')."""


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
    def model_updates(self) -> str:
        return self.prefix + MODEL_UPDATES

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
    history_items: list[str] = Field(default_factory=list,
                                     description="The user's closed-session clicks, oldest first.")
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
    request_partition: int | None = Field(None, description="scoring-requests partition of the answered request.")
    request_offset: int | None = Field(None, description="Its offset there.")
    trained_through: int | None = Field(None, description="Offset on that partition the answering model version was "
                                        "trained up to (exclusive; None: a model that does not train on the stream).")


class ModelUpdate(_Record):
    """An announcement on `model-updates`: a version the trainer published to the checkpoint store."""

    model: str = Field(description="Preset of the model; the record key (compaction keeps the last `keep_versions` per "
                       "model).")
    sequence: int = Field(description="Store version number, increasing by one per publish.")
    version: str = Field(description="The checkpoint's version stamp (what recommendations carry).")
    path: str = Field(description="Checkpoint file in the store, readable by every scoring stage.")
    sha256: str = Field(description="sha256 of the file's bytes; a scoring stage refuses a file that does not match.")
    trained_through: dict[int, int] = Field(description="scoring-requests partition -> next offset: every example the "
                                            "version trained on came from a request before it.")
    last_click_ts: float | None = Field(description="Event time of the latest click trained on.")
    examples_trained: int
    steps: int
    published_at: float = Field(description="Wall clock of the announcement (unix seconds).")
    candidates_path: str | None = Field(None, description="Candidate index shipped with this version, if any.")


class DeadLetter(_Record):
    """A record that could not be accepted, with why, and its original bytes (base64), cut to a bounded size.

    Build one with `bounded_dead_letter`. The last four fields were added later: records
    written before lack them and read as unknown size, not truncated.
    """

    reason: str
    detail: str
    original_b64: str
    original_key_b64: str | None = None
    source_topic: str = CLICKS
    source_partition: int | None = None
    source_offset: int | None = None
    ts_dead: float
    original_size: int | None = Field(None, description="Bytes of the original value (0: none), also when cut.")
    original_sha256: str | None = Field(None, description="sha256 (hex) of the whole original value.")
    original_key_size: int | None = Field(None, description="Bytes of the original key (None: no key).")
    truncated: bool = Field(False, description="original_b64 / original_key_b64 hold only the first bytes.")


DETAIL_MAX_CHARS = 500
"""A dead letter's `detail` is cut to this many characters."""
DEAD_LETTER_KEY_MAX_BYTES = 1024
"""A dead letter's Kafka key is the rejected record's key cut to this (`original_key_b64` keeps more)."""
RECORD_OVERHEAD_BYTES = 1024
"""Room left in a produce request for a record's headers and framing."""


@dataclass(frozen=True)
class DeadLetterLimits:
    """How big a dead letter may get: it must always be producible, whatever the record it reports.

    Built from `kafka.dlq_max_original_bytes` and `kafka.max_message_bytes` by `stream/kafka.dead_letter_limits`.
    """

    max_original_bytes: int
    """Original key / value bytes kept (each); the rest is cut, their size and the value's sha256 are kept."""
    max_record_bytes: int
    """The dead letter's JSON never exceeds this: the producer's message.max.bytes less its key and framing."""

    @classmethod
    def within(cls, max_original_bytes: int, max_message_bytes: int) -> DeadLetterLimits:
        """Limits for dead letters that, with their key (`dead_letter_key`), fit a `max_message_bytes` record."""
        return cls(max_original_bytes, max_message_bytes - DEAD_LETTER_KEY_MAX_BYTES - RECORD_OVERHEAD_BYTES)


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The Kafka key of the dead letter of a record keyed `key`: the same key, cut to a bounded size."""
    return None if key is None else key[:DEAD_LETTER_KEY_MAX_BYTES]


def bounded_dead_letter(
    reason: str,
    detail: str,
    key: bytes | None,
    value: bytes | None,
    now: float,
    limits: DeadLetterLimits,
    *,
    source_topic: str = CLICKS,
    partition: int | None = None,
    offset: int | None = None,
) -> DeadLetter:
    """The one way to build a `DeadLetter`: original bytes base64, cut so the record always fits `limits`.

    A click of 800 KB would otherwise make a ~1.07 MB dead letter the producer refuses
    (MSG_SIZE_TOO_LARGE), which crashed the stage on that record at every restart.
    """
    value = value or b""
    digest = hashlib.sha256(value).hexdigest()
    kept = limits.max_original_bytes
    while True:
        letter = DeadLetter(
            reason=reason,
            detail=detail[:DETAIL_MAX_CHARS],
            original_b64=base64.b64encode(value[:kept]).decode("ascii"),
            original_key_b64=None if key is None else base64.b64encode(key[:kept]).decode("ascii"),
            source_topic=source_topic,
            source_partition=partition,
            source_offset=offset,
            ts_dead=now,
            original_size=len(value),
            original_sha256=digest,
            original_key_size=None if key is None else len(key),
            truncated=len(value) > kept or (key is not None and len(key) > kept),
        )
        excess = len(letter.model_dump_json()) - limits.max_record_bytes
        if excess <= 0 or kept == 0:
            return letter
        kept = max(0, min(kept, max(len(value), len(key or b""))) - excess)  # base64 is 4/3 of this: a second pass fits


def without_original(letter: DeadLetter, why: str) -> DeadLetter:
    """`letter` with no original bytes (size and hash kept): for a dead letter the broker refused as too large."""
    detail = f"{letter.detail}; original bytes dropped: {why}"[:DETAIL_MAX_CHARS]
    return letter.model_copy(update={"original_b64": "", "original_key_b64": None, "truncated": True, "detail": detail})


# --- hot-path codecs -------------------------------------------------------------------
# One recommendation is written per click and read by every consumer of the topic. Building
# and validating the pydantic models above costs several times what these plain-dict codecs
# cost (docs/benchmarks.md, "Smaller measurements behind code choices"); they produce/accept
# exactly the same JSON (tests/stream/test_topics.py checks both directions against the models).


class Provenance(NamedTuple):
    """Where an answered request sat on scoring-requests, and how far the answering version had trained there."""

    partition: int
    offset: int
    trained_through: int | None


def trained_on_later_click(trained_through: int | None, offset: int) -> bool:
    """Whether a version trained through `trained_through` (exclusive) saw a request after the one at `offset`.

    The request at `offset` itself yields only the example ending in the click being answered, which the
    scorer knows anyway; any later request of the partition may hold the click the answer is judged on.
    The hot-swap guard and the replay report both decide with this one function.
    """
    return trained_through is not None and trained_through > offset + 1


def encode_recommendation(
    request: ScoringRequest, ranked: Sequence[tuple[str, float]], scorer: str, model_version: str, emitted_at: float,
    provenance: Provenance | None = None,
) -> bytes:
    """The `Recommendation` JSON answering `request` with `ranked` (item_id, score) pairs, best first."""
    extra = {} if provenance is None else {
        "request_partition": provenance.partition, "request_offset": provenance.offset,
        "trained_through": provenance.trained_through,
    }
    return orjson.dumps({
        "session_id": request.session_id,
        "user_id": request.user_id,
        "event_id": request.event_id,
        "items": [{"item_id": item, "score": score} for item, score in ranked],
        "scorer": scorer,
        "model_version": model_version,
        "ts_event": request.ts_event,
        "ts_emitted": emitted_at,
        **extra,
    })


class Answer(NamedTuple):
    """What a reader judging recommendations needs of one record: which click, who answered, the items."""

    event_id: str
    scorer: str
    model_version: str
    item_ids: list[str]
    trained_on_later_click: bool = False
    """The answering version had trained on a request after the answered one (see `trained_on_later_click`)."""


def read_answer(value: bytes | None) -> Answer:
    """The `Answer` in a `recommendations` record; ValueError when it is not a recommendation."""
    try:
        doc = orjson.loads(value or b"")
        offset, through = doc.get("request_offset"), doc.get("trained_through")
        later = isinstance(offset, int) and isinstance(through, int) and trained_on_later_click(through, offset)
        answer = Answer(doc["event_id"], doc["scorer"], doc["model_version"], [i["item_id"] for i in doc["items"]],
                        later)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a recommendation: {exc}") from exc
    if not all(type(f) is str for f in (answer.event_id, answer.scorer, answer.model_version, *answer.item_ids)):
        raise ValueError("not a recommendation: a field that must be a string is not")
    return answer
