"""No silent gaps: a consumer that must see every record notices an offset it skipped, re-reads it, counts it.

Within one partition offsets are consecutive on the topics streamrec reads (none is compacted or
transactional), so a record whose offset is past the next one expected means records were skipped:
the embedded Tansu broker's fetch answers do this now and then at short fetch waits
(bench/tansu_fetch_skips.py). `GapGuard` sits between a consumer and the code handling its records:

- `admit(messages)` returns the records to handle, in order. At a gap it drops the partition's records
  from the gap on and asks for a re-seek to the first missing offset (`reseeks`, which the owner applies
  with `Consumer.seek` or `assign`): the next fetch brings the skipped records, then the rest again.
  Records below the expected offset (a re-read after a re-seek) are dropped as already handled.
- A gap is counted once, when it is settled: `refetched` when the re-read brought the missing offset
  (the broker had the records and skipped them in a fetch answer: the embedded broker's behaviour), or
  `absent` after `max_reseeks` re-reads that jumped past it again (the offsets are not in the log;
  the records are then given up on, with a warning line).
  Counter: `streamrec_offset_gaps_total{stage,outcome}` (docs/operations.md).
- Where it starts reading is the owner's to say (`expect`, at every assignment); a partition it was
  not told about starts at its first record. `forget` drops a partition (revoked).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from confluent_kafka import Message
from prometheus_client import Counter

log = logging.getLogger(__name__)

OFFSET_GAPS = Counter(
    "streamrec_offset_gaps_total",
    "Offset gaps within a partition a consumer that must see every record noticed, by stage and how they were settled "
    "(refetched: a re-read returned the skipped records; absent: they are not in the log).",
    ["stage", "outcome"],
)
REFETCHED = "refetched"
ABSENT = "absent"
UNFILLED = "unfilled"
"""Seen by a consumer that cannot re-read (the stateful stage's engine consumer): counted and logged only."""
DEFAULT_MAX_RESEEKS = 3


@dataclass
class _Pending:
    """A gap seen and re-sought, not settled yet."""

    missing_from: int
    seen_at: int
    reseeks: int = 1


@dataclass
class GapGuard:
    """Per-partition next expected offset of one consumer; see the module docstring."""

    stage: str
    max_reseeks: int = DEFAULT_MAX_RESEEKS
    topics: frozenset[str] | None = None
    """Only these topics are watched (None: all); records of others pass through (e.g. a compacted topic)."""
    expected: dict[tuple[str, int], int] = field(default_factory=dict)
    reseeks: dict[tuple[str, int], int] = field(default_factory=dict)
    """(topic, partition) -> offset to seek to before the next fetch; the owner applies and clears it."""
    _pending: dict[tuple[str, int], _Pending] = field(default_factory=dict)
    settled: dict[str, int] = field(default_factory=lambda: {REFETCHED: 0, ABSENT: 0})
    """Gaps settled by this guard, by outcome (the process-wide counter sums every guard of a stage)."""

    def expect(self, topic: str, partition: int, offset: int) -> None:
        """The next record of the partition should be at `offset` (an assignment or a seek of the owner's)."""
        if offset >= 0:
            self.expected[(topic, partition)] = offset
        else:
            self.expected.pop((topic, partition), None)
        self._pending.pop((topic, partition), None)
        self.reseeks.pop((topic, partition), None)

    def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        for key in partitions:
            self.expected.pop(key, None)
            self._pending.pop(key, None)
            self.reseeks.pop(key, None)

    def admit(self, messages: Sequence[Message]) -> list[Message]:
        """The records to handle, in order; gaps become re-seeks (records with errors pass through untouched)."""
        admitted: list[Message] = []
        blocked: set[tuple[str, int]] = set()
        for message in messages:
            if message.error() is not None or self.topics is not None and message.topic() not in self.topics:
                admitted.append(message)
                continue
            key, offset = (message.topic(), message.partition()), message.offset()
            if key in blocked:
                continue
            expected = self.expected.get(key)
            if expected is None or offset == expected:
                self._settle(key, offset, REFETCHED)
                self.expected[key] = offset + 1
                admitted.append(message)
            elif offset < expected:
                continue  # read again after a re-seek: handled already
            elif self._gap(key, expected, offset):
                blocked.add(key)
            else:  # given up on: the offsets are not there
                self.expected[key] = offset + 1
                admitted.append(message)
        return admitted

    def _gap(self, key: tuple[str, int], expected: int, offset: int) -> bool:
        """A record at `offset` where `expected` was due: True to re-seek, False to give the missing ones up."""
        pending = self._pending.get(key)
        if pending is None or pending.missing_from != expected:
            self._pending[key] = _Pending(expected, offset)
        elif pending.reseeks >= self.max_reseeks:
            self._settle(key, offset, ABSENT)
            return False
        else:
            pending.reseeks += 1
        log.info("%s: %s[%d] jumped from offset %d to %d; re-reading the skipped records", self.stage, key[0], key[1],
                 expected, offset)
        self.reseeks[key] = expected
        return True

    def _settle(self, key: tuple[str, int], offset: int, outcome: str) -> None:
        pending = self._pending.get(key)
        if pending is None or outcome == REFETCHED and offset != pending.missing_from:
            return
        del self._pending[key]
        if outcome == ABSENT:
            log.warning("%s: %s[%d] offsets %d..%d are not in the log after %d re-reads; going on without them",
                        self.stage, key[0], key[1], pending.missing_from, offset - 1, pending.reseeks)
        OFFSET_GAPS.labels(self.stage, outcome).inc()
        self.settled[outcome] += 1

    def see(self, topic: str, partition: int, offset: int) -> None:
        """Detection only, for a consumer that cannot seek back (an engine's): a jump is counted and logged."""
        key = (topic, partition)
        expected = self.expected.get(key)
        if expected is not None and offset > expected:
            log.error("%s: %s[%d] jumped from offset %d to %d: records %d..%d were skipped by the fetch and are not "
                      "processed", self.stage, topic, partition, expected, offset, expected, offset - 1)
            OFFSET_GAPS.labels(self.stage, UNFILLED).inc()
            self.settled[UNFILLED] = self.settled.get(UNFILLED, 0) + 1
        if expected is None or offset >= expected:
            self.expected[key] = offset + 1

    def take_reseeks(self) -> dict[tuple[str, int], int]:
        """The re-seeks to apply now (cleared)."""
        reseeks, self.reseeks = self.reseeks, {}
        return reseeks
