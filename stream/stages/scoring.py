"""The scoring stage: scoring requests in, recommendations out, at least once end to end.

One loop: take a batch (up to `scoring.batch_max_size` records, waiting at most
`batch_max_wait_ms` once the first arrived), decode it, let the scorer learn its clicks
(`observe`: each answer sees its own click; a later click of a session with an earlier
request in the batch, the click that request is judged on, is learned only after answering:
stream/learning/ledger_gate.py), rank (`recommend`), produce one Recommendation per request
keyed by session_id, wait until the broker acknowledged every record, and only then (at the next checkpoint, every
`scoring.commit_interval_ms`) commit the batch's offsets. A crash anywhere before the commit
replays the batch; nothing is lost, a recommendation may be emitted twice (consumers dedupe
by event_id).

Nothing a record contains can stop the stage: a record that does not decode goes to the
DLQ with its reason; a scorer that raises is retried query by query, then replaced by the
fallback scorer for the queries that still fail; a query nothing can answer is dead-lettered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import ValidationError

from streamrec.config import Settings
from streamrec.models.registry import build_popularity, build_scorer
from streamrec.models.scorer import Query, Ranked, Scorer, close_scorer, persist_scorer, reads_history
from streamrec.stream import metrics
from streamrec.stream.clients.gaps import GapGuard
from streamrec.stream.kafka import (
    build_consumer,
    build_producer,
    consumer_config,
    dead_letter_limits,
    producer_config,
    scoring_group,
)
from streamrec.stream.learning.catch_up import catch_up, relearn
from streamrec.stream.learning.ledger_gate import LedgerGate, learned_after_answering
from streamrec.stream.learning.whole_stream import WholeStreamReader
from streamrec.stream.observability.lag import lag_config
from streamrec.stream.observability.scorer_info import describe_scorer, observe_latencies
from streamrec.stream.topics import (
    DeadLetter,
    DeadLetterLimits,
    ScoringRequest,
    Topics,
    bounded_dead_letter,
    dead_letter_key,
    encode_recommendation,
    without_original,
)
from streamrec.stream.updates.follower import follow_updates, provenance

log = logging.getLogger(__name__)

_IDLE_POLL_S = 0.5
"""How long the loop waits for the first record of a batch before checking `stop` again."""
_RETRY_BACKOFF_S = 1.0
_BUSY_POLL_S = 0.05
"""The wait for an answering record while the learning reader still brings records to learn."""
_METADATA_TIMEOUT_S = 10.0
SCORING_STAGE = "scoring"
"""Label of the answering consumer in `streamrec_offset_gaps_total`."""


INVALID_REQUEST = "invalid_scoring_request"
"""DLQ reason (and metrics label) of a scoring request that does not decode."""
UNANSWERABLE = "scorer_failed"
"""DLQ reason of a request that neither the scorer nor the fallback could answer."""

Output = tuple[str, bytes | None, bytes]
"""(topic, key, value) of a record to produce."""


@dataclass
class Decoded:
    """A batch split into requests (with their source messages) and dead letters."""

    requests: list[ScoringRequest] = field(default_factory=list)
    sources: list[Message] = field(default_factory=list)
    dead_letters: list[Output] = field(default_factory=list)


def dead_letter(message: Message, reason: str, detail: str, now: float, dlq: str, limits: DeadLetterLimits) -> Output:
    """The DLQ record for a scoring-stage failure: reason, detail and the original bytes (cut to `limits`); counted."""
    key = message.key()
    letter = bounded_dead_letter(reason, detail, key, message.value(), now, limits, source_topic=message.topic(),
                                 partition=message.partition(), offset=message.offset())
    metrics.CLICKS_DEAD_LETTERED.labels(reason).inc()
    return dlq, dead_letter_key(key), letter.model_dump_json().encode()


def decode_batch(batch: Sequence[Message], now: float, dlq: str, limits: DeadLetterLimits) -> Decoded:
    """Parse every record as a ScoringRequest; what does not parse becomes a dead letter."""
    decoded = Decoded()
    for message in batch:
        try:
            request = ScoringRequest.model_validate_json(message.value() or b"")
            if not request.session_items:
                raise ValueError("session_items is empty")
        except (ValidationError, ValueError) as exc:
            decoded.dead_letters.append(dead_letter(message, INVALID_REQUEST, str(exc), now, dlq, limits))
            continue
        decoded.requests.append(request)
        decoded.sources.append(message)
    return decoded


def version_stamps(scorers: Sequence[Scorer]) -> dict[int, tuple[str, str]]:
    """(name, version) of each scorer by identity, read once per batch: right after answering, before the
    batch's held-back clicks are learned, so every answer is stamped with the statistics that made it."""
    return {id(scorer): (scorer.name, scorer.version) for scorer in scorers}


class ScoringStage:
    """The consume -> observe -> recommend -> produce -> commit loop over one scorer."""

    def __init__(self, settings: Settings, scorer: Scorer, fallback: Scorer) -> None:
        self.settings = settings
        self.scorer = scorer
        self.fallback = fallback
        self.topics = Topics(settings.kafka.topic_prefix)
        self._dead_letter_limits = dead_letter_limits(settings)
        self._done: dict[tuple[str, int], int] = {}
        """Next offset per (topic, partition) past the answered batches, not committed yet."""
        self._revoked: set[tuple[str, int]] = set()
        """Partitions revoked while the batch in hand was fetched: its offsets there are not ours to commit."""
        self._next_commit_at = 0.0
        self._gate = LedgerGate(settings.scoring.learned_event_ids_kept)
        """Re-read and re-emitted clicks are answered again but never learned twice (stream/learning/)."""
        kafka = settings.kafka
        self._consumer = build_consumer(kafka, scoring_group(settings), {
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **consumer_config(settings),
            **lag_config("scoring", (self.topics.scoring_requests,), settings.health.lag_interval_ms),
        })
        self._producer = build_producer(kafka, producer_config(settings))
        self._updates = follow_updates(settings, scorer)
        """Newer published versions of a neural scorer, swapped in between two batches (stream/updates/)."""
        self._guard = GapGuard(SCORING_STAGE)
        """Offsets a fetch skipped are read again before anything past them is answered (stream/clients/gaps.py)."""
        self._reader = WholeStreamReader(settings, self.topics.scoring_requests, self._gate) \
            if settings.scoring.learn_whole_stream else None
        """Learns the partitions other processes of the group answer (stream/learning/whole_stream.py)."""
        self._unpersisted = False
        """The learning reader learned something not persisted yet."""
        self._stop = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Process batches until `stop` is set; the current batch is finished (or left uncommitted) first.

        First, the statistics catch up with the committed offsets (a lost state folder is re-learned
        from the scoring-requests topic: stream/learning/catch_up.py), so nothing is served from less.
        """
        self._stop = stop
        catch_up(self.settings, scoring_group(self.settings), (self.scorer, self.fallback), self._gate, stop)
        if self._reader is not None:
            self._reader.start(scoring_group(self.settings), (self.scorer, self.fallback))
        self._consumer.subscribe([self.topics.scoring_requests], on_assign=self._on_assign, on_revoke=self._on_revoke)
        wait_s = _IDLE_POLL_S
        try:
            while not stop.is_set():
                self.scorer = self._updates.take_ready(self.scorer, self._consumer)
                batch = self._next_batch(wait_s)
                if batch and self._process(batch, stop):
                    self._answered(batch)
                wait_s = _BUSY_POLL_S if self._learn_others() else _IDLE_POLL_S
                if time.monotonic() >= self._next_commit_at:
                    self._commit()
            self._commit()
        finally:
            self._updates.close()
            self._consumer.close()
            if self._reader is not None:
                self._reader.close()
            self._producer.flush(5.0)

    def _learn_others(self) -> bool:
        """Learn what the learning reader fetched of the partitions others answer; True if it brought anything."""
        if self._reader is None:
            return False
        handled = self._reader.poll((self.scorer, self.fallback))
        self._unpersisted = self._unpersisted or handled > 0
        return handled > 0

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Answering starts at the group's committed offsets: the gap guard expects them, and the statistics learn
        first what lies between what they learned of those partitions and there (stream/learning/whole_stream.py)."""
        topic = self.topics.scoring_requests
        mine = [tp for tp in partitions if tp.topic == topic]
        log.info("answering %s partitions %s", topic, sorted(tp.partition for tp in mine))
        committed = consumer.committed([TopicPartition(topic, tp.partition) for tp in mine],
                                        timeout=_METADATA_TIMEOUT_S) if mine else []
        starts = {tp.partition: tp.offset for tp in committed if tp.offset >= 0}
        for tp in mine:
            start = starts.get(tp.partition)
            if start is None:  # nothing committed: auto.offset.reset (earliest) starts at the log's beginning
                start, _ = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition),
                                                          timeout=_METADATA_TIMEOUT_S)
            self._guard.expect(topic, tp.partition, start)
        if self._reader is not None:
            def fill(ranges: dict[int, tuple[int, int]]) -> None:
                relearn(self.settings, scoring_group(self.settings), topic, ranges, (self.scorer, self.fallback),
                        self._gate, self._stop)
                self._unpersisted = True

            self._reader.rebalanced([tp.partition for tp in mine], starts, fill)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Commit what was answered, and forget the revoked partitions: a batch already in hand is still answered,
        but its offsets there are the new owner's to commit (committing them later could move its offsets back)."""
        self._commit()
        self._revoked.update((tp.topic, tp.partition) for tp in partitions)
        self._guard.forget((tp.topic, tp.partition) for tp in partitions)

    def _answered(self, batch: list[Message]) -> None:
        """Every output of `batch` is acknowledged: its offsets may be committed at the next checkpoint."""
        for message in batch:
            key = (message.topic(), message.partition())
            if key not in self._revoked:
                self._done[key] = message.offset() + 1
            if self._reader is not None:
                self._reader.note(message.partition(), message.offset())

    def _next_batch(self, wait_s: float = _IDLE_POLL_S) -> list[Message]:
        """Block up to `wait_s` for one record, then gather the rest of the batch within the wait budget.

        Records past an offset the fetch skipped wait until a re-read brought the skipped ones (GapGuard)."""
        self._revoked.clear()  # a rebalance during this fetch fills it again (`_on_revoke`)
        first = self._consumer.poll(wait_s)
        if first is None:
            return []
        scoring = self.settings.scoring
        rest = []
        if scoring.batch_max_size > 1:
            rest = self._consumer.consume(scoring.batch_max_size - 1, scoring.batch_max_wait_ms / 1000)
        batch = []
        for message in self._guard.admit([first, *rest]):
            error = message.error()
            if error is None:
                batch.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("scoring consumer error: %s", error)
        for (topic, partition), offset in self._guard.take_reseeks().items():
            self._consumer.seek(TopicPartition(topic, partition, offset))
        return batch

    def _process(self, batch: list[Message], stop: threading.Event) -> bool:
        """Score and produce one batch; True once every output record is acknowledged."""
        now = time.time()
        decoded = decode_batch(batch, now, self.topics.dlq, self._dead_letter_limits)
        outputs = decoded.dead_letters
        if decoded.requests:
            outputs += self._score(decoded)
        return self._deliver(outputs, stop)

    def _score(self, decoded: Decoded) -> list[Output]:
        requests = decoded.requests
        queries = [Query(session_items=r.session_items, history_items=r.history_items, user_id=r.user_id)
                   for r in requests]
        metrics.SCORING_BATCH_SIZE.observe(len(queries))
        scorers = (self.scorer, self.fallback)
        began = time.perf_counter()

        def answer() -> tuple[list[tuple[Scorer, Ranked] | None], float, dict[int, tuple[str, str]]]:
            answers = self._recommend(queries)
            metrics.SCORING_BATCH_LATENCY.observe(time.perf_counter() - began)  # the batch's own clicks learned too
            return answers, time.time(), version_stamps(scorers)  # the statistics that answered

        _, (answers, emitted_at, stamps) = self._gate.learn_around(
            scorers, requests, decoded.sources, learned_after_answering(requests), answer)
        observe_latencies(requests, emitted_at)
        outputs = []
        for request, answered, source in zip(requests, answers, decoded.sources):
            if answered is None:
                detail = f"{self.scorer.name} and {self.fallback.name} both raised"
                outputs.append(
                    dead_letter(source, UNANSWERABLE, detail, emitted_at, self.topics.dlq, self._dead_letter_limits))
                continue
            scorer, ranked = answered
            if scorer is self.fallback:
                metrics.FALLBACK_ANSWERS.inc()
            record = encode_recommendation(request, ranked, *stamps[id(scorer)], emitted_at, provenance(scorer, source))
            outputs.append((self.topics.recommendations, request.session_id.encode(), record))
        return outputs

    def _recommend(self, queries: list[Query]) -> list[tuple[Scorer, Ranked] | None]:
        """One batch call; if it raises, each query alone, then the fallback for those that still fail."""
        k = self.settings.scoring.top_k
        try:
            return [(self.scorer, ranked) for ranked in self.scorer.recommend(queries, k)]
        except Exception:
            metrics.SCORER_ERRORS.inc()
            log.exception("%s.recommend failed on a batch of %d; retrying one by one", self.scorer.name, len(queries))
        return [self._recommend_one(query, k) for query in queries]

    def _recommend_one(self, query: Query, k: int) -> tuple[Scorer, Ranked] | None:
        for scorer in (self.scorer, self.fallback):
            try:
                return scorer, scorer.recommend([query], k)[0]
            except Exception:
                metrics.SCORER_ERRORS.inc()
                log.exception("%s.recommend failed on one query", scorer.name)
        return None

    def _deliver(self, outputs: list[Output], stop: threading.Event) -> bool:
        """Produce `outputs` and wait for every acknowledgement, re-producing failures until `stop`."""
        pending = outputs
        while pending:
            failed: list[Output] = []
            for topic, key, value in pending:
                self._produce(topic, key, value, failed)
            self._producer.flush()
            if failed and stop.wait(_RETRY_BACKOFF_S):
                return False
            pending = failed
        metrics.RECOMMENDATIONS_EMITTED.inc(sum(1 for topic, _, _ in outputs if topic == self.topics.recommendations))
        return True

    def _produce(self, topic: str, key: bytes | None, value: bytes, failed: list[Output]) -> None:
        def on_delivery(error: KafkaError | None, _message: Message | None) -> None:
            if error is not None:
                log.warning("delivery to %s failed (%s); will retry", topic, error)
                failed.append((topic, key, self._retry_value(topic, value, error)))

        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                return
            except BufferError:  # local queue full: let deliveries drain
                self._producer.poll(0.1)
            except KafkaException as exc:  # refused before sending (e.g. too large): retried like a failed delivery
                on_delivery(exc.args[0], None)
                return

    def _retry_value(self, topic: str, value: bytes, error: KafkaError) -> bytes:
        """What to produce again: a dead letter the broker refused as too large goes without its original bytes
        (a broker whose message.max.bytes is below `kafka.max_message_bytes`); anything else unchanged."""
        if topic != self.topics.dlq or error.code() != KafkaError.MSG_SIZE_TOO_LARGE:
            return value
        why = f"the broker refused it as too large ({error.str()})"
        letter = without_original(DeadLetter.model_validate_json(value), why)
        return letter.model_dump_json().encode()

    def _commit(self) -> None:
        """Commit the offsets past every answered batch (synchronously), at most every `commit_interval_ms`.

        Committing per batch would cost a broker round trip per batch; committing answered
        batches later only widens what a crash re-reads (at least once: re-answered, never lost).
        The scorers persist what they learned just before (with the ledger of which clicks that
        is, in one atomic write), so after a crash the re-read clicks are learned exactly once.
        Also called when partitions are revoked, so a rebalance re-reads as little as possible.
        """
        self._next_commit_at = time.monotonic() + self.settings.scoring.commit_interval_ms / 1000
        if not self._done and not self._unpersisted:
            return
        for scorer in (self.scorer, self.fallback):  # what they learned from these clicks first, then the offsets
            try:
                persist_scorer(scorer)
            except Exception:
                metrics.SCORER_ERRORS.inc()
                log.exception("%s could not persist its statistics; offsets stay uncommitted", scorer.name)
                return
        self._unpersisted = False
        describe_scorer(self.scorer, self.settings)
        if not self._done:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._done.items()]
        self._done = {}
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # e.g. partitions moved away meanwhile: those records are re-read, not lost
            log.warning("offset commit failed (%s); answered records will be re-read", exc)


def history_supply_warning(scorer: Scorer, settings: Settings) -> str | None:
    """Why `scorer` will not see the history it reads (the stateful stage sends none), or None."""
    if reads_history(scorer) and settings.history.max_request_items == 0:
        return (f"scorer {scorer.name} reads long-term history but history.max_request_items is 0, so scoring "
                "requests carry none: set it (e.g. STREAMREC_HISTORY__MAX_REQUEST_ITEMS=200) for every worker")
    return None


def run_scoring_stage(settings: Settings, stop: threading.Event) -> None:
    """Run the scoring stage of `settings` until `stop` is set (the worker's entry point)."""
    scorer = build_scorer(settings)
    fallback = build_popularity(settings, persist=False)
    log.info("serving %s", ", ".join(f"{k}={v}" for k, v in describe_scorer(scorer, settings).items()))
    warning = history_supply_warning(scorer, settings)
    if warning is not None:
        log.warning(warning)
    stage = ScoringStage(settings, scorer, fallback)
    del scorer  # the stage may swap versions in: close the one serving at the end, not the first
    try:
        stage.run(stop)
    finally:
        close_scorer(stage.scorer)
