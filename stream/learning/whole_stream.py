"""Whole-stream learning: every scoring instance learns every partition, while answering only its own.

Kafka's consumer group gives each scoring process its share of `scoring-requests` to answer. Learning
only from those would leave each of N processes with about 1/N of the co-occurrence evidence (issue 19:
2 workers HR@20 0.6726 against 0.7061 for one). So beside the answering consumer, each scoring stage
keeps a *learning reader*: a consumer outside every group (`assign`, never commits) that reads the
partitions this process does not answer and feeds them to the same once-only `Learner` (ledger:
state/learned.py). Partitions this process answers are learned on the answering path, right after
their batch is answered, as before: no answer ever sees the click it is judged on.

Hand-overs keep every partition learned exactly once and in order:

- `position[p]` is the next offset of partition p learned (by either path).
- A partition the group assigns to this process leaves the reader. If the reader had not reached the
  offset the answering consumer starts at (the group's committed offset), the missing range is read
  and learned first (`fill`), before anything of that partition is answered.
- A partition no longer assigned to this process joins the reader at `position[p]`. Nothing is read
  before the group's first assignment (everything read then would be learned ahead of its answer).
- What a partition's previous owner answered past its last commit is answered again here (at least
  once); those answers may come from statistics that already learned the click (the reader was ahead):
  a rebalance costs a few seconds of prequential honesty on the moved partitions, nothing more.

Memory: every process holds the whole model's statistics (docs/deployment.md, sizing).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from pydantic import ValidationError

from streamrec.config import Settings
from streamrec.models.scorer import Scorer
from streamrec.stream.clients.gaps import GapGuard
from streamrec.stream.learning.learner import Learner, source_name
from streamrec.stream.stages.engines.common import consumer_config
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

    def __init__(self, settings: Settings, topic: str, learner: Learner) -> None:
        self.topic = topic
        self._learner = learner
        self._batch = settings.scoring.batch_max_size
        self._settings = settings
        self.position: dict[int, int] = {}
        """partition -> next offset learned; a partition missing here starts at the log's beginning."""
        self.own: set[int] = set()
        self.partitions: list[int] = []
        self.learned = 0
        """Clicks the first scorer learned through the reader (not through answering)."""
        self.guard = GapGuard(LEARNING_STAGE)
        self._consumer = Consumer({
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"{settings.kafka.consumer_group}-learn-{uuid.uuid4().hex[:8]}",  # never joins nor commits
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
        probe = Consumer({"bootstrap.servers": self._settings.kafka.bootstrap_servers, "group.id": group,
                          "enable.auto.commit": False})
        try:
            committed = {tp.partition: tp.offset for tp in probe.committed(
                [TopicPartition(self.topic, p) for p in self.partitions], timeout=_METADATA_TIMEOUT_S)}
        finally:
            probe.close()
        for partition in self.partitions:
            marks = [self._learner.ledger(s).watermark(source_name(self.topic, partition)) for s in scorers]
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
        low, _ = self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=_METADATA_TIMEOUT_S)
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
        self.own = mine
        behind = {p: (self.position.get(p, 0), starts[p]) for p in taken if starts.get(p, -1) > self.position.get(p, 0)}
        if behind:
            log.info("learning what precedes the newly answered partitions first: %s",
                     ", ".join(f"{p}: offsets {a}..{b - 1}" for p, (a, b) in sorted(behind.items())))
            fill(behind)
            for partition, (_, end) in behind.items():
                self.note(partition, end - 1)
        self._assign(sorted(freed))

    def note(self, partition: int, offset: int) -> None:
        """The record at `offset` of `partition` was learned (or passed over) by the answering path."""
        if offset + 1 > self.position.get(partition, -1):
            self.position[partition] = offset + 1

    def poll(self, scorers: Sequence[Scorer]) -> int:
        """Learn what the reader has fetched (no wait); the number of records handled."""
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
            if message.partition() in self.own:  # fetched before the hand-over: the answering path learns it
                continue
            admitted.append(message)
        for (topic, partition), offset in self.guard.take_reseeks().items():
            self._consumer.seek(TopicPartition(topic, partition, offset))
        requests, sources = decode_requests(admitted)
        if requests:
            self.learned += self._learner.learn(scorers, requests, sources)
        for message in admitted:
            self.note(message.partition(), message.offset())
        return len(admitted)

    def close(self) -> None:
        self._consumer.close()
