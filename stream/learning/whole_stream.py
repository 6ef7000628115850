"""Whole-stream learning: every scoring instance learns every partition, while answering only its own.

Kafka's consumer group gives each scoring process its share of `scoring-requests` to answer. Learning
only from those would leave each of N processes with about 1/N of the co-occurrence evidence, and 2 workers
answer measurably worse than one (bench/scaleout.py: docs/benchmarks.md, "Scale-out"). So beside the
answering consumer, each scoring stage keeps a *learning reader*: a consumer outside every group
(`assign`, never commits) that reads the partitions this process does not answer and feeds them to the
same once-only `LedgerGate` (ledger: state/learned.py). Partitions this process answers are learned on the
answering path, right after their batch is answered, as before: no answer ever sees the click it is
judged on.

Hand-overs keep every partition learned exactly once and in order:

- `position[p]` is the next offset of partition p learned (by either path).
- A partition the group assigns to this process leaves the reader. If the reader had not reached the
  offset the answering consumer starts at (the group's committed offset), the missing range is read
  and learned first (`fill`), before anything of that partition is answered.
- The reader learns a record only once the group's committed offset of its partition is past it, i.e. once
  its owner answered it (and committed): a record is never learned anywhere before its answer exists, so a
  partition taken over after its owner died is answered from statistics that have not seen what comes
  next (without this limit, a survivor's reader learned the dead owner's new records while the group had
  not noticed yet, then answered them: the kill run of bench/scaleout.py scored above one worker, a
  prequential leak; docs/benchmarks.md, "Scale-out"). It lags the owner by about `scoring.commit_interval_ms`.
- A partition no longer assigned to this process joins the reader at `position[p]`. Nothing is read
  before the group's first assignment (everything read then would be learned ahead of its answer).
- What a partition's previous owner answered past its last commit is answered again here (at least
  once), from statistics that have not learned it either: the reader stops at the group's commits.

Memory: every process holds the whole model's statistics (docs/deployment.md, sizing).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import ValidationError

from streamrec.config import Settings
from streamrec.models.scorer import Scorer
from streamrec.stream.clients.gaps import GapGuard
from streamrec.stream.kafka import build_consumer, consumer_config, reader_group
from streamrec.stream.learning.ledger_gate import LedgerGate, source_name
from streamrec.stream.topics import ScoringRequest

log = logging.getLogger(__name__)

_METADATA_TIMEOUT_S = 10.0
LEARNING_STAGE = "learning"
"""Label of the learning reader in `streamrec_offset_gaps_total`."""


def decode_requests(messages: Iterable[Message]) -> tuple[list[ScoringRequest], list[Message]]:
    """The scoring requests among `messages` (what does not decode was dead-lettered by its answering stage)."""
    requests: list[ScoringRequest] = []
    sources: list[Message] = []
    for message in messages:
        try:
            request = ScoringRequest.model_validate_json(message.value() or b"")
        except ValidationError:
            continue
        if request.session_items:
            requests.append(request)
            sources.append(message)
    return requests, sources


class WholeStreamReader:
    """The learning reader of one scoring stage: learns the partitions the stage does not answer."""

    def __init__(self, settings: Settings, topic: str, gate: LedgerGate) -> None:
        self.topic = topic
        self._gate = gate
        self._batch = settings.scoring.batch_max_size
        self._settings = settings
        self.position: dict[int, int] = {}
        """partition -> next offset learned; a partition missing here starts at the log's beginning."""
        self.own: set[int] = set()
        self.partitions: list[int] = []
        self.learned = 0
        """Clicks the first scorer learned through the reader (not through answering)."""
        self.guard = GapGuard(LEARNING_STAGE)
        self.limit: dict[int, int] = {}
        """partition -> the answering group's committed offset: what lies below was answered (and is learned here)."""
        self._held: dict[int, int] = {}
        """Partitions paused at an offset not committed by their answerer yet."""
        self._limits_at = 0.0
        self._limit_every_s = max(0.1, settings.scoring.commit_interval_ms / 2000)
        self._group: Consumer | None = None
        """Reads the answering group's committed offsets (never subscribes, so it never joins the group)."""
        self._consumer = build_consumer(settings.kafka, reader_group(settings, "learn"), {  # never joins nor commits
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **consumer_config(settings),
        })

    def start(self, group: str, scorers: Sequence[Scorer]) -> None:
        """Where each partition's learning stands: the statistics' watermark, or the group's commits past it.

        Nothing is read until the group's first assignment says which partitions are this process's to answer
        (`rebalanced`): read before that, they would be learned ahead of their answers."""
        metadata = self._consumer.list_topics(self.topic, timeout=_METADATA_TIMEOUT_S).topics.get(self.topic)
        if metadata is None or metadata.error is not None:
            return
        self.partitions = sorted(metadata.partitions)
        self.own = set(self.partitions)
        self._group = build_consumer(self._settings.kafka, group, {"enable.auto.commit": False})
        committed = {tp.partition: tp.offset for tp in self._group.committed(
            [TopicPartition(self.topic, p) for p in self.partitions], timeout=_METADATA_TIMEOUT_S)}
        for partition in self.partitions:
            marks = [self._gate.ledger(s).watermark(source_name(self.topic, partition)) for s in scorers]
            known = [m for m in (marks[0] if marks else None, committed.get(partition, -1)) if m is not None and m >= 0]
            if known:
                self.position[partition] = max(known)

    def _assign(self, partitions: Iterable[int]) -> None:
        wanted = []
        for partition in partitions:
            offset = self.position.get(partition)
            if offset is None:
                offset = self._low(partition)
            self.guard.expect(self.topic, partition, offset)
            wanted.append(TopicPartition(self.topic, partition, offset if offset >= 0 else OFFSET_BEGINNING))
        if wanted:
            self._consumer.incremental_assign(wanted)

    def _low(self, partition: int) -> int:
        low, _ = self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition),
                                                      timeout=_METADATA_TIMEOUT_S)
        return int(low)

    def rebalanced(self, mine: Iterable[int], starts: dict[int, int],
                   fill: Callable[[dict[int, tuple[int, int]]], None]) -> None:
        """The group's new assignment: this process answers `mine` from `starts` (their committed offsets).

        Newly answered partitions leave the reader, after `fill` learned whatever lies between what was learned
        of them and where answering starts; partitions no longer answered here join the reader where their
        learning stands. (A revocation alone changes nothing: with eager rebalancing the new assignment follows.)"""
        mine = set(mine)
        if not self.partitions:  # the topic did not exist at start
            self.own = mine
            return
        taken, freed = mine - self.own, self.own - mine
        if taken:
            self._consumer.incremental_unassign([TopicPartition(self.topic, p) for p in taken])
            self.guard.forget((self.topic, p) for p in taken)
            for partition in taken:
                self._held.pop(partition, None)
        self.own = mine
        behind = {p: (self.position.get(p, 0), starts[p]) for p in taken if starts.get(p, -1) > self.position.get(p, 0)}
        if behind:
            log.info("learning what precedes the newly answered partitions first: %s",
                     ", ".join(f"{p}: offsets {a}..{b - 1}" for p, (a, b) in sorted(behind.items())))
            fill(behind)
            for partition, (_, end) in behind.items():
                self.note(partition, end - 1)
        self._assign(sorted(freed))
        self._limits_at = 0.0  # read the commits of the partitions now read here at the next poll

    def note(self, partition: int, offset: int) -> None:
        """The record at `offset` of `partition` was learned (or passed over) by the answering path."""
        if offset + 1 > self.position.get(partition, -1):
            self.position[partition] = offset + 1

    def _refresh_limits(self) -> None:
        """Read the group's committed offsets of the partitions others answer (at most every `_limit_every_s`)."""
        now = time.monotonic()
        if now < self._limits_at or self._group is None:
            return
        self._limits_at = now + self._limit_every_s
        others = [TopicPartition(self.topic, p) for p in self.partitions if p not in self.own]
        if not others:
            return
        try:
            committed = self._group.committed(others, timeout=_METADATA_TIMEOUT_S)
        except KafkaException as exc:
            log.warning("learning reader: could not read the group's committed offsets (%s)", exc)
            return
        for tp in committed:
            self.limit[tp.partition] = max(tp.offset, self.limit.get(tp.partition, 0))
        for partition, held_at in list(self._held.items()):
            if partition in self.own:
                del self._held[partition]
            elif self.limit.get(partition, 0) > held_at:
                del self._held[partition]
                self._consumer.resume([TopicPartition(self.topic, partition)])

    def _hold(self, partition: int, offset: int) -> None:
        """Stop reading `partition` at `offset` (not answered and committed yet) until the group's commits pass it."""
        tp = TopicPartition(self.topic, partition, offset)
        self._consumer.pause([tp])
        self._consumer.seek(tp)
        self.guard.expect(self.topic, partition, offset)
        self._held[partition] = offset

    def poll(self, scorers: Sequence[Scorer]) -> int:
        """Learn what the reader has fetched (no wait) up to the group's commits; the number of records learned."""
        self._refresh_limits()
        messages = self._consumer.consume(self._batch, 0)
        if not messages:
            return 0
        admitted = []
        for message in self.guard.admit(messages):
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("learning reader: %s", error)
                continue
            partition = message.partition()
            if partition in self.own or partition in self._held:  # the answering path learns it / read again later
                continue
            if message.offset() >= self.limit.get(partition, 0):
                self._hold(partition, message.offset())
                continue
            admitted.append(message)
        for (topic, partition), offset in self.guard.take_reseeks().items():
            if partition not in self._held:
                self._consumer.seek(TopicPartition(topic, partition, offset))
        requests, sources = decode_requests(admitted)
        if requests:
            self.learned += self._gate.learn(scorers, requests, sources)
        for message in admitted:
            self.note(message.partition(), message.offset())
        return len(admitted)

    def close(self) -> None:
        self._consumer.close()
        if self._group is not None:
            self._group.close()
