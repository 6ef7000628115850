"""What both stateful-stage engines share: the consumer group, client settings, the stop watcher."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from streamrec.config import Settings
from streamrec.stream.topics import DeadLetterLimits


def stateful_group(settings: Settings) -> str:
    """Consumer group of the stateful stage (its changelog topics are named after it too)."""
    return f"{settings.kafka.consumer_group}-stateful"


def consumer_config(settings: Settings) -> dict[str, str | int]:
    """librdkafka consumer settings: the session timeout, heartbeats well inside it, the fetch wait and size."""
    timeout_ms = settings.kafka.session_timeout_ms
    return {
        "session.timeout.ms": timeout_ms,
        "heartbeat.interval.ms": max(100, timeout_ms // 3),
        "fetch.wait.max.ms": settings.kafka.fetch_wait_max_ms,
        "max.partition.fetch.bytes": settings.kafka.max_message_bytes,
    }


def producer_config(settings: Settings) -> dict[str, str | int]:
    """librdkafka producer settings: the record size limit; one record per batch where the broker's watermarks need it."""
    config: dict[str, str | int] = {
        "linger.ms": settings.kafka.linger_ms,
        "message.max.bytes": settings.kafka.max_message_bytes,
    }
    if settings.kafka.single_record_batches:
        config["batch.num.messages"] = 1
    return config


def dead_letter_limits(settings: Settings) -> DeadLetterLimits:
    """How much of a rejected record its dead letter keeps, and the record size it must fit (the producer's limit)."""
    return DeadLetterLimits.within(settings.kafka.dlq_max_original_bytes, settings.kafka.max_message_bytes)


@contextlib.contextmanager
def stop_when_set(stop: threading.Event | None, on_stop: Callable[[], None]) -> Iterator[None]:
    """Call `on_stop` from a watcher thread once `stop` is set, so a blocking `run()` can be ended from outside."""
    if stop is None:
        yield
        return
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if stop.wait(timeout=0.2):
                on_stop()
                return

    watcher = threading.Thread(target=watch, name="stateful-stop-watcher", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        watcher.join()
