"""The API's local RocksDB table: the latest recommendation per (session, scorer) and per (user, scorer).

Every `streamrec serve` instance keeps its own copy of the whole `recommendations` topic's
latest answers (the topic is keyed by session, so any partition split would leave an
instance unable to answer most sessions). The next offset of each partition is written in
the same atomic batch as the records it covers, so a restarted instance resumes where it
stopped and a crash never loses or double-applies a record. Records arrive at least once
and, across partitions, out of order: an answer only replaces a stored one for a later
click (`ts_event`, then `ts_emitted`), so a redelivered older answer never wins.

Several scorers write to the topic (a primary and shadow scorers, each in its own scoring
group), so every answer is stored under its scorer: the shadow's never hide the primary's.
Values are the record's bytes as produced: a lookup returns them without re-encoding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import orjson
from rocksdict import Options, Rdict, WriteBatch

from streamrec.state.rocks import raw_keys

_SEP = "\x00"
"""Separates key parts; ids are JSON strings checked to hold no NUL (see `decode_recommendation`)."""


@dataclass(frozen=True)
class StoredAnswer:
    """The fields of a `recommendations` record the API files and judges it by (the bytes are kept whole)."""

    session_id: str
    user_id: str | None
    event_id: str
    scorer: str
    model_version: str
    item_ids: tuple[str, ...]
    ts_event: float
    ts_emitted: float
    raw: bytes

    @property
    def order(self) -> tuple[float, float]:
        """Which of two answers for one session is the latest: the later click, then the later emission."""
        return (self.ts_event, self.ts_emitted)


def _is_id(value: object) -> bool:
    return type(value) is str and value != "" and _SEP not in value


def decode_recommendation(value: bytes | None) -> StoredAnswer:
    """The answer in a `recommendations` record; ValueError saying why when it is not one."""
    try:
        doc = orjson.loads(value or b"")
        answer = StoredAnswer(
            session_id=doc["session_id"], user_id=doc["user_id"], event_id=doc["event_id"], scorer=doc["scorer"],
            model_version=doc["model_version"], item_ids=tuple(item["item_id"] for item in doc["items"]),
            ts_event=float(doc["ts_event"]), ts_emitted=float(doc["ts_emitted"]), raw=bytes(value or b""),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a recommendation: {type(exc).__name__}: {exc}") from exc
    if not all(_is_id(f) for f in (answer.session_id, answer.event_id, answer.scorer)):
        raise ValueError("not a recommendation: session_id, event_id and scorer must be non-empty strings")
    if answer.user_id is not None and not _is_id(answer.user_id):
        raise ValueError("not a recommendation: user_id must be null or a non-empty string")
    if type(answer.model_version) is not str or not all(type(i) is str for i in answer.item_ids):
        raise ValueError("not a recommendation: model_version and item ids must be strings")
    if not (math.isfinite(answer.ts_event) and math.isfinite(answer.ts_emitted)):
        raise ValueError("not a recommendation: ts_event and ts_emitted must be finite")
    return answer


def _session_key(session_id: str, scorer: str) -> bytes:
    return f"s{_SEP}{session_id}{_SEP}{scorer}".encode()


def _user_key(user_id: str, scorer: str) -> bytes:
    return f"u{_SEP}{user_id}{_SEP}{scorer}".encode()


def _offset_key(topic: str, partition: int) -> bytes:
    return f"o{_SEP}{topic}{_SEP}{partition}".encode()


def _order(raw: bytes) -> tuple[float, float]:
    doc = orjson.loads(raw)
    return (float(doc["ts_event"]), float(doc["ts_emitted"]))


class RecommendationStore:
    """Latest answers by session and by user, per scorer, plus the consumed offsets, in one RocksDB."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        try:
            self._db = Rdict(str(path), options)
        except Exception as exc:  # rocksdict raises a plain Exception on a held lock
            raise RuntimeError(f"cannot open the API store at {path} ({exc}); is another `streamrec serve` "
                               "using it? Give each instance its own --port or state.dir") from exc

    def apply(self, answers: list[StoredAnswer], offsets: dict[tuple[str, int], int]) -> int:
        """Keep each answer that is newer than the stored one, record `offsets` (next to read); atomically.

        Returns how many answers were kept."""
        latest: dict[bytes, StoredAnswer] = {}
        for answer in answers:
            keys = [_session_key(answer.session_id, answer.scorer)]
            if answer.user_id is not None:
                keys.append(_user_key(answer.user_id, answer.scorer))
            for key in keys:
                held = latest.get(key)
                if held is None or answer.order >= held.order:
                    latest[key] = answer
        batch = WriteBatch(raw_mode=True)
        kept = 0
        for key, answer in latest.items():
            stored = self._db.get(key)
            if stored is None or answer.order >= _order(stored):
                batch.put(key, answer.raw)
                kept += key.startswith(b"s")
        for (topic, partition), offset in offsets.items():
            batch.put(_offset_key(topic, partition), str(offset).encode())
        self._db.write(batch)
        return kept

    def offset(self, topic: str, partition: int) -> int | None:
        """The next offset to read of `topic`'s `partition`, or None when this store never read it."""
        raw = self._db.get(_offset_key(topic, partition))
        return None if raw is None else int(raw)

    def session(self, session_id: str, scorer: str) -> bytes | None:
        """The latest answer `scorer` gave for `session_id` (the record's JSON bytes), or None."""
        return self._db.get(_session_key(session_id, scorer))

    def user(self, user_id: str, scorer: str) -> bytes | None:
        """The latest answer `scorer` gave for any session of `user_id`, or None."""
        return self._db.get(_user_key(user_id, scorer))

    def scorers_of(self, kind: str, ident: str) -> list[str]:
        """Scorers with an answer for the session (kind "s") or user (kind "u") `ident`."""
        prefix = f"{kind}{_SEP}{ident}{_SEP}".encode()
        found = []
        for key in raw_keys(self._db, prefix):
            if not key.startswith(prefix):
                break
            found.append(key[len(prefix):].decode())
        return found

    def close(self) -> None:
        self._db.close()
