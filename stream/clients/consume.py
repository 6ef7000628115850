"""Reading `recommendations` from a web app: an iterator over decoded, de-duplicated records.

Delivery is at least once, so the same click's recommendation can arrive twice; the feed
drops repeats of a recently seen event_id. A record that does not decode is skipped,
logged and counted in `invalid` (it is the producer's bug, not the reader's).
See docs/webapp.md for the minimal version without a streamrec dependency.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from types import TracebackType

from confluent_kafka import KafkaError
from pydantic import ValidationError

from streamrec.config import Settings
from streamrec.stream.kafka import Cluster, build_consumer, topics
from streamrec.stream.topics import Recommendation

log = logging.getLogger(__name__)

_REMEMBERED_EVENTS = 100_000
"""event_ids remembered for de-duplication (bounded memory)."""


class RecentEvents:
    """A bounded set of recently seen event_ids (oldest forgotten first)."""

    def __init__(self, capacity: int = _REMEMBERED_EVENTS) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def first_time(self, event_id: str) -> bool:
        """True the first time `event_id` is seen (within the remembered window)."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True


class RecommendationFeed:
    """Iterate Recommendations until `stop` is set (or forever).

    >>> import threading
    >>> from streamrec.config import load_settings
    >>> stop = threading.Event()  # a web app sets it when it shuts down
    >>> threading.Timer(2.0, stop.set).start()  # here: after two seconds
    >>> latest: dict[str, list[str]] = {}
    >>> with RecommendationFeed.from_settings(load_settings(), group_id="webshop-frontend", stop=stop) as feed:
    ...     for rec in feed:
    ...         latest[rec.session_id] = [item.item_id for item in rec.items]
    """

    def __init__(
        self,
        cluster: Cluster,
        topic: str,
        group_id: str,
        *,
        from_beginning: bool = False,
        stop: threading.Event | None = None,
        poll_timeout_s: float = 0.5,
        config: dict[str, str | int] | None = None,
    ) -> None:
        self.topic = topic
        self.invalid = 0
        self.duplicates = 0
        self._stop = stop or threading.Event()
        self._poll_timeout_s = poll_timeout_s
        self._recent = RecentEvents()
        self._consumer = build_consumer(cluster, group_id, {
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            **(config or {}),
        })
        self._consumer.subscribe([topic])

    @classmethod
    def from_settings(cls, settings: Settings, group_id: str, **kwargs: object) -> RecommendationFeed:
        """A feed of `settings`' recommendations topic (prefix applied), secured as `kafka.client_config` says."""
        return cls(settings.kafka, topics(settings).recommendations, group_id, **kwargs)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Recommendation]:
        while not self._stop.is_set():
            message = self._consumer.poll(self._poll_timeout_s)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("recommendation feed: %s", error)
                continue
            recommendation = self._decode(message.value())
            if recommendation is not None:
                yield recommendation

    def _decode(self, value: bytes | None) -> Recommendation | None:
        try:
            recommendation = Recommendation.model_validate_json(value or b"")
        except ValidationError as exc:
            self.invalid += 1
            log.warning("skipping an undecodable recommendation: %s", exc.errors()[0]["msg"])
            return None
        if not self._recent.first_time(recommendation.event_id):
            self.duplicates += 1
            return None
        return recommendation

    def stop(self) -> None:
        """End the iteration (from another thread, or from the loop body)."""
        self._stop.set()

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> RecommendationFeed:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
