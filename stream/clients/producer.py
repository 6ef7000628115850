"""Getting clicks onto the `clicks` topic: a small class for Python web apps and `streamrec produce`.

Clicks are keyed by user_id when known, else session_id (`ClickEvent.key`): the stateful
stage keeps each key's sessions and memory together and dead-letters a mismatched key.
Web apps in other languages follow docs/webapp.md (plain JSON, same key rule).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

from confluent_kafka import KafkaError, Message
from pydantic import ValidationError

from streamrec.config import Settings, load_settings
from streamrec.stream.admin import ensure_topics
from streamrec.stream.kafka import Cluster, build_producer, producer_config
from streamrec.stream.topics import CLICKS, ClickEvent
from streamrec.stream.validate import ClickValidator, Rejection

log = logging.getLogger(__name__)

_RATE_EVERY_S = 5.0
"""`streamrec produce` prints its rate to stderr this often."""


class ClickProducer:
    """Send ClickEvents as JSON, keyed by user else session; count what the broker refused.

    >>> import time
    >>> from streamrec.config import load_settings
    >>> with ClickProducer.from_settings(load_settings()) as clicks:  # leaving the block flushes
    ...     clicks.send(ClickEvent(event_id="e1", session_id="s1", item_id="i9", ts=time.time()))
    >>> clicks.sent, clicks.failed
    (1, 0)
    """

    def __init__(self, cluster: Cluster, topic: str, config: dict[str, str | int] | None = None) -> None:
        """`cluster`: the deployment's KafkaSettings, or bare bootstrap servers (a plain cluster)."""
        self.topic = topic
        self.sent = 0
        self.failed = 0
        """Clicks the broker did not acknowledge (logged with the reason)."""
        self._producer = build_producer(cluster, config)

    @classmethod
    def from_settings(cls, settings: Settings, topic: str | None = None) -> ClickProducer:
        """A producer for `settings`' cluster; `topic` is a name before `kafka.topic_prefix` (default: clicks)."""
        name = settings.kafka.topic_prefix + (topic or CLICKS)
        return cls(settings.kafka, name, producer_config(settings))

    def send(self, click: ClickEvent) -> None:
        """Queue one click (asynchronous; `flush` waits for the broker)."""
        self.send_raw(click.key.encode(), click.model_dump_json().encode())

    def send_raw(self, key: bytes, value: bytes) -> None:
        """Queue an already-encoded click, waiting for room when the local queue is full."""
        while True:
            try:
                self._producer.produce(self.topic, key=key, value=value, on_delivery=self._on_delivery)
                self.sent += 1
                return
            except BufferError:
                self._producer.poll(0.1)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.failed += 1
            log.warning("click to %s not delivered: %s", message.topic(), error)

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait for outstanding clicks; returns how many are still undelivered."""
        return self._producer.flush(timeout_s)

    def __enter__(self) -> ClickProducer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.flush()


@dataclass
class ProduceReport:
    """What `produce_lines` did with its input."""

    produced: int = 0
    invalid: int = 0
    blank: int = 0


def _check_line(line: str, validator: ClickValidator, now: float) -> ClickEvent | str:
    """The click in `line`, or why it would be dead-lettered (the stateful stage's own rules)."""
    try:
        click = ClickEvent.model_validate_json(line)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "json"
        return f"{where}: {first['msg']}"
    checked = validator.parse(click.key.encode(), line.encode(), now)
    return f"{checked.reason.value}: {checked.detail}" if isinstance(checked, Rejection) else click


def produce_lines(lines: Iterable[str], producer: ClickProducer, validator: ClickValidator,
                  err: TextIO) -> ProduceReport:
    """Produce every valid JSON click line; report each invalid one on `err` with its line number."""
    report = ProduceReport()
    started = last_rate = time.monotonic()
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            report.blank += 1
            continue
        checked = _check_line(text, validator, time.time())
        if isinstance(checked, str):
            report.invalid += 1
            print(f"line {number}: invalid click ({checked})", file=err)
            continue
        producer.send_raw(checked.key.encode(), text.encode())
        report.produced += 1
        if time.monotonic() - last_rate >= _RATE_EVERY_S:
            last_rate = time.monotonic()
            print(f"{report.produced:,} clicks produced ({report.produced / (last_rate - started):,.0f}/s)", file=err)
    return report


def produce_stdin(topic: str) -> None:
    """`streamrec produce`: JSON clicks from stdin to `topic` (before `kafka.topic_prefix`); exit 1 on any bad line."""
    from streamrec.stream.observability.health import require_broker

    settings = load_settings()
    require_broker(settings)
    ensure_topics(settings)  # a topic the broker auto-creates on first produce lacks the config the workers need
    producer = ClickProducer.from_settings(settings, topic)
    report = produce_lines(sys.stdin, producer, ClickValidator(settings.validation), sys.stderr)
    undelivered = producer.flush()
    print(
        f"produced {report.produced - producer.failed - undelivered:,} clicks to {producer.topic}; "
        f"{report.invalid:,} invalid lines skipped; {producer.failed + undelivered:,} not delivered",
        file=sys.stderr,
    )
    if report.invalid or producer.failed or undelivered:
        raise SystemExit(1)
