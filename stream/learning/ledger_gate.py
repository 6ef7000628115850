"""Learning a batch of scoring requests exactly once per set of statistics.

Each scorer's statistics carry a ledger (`models.scorer.learning_ledger`): learned event_ids and
per-partition learned-offset watermarks, persisted atomically with the counts. A click is
given to a scorer's `observe` only if its ledger has not seen it, and marked right after. A
scorer without a ledger of its own (in-memory statistics, frozen models) gets one here, in
memory: it starts empty after a restart, as do its statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from confluent_kafka import Message

from streamrec.models.scorer import ObservesPositions, Scorer, learning_ledger
from streamrec.state.learned import LearnedLedger
from streamrec.stream import metrics
from streamrec.stream.topics import ScoringRequest

log = logging.getLogger(__name__)


def source_name(topic: str, partition: int) -> str:
    """How a ledger names a partition (its watermark key)."""
    return f"{topic}:{partition}"


class LedgerGate:
    """The once-only gate before `observe`: feeds each scorer the clicks of a batch its ledger has not seen yet."""

    def __init__(self, ids_kept: int) -> None:
        self._ids_kept = ids_kept
        self._in_memory: dict[int, LearnedLedger] = {}

    def ledger(self, scorer: Scorer) -> LearnedLedger:
        """The scorer's own (persisted) ledger, else an in-memory one kept here."""
        own = learning_ledger(scorer)
        if own is not None:
            return own
        return self._in_memory.setdefault(id(scorer), LearnedLedger(self._ids_kept))

    def durable_watermark(self, scorers: Sequence[Scorer], topic: str, partition: int) -> tuple[bool, int | None]:
        """(any scorer persists what it learns, the lowest learned-offset watermark among those that do).

        None as the watermark: some persisted statistics have learned nothing of this partition.
        """
        ledgers = [own for own in map(learning_ledger, scorers) if own is not None and own.durable]
        if not ledgers:
            return False, None
        marks = [ledger.watermark(source_name(topic, partition)) for ledger in ledgers]
        return True, None if any(m is None for m in marks) else min(m for m in marks if m is not None)

    def learn(self, scorers: Sequence[Scorer], requests: Sequence[ScoringRequest], sources: Sequence[Message]) -> int:
        """Give each scorer the requests its ledger has not seen; returns how many the first scorer learned.

        Learning is best effort: a scorer whose `observe` raises is counted and logged, the
        batch is still answered (and its clicks are not marked learned).
        """
        learned_by_first = 0
        for position, scorer in enumerate(scorers):
            ledger = self.ledger(scorer)
            fresh: list[tuple[ScoringRequest, str, int]] = []
            fresh_messages: list[Message] = []
            batch_ids: set[str] = set()
            for request, message in zip(requests, sources):
                source, offset = source_name(message.topic(), message.partition()), message.offset()
                if request.event_id in batch_ids or ledger.seen(request.event_id, source, offset):
                    if position == 0:
                        metrics.CLICKS_NOT_RELEARNED.inc()
                    continue
                batch_ids.add(request.event_id)
                fresh.append((request, source, offset))
                fresh_messages.append(message)
            if not fresh:
                continue
            try:
                sessions = [request.session_items for request, _, _ in fresh]
                if isinstance(scorer, ObservesPositions):  # a scorer that wants each click's partition/offset
                    scorer.observe_at(sessions, [(message.partition(), message.offset()) for message in fresh_messages])
                else:
                    scorer.observe(sessions)
            except Exception:
                metrics.SCORER_ERRORS.inc()
                log.exception("%s.observe failed on %d sessions", scorer.name, len(fresh))
                continue
            for request, source, offset in fresh:
                ledger.mark(request.event_id, source, offset)
            if position == 0:
                learned_by_first = len(fresh)
        return learned_by_first
