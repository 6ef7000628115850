"""The per-click step of the stateful stage, shared by every engine (Quix Streams, faust).

An engine only moves data: it hands `StatefulStep` the raw key and value, the visitor
state stored under that key (a plain dict, or None) and the wall clock; it stores the
returned state when there is one and produces the returned `Output`. Validation, the
state transition (`state.visitor.apply_click`) and the metrics all happen here, once.

Delivery is at least once: a redelivered click (its event_id already in the session)
leaves state unchanged but is answered again, from the session as it stood at that
click, because after a crash the changelog can hold a click whose scoring request never
reached the broker.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from streamrec.config import Settings
from streamrec.state.session import SessionGraph
from streamrec.state.visitor import Click, SessionPolicy, VisitorState, apply_click
from streamrec.stream import metrics
from streamrec.stream.kafka import dead_letter_limits
from streamrec.stream.stages.heap import HeapTrimmer, fix_mmap_threshold
from streamrec.stream.topics import RECORD_OVERHEAD_BYTES, ClickEvent, Topics, dead_letter_key
from streamrec.stream.validate import ClickValidator, Rejection, dead_letter


def session_policy(settings: Settings) -> SessionPolicy:
    """The one mapping from settings to the state transition's policy."""
    return SessionPolicy(
        max_length=settings.session.max_length,
        inactivity_gap_s=settings.session.inactivity_gap_s,
        max_open_per_visitor=settings.session.max_open_per_visitor,
        history_max_items=settings.history.max_items,
    )


def anonymous_state_bytes(settings: Settings, clicks: int, id_chars: int) -> int:
    """Serialised size of an anonymous visitor's state after `clicks` clicks (capped at `session.max_length`)
    with event, session and item ids of `id_chars` characters: the `max_state_bytes` of the memory bound
    (engines/registry.stateful_memory_bound_mb) for a stream of anonymous sessions."""
    policy = session_policy(settings)
    state, ts = VisitorState(), 1_796_000_000.1234567  # event times at full float precision (the longest JSON)
    session_id, item_id = "s".ljust(id_chars, "0"), "i".ljust(id_chars, "0")
    for n in range(min(clicks, policy.max_length)):
        apply_click(state, Click(f"e{n}".ljust(id_chars, "0"), session_id, None, item_id, ts + n * 1.0000001), policy)
    return len(orjson.dumps(state.to_dict()))


class Output(NamedTuple):
    """A record ready to produce: the topic, key and value bytes."""

    topic: str
    key: bytes | None
    value: bytes


class StepResult(NamedTuple):
    """What one raw record did: the state to store (None: unchanged) and the record to produce.

    NamedTuples here (and for `Output`) because one of each is built per click at >= 20k/s.
    """

    state: dict[str, Any] | None
    output: Output
    rejection: Rejection | None = None
    sessions_closed: int = 0
    duplicate: bool = False


def encode_scoring_request(
    click: ClickEvent,
    session: SessionGraph,
    history: list[str],
    now: float,
    max_bytes: int | None = None,
    ts_produced: float | None = None,
) -> bytes:
    """The `ScoringRequest` JSON for `click`, from the session cut at that click (a redelivery may come late).

    Written with orjson from the state's own lists: building and dumping the pydantic model costs
    several times more per click. tests/stream/stages/test_stateful.py checks it parses as a ScoringRequest.
    A request over `max_bytes` (long history of long ids) loses its oldest history items, then its
    oldest session clicks, until it fits: the producer would refuse it, and stop the stage, otherwise.
    """
    end = len(session.event_ids) - session.event_ids[::-1].index(click.event_id)
    request: dict[str, Any] = {
        "event_id": click.event_id,
        "session_id": click.session_id,
        "user_id": click.user_id,
        "item_id": click.item_id,
        "ts_event": click.ts,
        "ts_received": now,
        "session_items": session.items[:end],
        "session_ts": session.ts[:end],
        "history_items": history,
        "ts_produced": ts_produced,
    }
    encoded = orjson.dumps(request)
    while max_bytes is not None and len(encoded) > max_bytes and (history or end > 1):
        if history:
            history = history[(len(history) + 1) // 2 :]
            request["history_items"] = history
        else:
            end = (end + 1) // 2
            request["session_items"] = request["session_items"][-end:]
            request["session_ts"] = request["session_ts"][-end:]
        encoded = orjson.dumps(request)
    return encoded


class StatefulStep:
    """Validate, fold into state, build the scoring request; built once per stage from settings."""

    def __init__(self, settings: Settings) -> None:
        self._validator = ClickValidator(settings.validation)
        self._policy = session_policy(settings)
        self._max_request_items = settings.history.max_request_items
        self._dead_letter_limits = dead_letter_limits(settings)
        # The request's key is its session_id: at most max_id_chars characters of up to 4 UTF-8 bytes.
        key_bytes = 4 * settings.validation.max_id_chars
        self._max_request_bytes = settings.kafka.max_message_bytes - RECORD_OVERHEAD_BYTES - key_bytes
        self.topics = Topics(settings.kafka.topic_prefix)
        fix_mmap_threshold(settings.state.heap_mmap_threshold_kb)  # before the engine opens RocksDB
        self._heap = HeapTrimmer(settings.state.heap_trim_interval_ms)

    def step(
        self,
        key: bytes | None,
        value: bytes | None,
        stored: dict[str, Any] | None,
        now: float,
        *,
        partition: int | None = None,
        offset: int | None = None,
        ts_produced: float | None = None,
    ) -> StepResult:
        """The pure transition: no I/O, no metrics (`record` counts it).

        Scoring requests are keyed by session_id (the scoring stage's unit), dead letters by the original key.
        `ts_produced` is the click record's Kafka timestamp, carried on for the latency histogram.
        """
        parsed = self._validator.parse(key, value, now)
        if isinstance(parsed, Rejection):
            letter = dead_letter(parsed, key, value, now, self._dead_letter_limits, source_topic=self.topics.clicks,
                                 partition=partition, offset=offset)
            output = Output(self.topics.dlq, dead_letter_key(key), letter.model_dump_json().encode())
            return StepResult(None, output, rejection=parsed)
        state = VisitorState.from_dict(stored)
        click = Click(parsed.event_id, parsed.session_id, parsed.user_id, parsed.item_id, parsed.ts)
        transition = apply_click(state, click, self._policy)
        history = state.history.items[-self._max_request_items :] if self._max_request_items else []
        request = encode_scoring_request(
            parsed, transition.session, history, now, max_bytes=self._max_request_bytes, ts_produced=ts_produced
        )
        changed = not transition.duplicate or bool(transition.closed)
        return StepResult(
            state=state.to_dict() if changed else None,
            output=Output(self.topics.scoring_requests, parsed.session_id.encode(), request),
            sessions_closed=len(transition.closed),
            duplicate=transition.duplicate,
        )

    def record(self, result: StepResult) -> StepResult:
        """Count a `step` result in the stage's metrics (the engines call this per click); the process's free
        heap pages go back to the OS now and then."""
        self._heap.tick()
        if result.rejection is not None:
            metrics.CLICKS_DEAD_LETTERED.labels(result.rejection.reason.value).inc()
            return result
        if result.duplicate:
            metrics.CLICKS_DUPLICATE.inc()
        else:
            metrics.CLICKS_ACCEPTED.inc()
        if result.sessions_closed:
            metrics.SESSIONS_CLOSED.inc(result.sessions_closed)
        metrics.SCORING_REQUESTS_EMITTED.inc()
        return result
