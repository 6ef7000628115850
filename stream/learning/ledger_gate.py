"""Learning a batch of scoring requests exactly once per set of statistics.

Each scorer's statistics carry a ledger (`models.scorer.learning_ledger`): learned event_ids and
per-partition learned-offset watermarks, persisted atomically with the counts. A click is
given to a scorer's `observe` only if its ledger has not seen it, and marked right after. A
scorer without a ledger of its own (in-memory statistics, frozen models) gets one here, in
memory: it starts empty after a restart, as do its statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from confluent_kafka import Message

from streamrec.models.scorer import ObservesPositions, Scorer, learning_ledger
from streamrec.state.learned import LearnedLedger
from streamrec.stream import metrics
from streamrec.stream.topics import ScoringRequest

log = logging.getLogger(__name__)
R = TypeVar("R")


def source_name(topic: str, partition: int) -> str:
    """How a ledger names a partition (its watermark key)."""
    return f"{topic}:{partition}"


def learned_after_answering(requests: Sequence[ScoringRequest]) -> list[bool]:
    """Which requests of a batch are learned only after the batch is answered: those whose session has an
    earlier request in the batch.

    Every other click is known when the batch is answered (it arrived before), so it is learned first: the
    answer to a click sees that click (a brand-new item can be recommended back at once, its transition
    counts). A later click of the same session is the target an earlier request of the batch is judged on;
    a replay faster than people click puts both in one batch, and learning it first would leak it.
    """
    seen: set[str] = set()
    after = []
    for request in requests:
        after.append(request.session_id in seen)
        seen.add(request.session_id)
    return after


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
        """Give each scorer the requests its ledger has not seen; returns how many the first scorer learned."""
        learned, _ = self.learn_around(scorers, requests, sources, [False] * len(requests), lambda: None)
        return learned

    def learn_around(
        self, scorers: Sequence[Scorer], requests: Sequence[ScoringRequest], sources: Sequence[Message],
        after: Sequence[bool], answer: Callable[[], R],
    ) -> tuple[int, R]:
        """Learn the requests not flagged `after`, call `answer`, learn the flagged ones; (learned by the first
        scorer, what `answer` returned).

        What each ledger has seen is decided once, for the whole batch, and the clicks are marked learned only
        when both parts are: a ledger's offset watermark moves in offset order, so a click of the second part
        must not look learned because the first part held a later offset of its partition.
        Learning is best effort: a scorer whose `observe` raises is counted and logged, the batch is still
        answered (and that part's clicks are not marked learned).
        """
        fresh = [self._fresh(scorer, position == 0, requests, sources) for position, scorer in enumerate(scorers)]
        learned: list[list[int]] = [[] for _ in scorers]

        def observe(part: bool) -> None:
            for scorer, chosen, done in zip(scorers, fresh, learned):
                indices = [n for n in chosen if after[n] == part]
                if indices and self._observe(scorer, [requests[n] for n in indices], [sources[n] for n in indices]):
                    done += indices

        observe(False)
        result = answer()
        observe(True)
        for scorer, done in zip(scorers, learned):
            ledger = self.ledger(scorer)
            for n in sorted(done):
                message = sources[n]
                ledger.mark(requests[n].event_id, source_name(message.topic(), message.partition()), message.offset())
        return len(learned[0]) if learned else 0, result

    def _fresh(self, scorer: Scorer, count_skips: bool, requests: Sequence[ScoringRequest],
               sources: Sequence[Message]) -> list[int]:
        """Indices of the requests `scorer`'s ledger has not seen (each event_id once per batch)."""
        ledger = self.ledger(scorer)
        fresh: list[int] = []
        batch_ids: set[str] = set()
        for n, (request, message) in enumerate(zip(requests, sources)):
            if request.event_id in batch_ids or ledger.seen(
                request.event_id, source_name(message.topic(), message.partition()), message.offset()
            ):
                if count_skips:
                    metrics.CLICKS_NOT_RELEARNED.inc()
                continue
            batch_ids.add(request.event_id)
            fresh.append(n)
        return fresh

    @staticmethod
    def _observe(scorer: Scorer, requests: Sequence[ScoringRequest], messages: Sequence[Message]) -> bool:
        """`observe` (with positions for a scorer that wants them); False when it raised."""
        try:
            sessions = [request.session_items for request in requests]
            if isinstance(scorer, ObservesPositions):  # a scorer that wants each click's partition/offset
                scorer.observe_at(sessions, [(message.partition(), message.offset()) for message in messages])
            else:
                scorer.observe(sessions)
        except Exception:
            metrics.SCORER_ERRORS.inc()
            log.exception("%s.observe failed on %d sessions", scorer.name, len(requests))
            return False
        return True
