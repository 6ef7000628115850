"""POST /clicks: the click contract of stream/validate.py at the HTTP edge, then the `clicks` topic.

A click the stateful stage would dead-letter is refused here with 422 and the same reason
code, so it never reaches the topic; a valid one is acknowledged (202) only once the broker
has it (acks=all), so a 202 click is never lost. The Kafka key follows the contract
(user_id when known, else session_id); a body cannot choose another.
"""

from __future__ import annotations

import asyncio
import threading
import time

import orjson
from confluent_kafka import KafkaError, Message

from streamrec.config import Settings
from streamrec.stream.kafka import build_producer, producer_config
from streamrec.stream.topics import ClickEvent, Topics
from streamrec.stream.validate import ClickValidator, Rejection

_POLL_S = 0.05


def contract_key(body: bytes) -> bytes | None:
    """The key the contract asks for (user_id else session_id) when `body` is an object naming one, else None.

    The validator then judges body and key together, so a body without usable ids gets its
    own reason (missing_field, wrong_type, ...) rather than a key mismatch."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    key = doc.get("user_id")
    if key is None:
        key = doc.get("session_id")
    return key.encode() if isinstance(key, str) else None


class ClickSink:
    """Validates and produces clicks; a background thread serves the producer's delivery callbacks."""

    def __init__(self, settings: Settings) -> None:
        self.topic = Topics(settings.kafka.topic_prefix).clicks
        self._validator = ClickValidator(settings.validation)
        self._producer = build_producer(settings.kafka, producer_config(settings))
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="click-producer", daemon=True)
        self._poller.start()

    def check(self, body: bytes) -> ClickEvent | Rejection:
        """The click in `body`, or the reason the stateful stage would dead-letter it."""
        return self._validator.parse(contract_key(body), body, time.time())

    async def send(self, click: ClickEvent, body: bytes) -> Message:
        """Produce the validated `body` under its contract key; returns the broker's acknowledgement.

        Raises KafkaException-like RuntimeError when the broker refuses it."""
        loop = asyncio.get_running_loop()
        delivered: asyncio.Future[Message] = loop.create_future()

        def on_delivery(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                loop.call_soon_threadsafe(_settle, delivered, RuntimeError(str(error)))
            else:
                loop.call_soon_threadsafe(_settle, delivered, message)

        while True:
            try:
                self._producer.produce(self.topic, key=click.key.encode(), value=body, on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: let the poller drain it
                await asyncio.sleep(_POLL_S)
        return await delivered

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(_POLL_S)

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._poller.join()
        self._producer.flush(timeout_s)


def _settle(future: asyncio.Future[Message], outcome: Message | Exception) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
