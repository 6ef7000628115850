"""The click contract: every kind of malformed record gets its own reason, valid ones parse."""

from __future__ import annotations

import base64
import hashlib

import orjson
import pytest

from streamrec.config import KafkaSettings, ValidationSettings
from streamrec.stream.topics import (
    ClickEvent,
    ClickType,
    DeadLetter,
    DeadLetterLimits,
    bounded_dead_letter,
    without_original,
)
from streamrec.stream.validate import ClickValidator, Reason, Rejection, dead_letter

NOW = 1_800_000_000.0
VALIDATOR = ClickValidator(ValidationSettings())
LIMITS = DeadLetterLimits.within(KafkaSettings().dlq_max_original_bytes, KafkaSettings().max_message_bytes)
GOOD = {"event_id": "e1", "session_id": "s1", "user_id": "u1", "item_id": "i1", "ts": NOW - 5, "type": "add_to_cart"}


def body(**changes: object) -> bytes:
    doc = {**GOOD, **changes}
    return orjson.dumps({k: v for k, v in doc.items() if v is not ...})


def test_valid_click_parses() -> None:
    click = VALIDATOR.parse(b"u1", body(), NOW)
    assert click == ClickEvent(event_id="e1", session_id="s1", user_id="u1", item_id="i1", ts=NOW - 5,
                               type=ClickType.add_to_cart)


def test_anonymous_click_is_keyed_by_session_and_type_defaults_to_view() -> None:
    click = VALIDATOR.parse(b"s1", body(user_id=None, type=..., ts=int(NOW)), NOW)
    assert isinstance(click, ClickEvent)
    assert click.type is ClickType.view and click.ts == NOW


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"u1", None, Reason.empty_payload),
        (b"u1", b"", Reason.empty_payload),
        (b"u1", body(item_id="x" * 100) + b" " * 5000, Reason.oversized_payload),
        (b"u1", b"\xff\xfe{}", Reason.not_utf8),
        (b"u1", b'{"event_id": ', Reason.not_json),
        (b"u1", body()[:-1] + b',"x":"\\ud800"}', Reason.not_json),
        (b"u1", b'{"event_id":"e1","session_id":"s1","user_id":"u1","item_id":"i1","ts":NaN}',
         Reason.non_finite_number),
        (b"u1", b'{"event_id":"e1","session_id":"s1","user_id":"u1","item_id":"i1","ts":1e999}',
         Reason.non_finite_number),
        (b"u1", b'{"event_id":"e1","session_id":"s1","user_id":"u1","item_id":"i1","ts":-Infinity}',
         Reason.non_finite_number),
        (b"u1", b'"just a string"', Reason.not_an_object),
        (b"u1", body(item_id=...), Reason.missing_field),
        (b"u1", body(ts=...), Reason.missing_field),
        (b"u1", body(price=9.5), Reason.unknown_field),
        (b"u1", body(item_id=42), Reason.wrong_type),
        (b"u1", body(ts="1800000000"), Reason.wrong_type),
        (b"u1", body(ts=True), Reason.wrong_type),
        (b"u1", body(type=["view"]), Reason.wrong_type),
        (b"u1", body(event_id=""), Reason.empty_id),
        (b"u1", body(session_id="   "), Reason.empty_id),
        (b"", body(user_id=""), Reason.empty_id),
        (b"u1", body(item_id="i" * 129), Reason.id_too_long),
        (b"u1", body(ts=0), Reason.ts_out_of_range),
        (b"u1", body(ts=NOW + 2 * 86400), Reason.ts_out_of_range),
        (b"u1", body(type="hover"), Reason.unknown_click_type),
        (b"s1", body(), Reason.key_mismatch),
        (None, body(), Reason.key_mismatch),
    ],
)
def test_malformed_records_are_rejected_with_their_reason(key: bytes | None, value: bytes | None,
                                                          reason: Reason) -> None:
    rejection = VALIDATOR.parse(key, value, NOW)
    assert isinstance(rejection, Rejection)
    assert rejection.reason is reason, rejection.detail
    assert rejection.detail


def test_limits_come_from_settings() -> None:
    strict = ClickValidator(ValidationSettings(max_id_chars=2, max_payload_bytes=4096))
    assert isinstance(strict.parse(b"u1", body(), NOW), ClickEvent)
    assert strict.parse(b"u1", body(item_id="abc"), NOW) == Rejection(Reason.id_too_long, "item_id has 3 chars > 2")


def test_dead_letter_carries_reason_and_original_bytes() -> None:
    raw_key, raw_value = b"\x00k", b"\xff not json"
    rejection = VALIDATOR.parse(raw_key, raw_value, NOW)
    assert isinstance(rejection, Rejection)
    letter = dead_letter(rejection, raw_key, raw_value, NOW, LIMITS, source_topic="t.clicks", partition=1, offset=42)
    assert letter.reason == "not_utf8" and not letter.truncated
    assert base64.b64decode(letter.original_b64) == raw_value
    assert (letter.original_size, letter.original_sha256) == (len(raw_value), hashlib.sha256(raw_value).hexdigest())
    assert letter.original_key_b64 is not None and base64.b64decode(letter.original_key_b64) == raw_key
    assert (letter.source_topic, letter.source_partition, letter.source_offset,
            letter.ts_dead) == ("t.clicks", 1, 42, NOW)



def test_dead_letters_of_huge_records_are_cut_to_fit_with_size_and_hash() -> None:
    key, value = b"k" * 300_000, b"v" * 2_000_000
    letter = bounded_dead_letter("oversized_payload", "d" * 5000, key, value, NOW, LIMITS, partition=0, offset=1)
    assert letter.truncated and len(letter.detail) == 500
    assert base64.b64decode(letter.original_b64) == value[:LIMITS.max_original_bytes]
    assert base64.b64decode(letter.original_key_b64 or "") == key[:LIMITS.max_original_bytes]
    assert (letter.original_size, letter.original_key_size) == (len(value), len(key))
    assert letter.original_sha256 == hashlib.sha256(value).hexdigest()
    assert len(letter.model_dump_json()) <= LIMITS.max_record_bytes


def test_dead_letters_fit_whatever_the_limits() -> None:
    tight = DeadLetterLimits(max_original_bytes=1_000_000, max_record_bytes=20_000)
    letter = bounded_dead_letter("r", "detail", b"k" * 50_000, b"v" * 50_000, NOW, tight)
    assert letter.truncated and len(letter.model_dump_json()) <= 20_000
    assert base64.b64decode(letter.original_b64) == b"v" * len(base64.b64decode(letter.original_b64))
    stripped = without_original(letter, "the broker refused it")
    assert stripped.original_b64 == "" and stripped.original_key_b64 is None and stripped.truncated
    assert stripped.original_sha256 == letter.original_sha256 and "the broker refused it" in stripped.detail


def test_old_dead_letters_still_parse() -> None:
    old = DeadLetter.model_validate_json(b'{"reason": "not_json", "detail": "x", "original_b64": "", "ts_dead": 1.0}')
    assert old.original_size is None and not old.truncated
