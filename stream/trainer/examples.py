"""Scoring requests -> training examples.

A request carries its session's clicks x1..xn (the last is the click it was made for); it
yields the example (x1..x(n-1)) -> xn at the click's event time. A session's first click
(n = 1) yields an empty prefix: the learner counts the click (a new item gets its row) but
trains nothing on it. Redelivered requests (an event_id seen recently) are not learned twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka import Message
from pydantic import ValidationError

from streamrec.models.online.settings import StreamExample
from streamrec.stream.clients.consume import RecentEvents
from streamrec.stream.topics import ScoringRequest
from streamrec.stream.trainer import metrics

log = logging.getLogger(__name__)


def example_of(request: ScoringRequest) -> StreamExample | None:
    """The example a request teaches, or None when it carries no click."""
    if not request.session_items:
        return None
    *prefix, target = request.session_items
    return StreamExample(session_items=tuple(prefix), target=target, ts=request.ts_event,
                         history_items=tuple(request.history_items))


class ExampleReader:
    """Decodes request records into examples; invalid and redelivered ones are counted and left out."""

    def __init__(self) -> None:
        self._recent = RecentEvents()
        self.last_click_ts: float | None = None

    def examples(self, messages: Iterable[Message]) -> list[StreamExample]:
        examples = []
        for message in messages:
            metrics.REQUESTS_READ.inc()
            try:
                request = ScoringRequest.model_validate_json(message.value() or b"")
            except ValidationError as exc:
                metrics.REQUESTS_INVALID.inc()
                log.debug("request at %s/%s does not decode: %s", message.partition(), message.offset(), exc)
                continue
            if not self._recent.first_time(request.event_id):
                metrics.REQUESTS_DUPLICATE.inc()
                continue
            example = example_of(request)
            if example is None:
                metrics.REQUESTS_INVALID.inc()
                continue
            examples.append(example)
            self.last_click_ts = max(self.last_click_ts or example.ts, example.ts)
        metrics.EXAMPLES_ADDED.inc(len(examples))
        return examples
