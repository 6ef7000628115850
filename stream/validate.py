"""The click-event contract, enforced in one place: raw Kafka bytes in, a ClickEvent or a Rejection out.

Nothing malformed may stop a process or vanish: every record this module rejects carries
a `Reason` code and a human detail, and `dead_letter` turns it into the `clicks.dlq`
record with the original bytes (cut to a size the producer accepts: `topics.bounded_dead_letter`).
The accepted shape is `stream.topics.ClickEvent`; the bounds come from `ValidationSettings`.

Speed matters (the stateful stage runs this per click at >= 20k events/s), so the happy
path is one `orjson.loads`, plain checks and pydantic's (compiled) `model_validate`; the
slower diagnosis (UTF-8, non-finite numbers) only runs for records already rejected.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson
from pydantic import ValidationError

from streamrec.config import ValidationSettings
from streamrec.stream.topics import CLICKS, ClickEvent, ClickType, DeadLetter, DeadLetterLimits, bounded_dead_letter


class Reason(str, Enum):
    """Why a click went to the DLQ; the value is the `reason` field and the metrics label."""

    empty_payload = "empty_payload"
    oversized_payload = "oversized_payload"
    not_utf8 = "not_utf8"
    not_json = "not_json"
    non_finite_number = "non_finite_number"
    not_an_object = "not_an_object"
    missing_field = "missing_field"
    unknown_field = "unknown_field"
    wrong_type = "wrong_type"
    empty_id = "empty_id"
    id_too_long = "id_too_long"
    ts_out_of_range = "ts_out_of_range"
    unknown_click_type = "unknown_click_type"
    key_mismatch = "key_mismatch"


@dataclass(frozen=True)
class Rejection:
    reason: Reason
    detail: str


_ID_FIELDS = ("event_id", "session_id", "item_id")
_ID_FIELDS_WITH_USER = (*_ID_FIELDS, "user_id")
_REQUIRED = frozenset((*_ID_FIELDS, "ts"))
_ALLOWED = frozenset(ClickEvent.model_fields)
_CLICK_TYPES = {t.value: t for t in ClickType}


class ClickValidator:
    """Checks raw (key, value) records against the contract; built once per stage from settings."""

    def __init__(self, settings: ValidationSettings) -> None:
        self._limits = settings

    def parse(self, key: bytes | None, value: bytes | None, now: float) -> ClickEvent | Rejection:
        """The ClickEvent in `value`, or why there is none. `now` bounds how far in the future ts may lie."""
        if not value:
            return Rejection(Reason.empty_payload, "the record has no value")
        if len(value) > self._limits.max_payload_bytes:
            return Rejection(Reason.oversized_payload, f"{len(value)} bytes > {self._limits.max_payload_bytes}")
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return _diagnose_unparsable(value, exc)
        if not isinstance(doc, dict):
            return Rejection(Reason.not_an_object, f"top-level JSON is {type(doc).__name__}, not an object")
        rejection = self._check_fields(doc, now)
        if rejection is not None:
            return rejection
        try:
            click = ClickEvent.model_validate(doc)
        except ValidationError as exc:  # the checks above should leave nothing for pydantic to refuse
            return Rejection(Reason.wrong_type, str(exc.errors()[0]["msg"])[:200])
        return _check_key(key, click)

    def _check_fields(self, doc: dict[str, Any], now: float) -> Rejection | None:
        fields = doc.keys()
        if not _REQUIRED <= fields:
            return Rejection(Reason.missing_field, f"missing {sorted(_REQUIRED - fields)}")
        if not fields <= _ALLOWED:
            return Rejection(Reason.unknown_field, f"unknown {sorted(fields - _ALLOWED)}")
        max_chars = self._limits.max_id_chars
        for name in _ID_FIELDS if doc.get("user_id") is None else _ID_FIELDS_WITH_USER:
            value = doc[name]
            if type(value) is not str or not value.strip() or len(value) > max_chars:
                return _bad_id(name, value, max_chars)
        return _check_type(doc.get("type", "view")) or self._check_ts(doc["ts"], now)

    def _check_ts(self, ts: object, now: float) -> Rejection | None:
        if isinstance(ts, bool) or not isinstance(ts, int | float):
            return Rejection(Reason.wrong_type, f"ts is {type(ts).__name__}, not a number")
        latest = now + self._limits.max_future_s
        if not self._limits.min_ts_s <= ts <= latest:
            return Rejection(Reason.ts_out_of_range, f"ts {ts} outside [{self._limits.min_ts_s}, {latest:.0f}]")
        return None


def _bad_id(name: str, value: object, max_chars: int) -> Rejection:
    """Why an id failed the one-line check in `_check_fields` (kept off the hot path)."""
    if not isinstance(value, str):
        return Rejection(Reason.wrong_type, f"{name} is {type(value).__name__}, not a string")
    if not value.strip():
        return Rejection(Reason.empty_id, f"{name} is empty")
    return Rejection(Reason.id_too_long, f"{name} has {len(value)} chars > {max_chars}")


def _check_type(click_type: object) -> Rejection | None:
    if not isinstance(click_type, str):
        return Rejection(Reason.wrong_type, f"type is {type(click_type).__name__}, not a string")
    if click_type not in _CLICK_TYPES:
        return Rejection(Reason.unknown_click_type, f"type {click_type[:40]!r} not in {sorted(_CLICK_TYPES)}")
    return None


def _check_key(key: bytes | None, click: ClickEvent) -> ClickEvent | Rejection:
    """State lives under the Kafka key, so a click keyed by anything but user_id-else-session_id is refused."""
    expected = click.key.encode()
    if key != expected:
        shown = "no key" if key is None else f"key {key[:40]!r}"
        return Rejection(Reason.key_mismatch,
                         f"{shown}, expected {expected[:40]!r} (user_id when known, else session_id)")
    return click


def _diagnose_unparsable(value: bytes, exc: orjson.JSONDecodeError) -> Rejection:
    """Tell bad encoding, NaN/Infinity/overflowing numbers and plain syntax errors apart (slow path only)."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as err:
        return Rejection(Reason.not_utf8, f"invalid UTF-8 at byte {err.start}")
    non_finite: list[str] = []

    def note_float(literal: str) -> float:
        number = float(literal)
        if not math.isfinite(number):
            non_finite.append(literal)
        return number

    def note_constant(literal: str) -> float:
        non_finite.append(literal)
        return float("nan")

    try:
        json.loads(text, parse_float=note_float, parse_constant=note_constant)
    except (ValueError, RecursionError):
        return Rejection(Reason.not_json, str(exc)[:200])
    if non_finite:
        return Rejection(Reason.non_finite_number, f"non-finite number {non_finite[0][:40]}")
    return Rejection(Reason.not_json, str(exc)[:200])


def dead_letter(
    rejection: Rejection,
    key: bytes | None,
    value: bytes | None,
    now: float,
    limits: DeadLetterLimits,
    *,
    source_topic: str = CLICKS,
    partition: int | None = None,
    offset: int | None = None,
) -> DeadLetter:
    """The `clicks.dlq` record for a rejected click: reason, detail and the original bytes (cut to `limits`)."""
    return bounded_dead_letter(rejection.reason.value, rejection.detail, key, value, now, limits,
                               source_topic=source_topic, partition=partition, offset=offset)
