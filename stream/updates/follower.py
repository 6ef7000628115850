"""Hot swap: a scoring stage follows `model-updates` and installs each newer version between two batches.

A background thread reads the compacted topic from its beginning (its own consumer, no group
offsets), so a scoring stage that starts late still finds the newest versions. For the newest
announcement it has not tried it loads and verifies the file (stream/updates/verify.py) while
the stage keeps answering with the version serving; a refused version is logged and counted and
the next older announced one (still newer than the serving one) is tried, so the stage always
converges on the latest good version. Verified versions wait, staged in order (at most
`_MAX_STAGED`), until `take_ready` - called by the scoring loop at the top of every batch -
installs the newest one the guard allows (so a trainer that publishes faster than a lagging
stage catches up never starves it: an older staged version installs while a newer one waits):

- consumption never stops and no request is dropped: the swap is a reference assignment between
  two batches, each batch is answered by exactly one version;
- prequential guard: a version is installed only once this stage has answered past its
  trained-through offset on every scoring-requests partition it owns (the consumer's position is
  the next offset it will answer), so no answer comes from a version that trained on a later click
  (`trained_on_later_click`, the same rule the replay report counts violations with).

Every answer carries its request's partition/offset and the serving version's trained-through
offset there (`provenance`), so a replay can check the guard from the outside.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from pydantic import ValidationError

from streamrec.config import Settings
from streamrec.models.scorer import Scorer
from streamrec.models.serving import NeuralScorer
from streamrec.stream.kafka import build_consumer, reader_group
from streamrec.stream.topics import ONLINE_SUFFIX, ModelUpdate, Provenance, Topics, trained_on_later_click
from streamrec.stream.trainer.learner_settings import online_settings
from streamrec.stream.updates import metrics
from streamrec.stream.updates.verify import Refused, load_verified

log = logging.getLogger(__name__)

TABLES_SUFFIX = "+tables"
"""Appended to the scorer name of a stage that does not swap versions but learns its checkpoint's tables
(`updates.follow = false`, `updates.frozen_learn_tables = true`): the tables-only ablation."""
_POLL_S = 0.5
_MAX_STAGED = 4
"""Verified versions kept waiting for the guard (each holds a model): the oldest is dropped beyond this."""


def provenance(scorer: Scorer, message: Message) -> Provenance:
    """Partition/offset of the answered request and how far `scorer`'s version trained on that partition."""
    # only a checkpoint trains on the stream
    trained = scorer.trained_through if isinstance(scorer, NeuralScorer) else None
    partition = message.partition() or 0
    return Provenance(partition, message.offset() or 0, None if trained is None else trained.get(partition, 0))


class FrozenModel:
    """A stage that does not follow updates: it serves its scorer as it is."""

    def take_ready(self, current: Scorer, consumer: Consumer) -> Scorer:
        return current

    def close(self) -> None:
        pass


class ModelUpdates:
    """Follows model-updates in a thread; `take_ready` swaps a verified version in when the guard allows."""

    def __init__(self, settings: Settings, serving: NeuralScorer) -> None:
        self.settings = settings
        self.topics = Topics(settings.kafka.topic_prefix)
        self.model = serving.checkpoint.preset
        self._serving = serving
        self._serving_sequence = 0
        self._online = online_settings(settings)
        self._announced: dict[int, ModelUpdate] = {}
        self._tried: set[int] = set()
        self._staged: list[tuple[ModelUpdate, NeuralScorer]] = []
        """Verified versions waiting for the guard, oldest first."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = build_consumer(settings.kafka, reader_group(settings, "updates"), {
            "enable.auto.commit": False,
            "fetch.wait.max.ms": settings.kafka.fetch_wait_max_ms,
        })
        self._consumer.assign([TopicPartition(self.topics.model_updates, 0, OFFSET_BEGINNING)])
        self._thread = threading.Thread(target=self._follow, name="model-updates", daemon=True)
        self._thread.start()

    # --- background thread ------------------------------------------------------------
    def _follow(self) -> None:
        try:
            while not self._stop.is_set():
                messages = self._consumer.consume(100, _POLL_S)
                for message in messages:
                    if message.error() is None:
                        self._read(message.value())
                self._prepare()
        except Exception:  # the stage keeps serving the version it has
            log.exception("model-updates follower stopped; this stage keeps serving %s", self._serving.version)
        finally:
            self._consumer.close()

    def _read(self, value: bytes | None) -> None:
        metrics.UPDATES_SEEN.inc()
        try:
            update = ModelUpdate.model_validate_json(value or b"")
        except ValidationError as exc:
            metrics.UPDATES_REFUSED.labels("invalid_announcement").inc()
            log.warning("model-updates record is not an announcement (%s); ignored", str(exc).splitlines()[0])
            return
        if update.model == self.model:
            self._announced[update.sequence] = update

    def _prepare(self) -> None:
        """Verify one more version: the newest untried announcement newer than what serves (older ones on later
        calls, and when the newest is refused), until `_MAX_STAGED` wait for the guard."""
        with self._lock:
            floor = self._serving_sequence
            serving = self._serving
            staged = {update.sequence for update, _ in self._staged}
        for old in [sequence for sequence in self._announced if sequence < floor]:  # bounded memory on an endless topic
            del self._announced[old]
            self._tried.discard(old)
        for sequence in sorted(self._announced, reverse=True):
            if sequence <= floor or len(staged) >= _MAX_STAGED:
                return
            if sequence in self._tried or sequence in staged:
                continue
            self._tried.add(sequence)
            update = self._announced[sequence]
            try:
                candidate = load_verified(update, serving, self.settings.updates.smoke_queries)
            except OSError as exc:  # e.g. the trainer pruned the file meanwhile: refused, the thread goes on
                self._refused(update, serving, Refused("missing", f"{update.path}: {exc.strerror or exc}"))
                continue
            except Refused as refused:
                self._refused(update, serving, refused)
                continue
            candidate.trained_through = dict(update.trained_through)
            if serving.tables is not None:  # built here, off the scoring loop; filled at install
                candidate.learn_tables(self._online.row_entries_cap, self.settings.updates.table_buffer_clicks,
                                       self._online.item_capacity_spare)
            with self._lock:
                self._staged = sorted([*self._staged, (update, candidate)], key=lambda entry: entry[0].sequence)
            log.info("model version %s (#%d) verified; installs once answered past %s",
                     update.version, sequence, update.trained_through)
            return

    @staticmethod
    def _refused(update: ModelUpdate, serving: NeuralScorer, refused: Refused) -> None:
        metrics.UPDATES_REFUSED.labels(refused.reason).inc()
        log.warning("model version %s (#%d) refused, %s keeps serving: %s", update.version, update.sequence,
                    serving.version, refused)

    # --- scoring loop -----------------------------------------------------------------
    def take_ready(self, current: Scorer, consumer: Consumer) -> Scorer:
        """The scorer for the next batch: the newest staged version the guard allows, else `current`."""
        with self._lock:
            staged = list(self._staged)
        for update, candidate in reversed(staged):
            if not self.settings.updates.prequential_guard or self._answered_past(update, consumer):
                self._install(update, candidate, current)
                return candidate
        if staged:
            metrics.GUARD_WAITS.inc()
        return current

    def _answered_past(self, update: ModelUpdate, consumer: Consumer) -> bool:
        """Whether the next request this stage answers, on every partition it owns, is after what `update` trained
        on."""
        assignment = [tp for tp in consumer.assignment() if tp.topic == self.topics.scoring_requests]
        if not assignment:
            return False
        for tp in consumer.position(assignment):
            next_offset = tp.offset if tp.offset >= 0 else 0  # nothing read yet: the partition's start at best
            if trained_on_later_click(update.trained_through.get(tp.partition, 0), next_offset):
                return False
        return True

    def _install(self, update: ModelUpdate, candidate: NeuralScorer, current: Scorer) -> None:
        _inherit(candidate, current)
        previous = current.tables if isinstance(current, NeuralScorer) else None
        if candidate.tables is not None and previous is not None:  # never older tables than before the swap
            candidate.tables.take_over(previous, dict(update.trained_through))
        with self._lock:
            self._staged = [entry for entry in self._staged if entry[0].sequence > update.sequence]
            self._serving = candidate
            self._serving_sequence = update.sequence
        metrics.SWAPS.inc()
        metrics.SERVING_SEQUENCE.set(update.sequence)
        metrics.SWAP_DELAY.observe(max(0.0, time.time() - update.published_at))
        log.info("now serving model version %s (#%d), trained through %s", update.version, update.sequence,
                 update.trained_through)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _inherit(candidate: NeuralScorer, current: Scorer) -> None:
    """The new version serves under the old one's name, with its online fallback (learned statistics kept)."""
    candidate.name = current.name
    if isinstance(current, NeuralScorer):
        candidate.fallback, candidate.fallback_max_length = current.fallback, current.fallback_max_length


def follow_updates(settings: Settings, scorer: Scorer) -> ModelUpdates | FrozenModel:
    """What keeps `scorer` current: a follower when it serves a checkpoint and `updates.follow`, else nothing
    (with `updates.frozen_learn_tables` the frozen checkpoint's tables still learn the answered clicks)."""
    if not isinstance(scorer, NeuralScorer):
        return FrozenModel()
    if not settings.updates.follow:
        if settings.updates.frozen_learn_tables and scorer.model.head is not None:
            scorer.name = scorer.name + TABLES_SUFFIX
            _learn_tables(scorer, settings)
        return FrozenModel()
    scorer.name = scorer.name + ONLINE_SUFFIX
    if settings.updates.learn_tables and scorer.model.head is not None:
        _learn_tables(scorer, settings)
    return ModelUpdates(settings, scorer)


def _learn_tables(scorer: NeuralScorer, settings: Settings) -> None:
    online = online_settings(settings)
    scorer.learn_tables(online.row_entries_cap, settings.updates.table_buffer_clicks, online.item_capacity_spare)
