"""The trainer loop: read everything waiting on scoring-requests, one fine-tune step, publish when due.

Its own consumer group, but it does not trust group commits: every published version stores
the next offset per partition (its trained-through point), and a (re)started trainer resumes
from the newest intact version in the store and seeks exactly there, so after a crash the
examples after that version are learned once and those before it are not learned again.
Examples that were waiting for a gradient step when the version was taken are stored with it
(they already updated the version's statistics) and queued again on resume. The group commit
made at each publish only serves lag monitoring.

It never falls unboundedly behind: it reads every waiting request before each step (cheap:
statistics only), and when the stream brings more examples than steps consume the learner
lets the oldest waiting ones skip the gradient (counted: `streamrec_trainer_examples_skipped`).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from confluent_kafka import KafkaError, Message, TopicPartition

from streamrec.config import Settings
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.online.learner import ContinualLearner
from streamrec.models.online.settings import OnlineSettings, StepReport, StreamExample
from streamrec.stream.clients.gaps import GapGuard
from streamrec.stream.kafka import build_consumer, consumer_config, trainer_group
from streamrec.stream.topics import Topics
from streamrec.stream.trainer import metrics
from streamrec.stream.trainer.examples import ExampleReader
from streamrec.stream.trainer.learner_settings import online_settings
from streamrec.stream.trainer.publish import CandidatesHook, Publisher, candidate_index_builder, stored_update

log = logging.getLogger("streamrec.trainer")

TRAINER_STAGE = "trainer"
"""Label of the trainer's consumer in `streamrec_offset_gaps_total`."""

_IDLE_POLL_S = 0.5
_REPORT_EVERY_S = 10.0
_TOPIC_TIMEOUT_S = 30.0


class Trainer:
    """A ContinualLearner fed from scoring-requests, publishing versions to the store and model-updates."""

    def __init__(self, settings: Settings, candidates: CandidatesHook | None = None) -> None:
        self.settings = settings
        self.topic = Topics(settings.kafka.topic_prefix).scoring_requests
        self.publisher = Publisher(settings, candidates)
        self.reader = ExampleReader()
        self._consumer = build_consumer(settings.kafka, trainer_group(settings), {
            "enable.auto.commit": False, **consumer_config(settings),
        })
        online, device = online_settings(settings), settings.training.device
        latest = self.publisher.latest()
        base = settings.training.base_checkpoint or settings.scoring.checkpoint_path
        if latest is not None:
            self.learner = ContinualLearner.resume(Checkpoint.load(latest.path), online, device=device,
                                                   start=self._start_checkpoint(base, online))
            self.positions = {int(p): int(o) for p, o in latest.manifest["trained_through"].items()}
            self.reader.last_click_ts = latest.manifest.get("last_click_ts")
            self.learner.pending.extend(_decode_pending(latest.manifest.get("pending", [])))
            log.info("resuming from %s (#%d) at offsets %s", latest.manifest["version"], latest.sequence,
                     self.positions)
            # in case the crash came before the announcement
            self.publisher.announce(stored_update(latest, time.time()))
        else:
            if base is None or not Path(base).is_file():
                raise SystemExit(f"the trainer needs a checkpoint to start from: {base or 'none set'} is not a file; "
                                 "set training.base_checkpoint (or scoring.checkpoint_path) to one `streamrec train` "
                                 "wrote")
            self.learner = ContinualLearner(Checkpoint.load(Path(base)), online, device=device)
            self.positions = self._start_offsets()
            log.info("starting from %s at offsets %s (%s)", base, self.positions, settings.training.start_from)
        self._guard = GapGuard(TRAINER_STAGE)
        """Offsets a fetch skipped are read again before anything past them is learned (stream/clients/gaps.py)."""
        for partition, offset in self.positions.items():
            self._guard.expect(self.topic, partition, offset)
        self._consumer.assign([TopicPartition(self.topic, p, o) for p, o in sorted(self.positions.items())])
        self._steps_since_publish = 0
        self._last_publish = time.monotonic()
        self._last_report = (time.monotonic(), self.learner.examples)
        self._last_loss: float | None = None

    @staticmethod
    def _start_checkpoint(base: Path | str | None, online: OnlineSettings) -> Checkpoint | None:
        """The distillation teacher of a resumed trainer (`distill_from` "start"): the checkpoint it started from."""
        if not online.distils or online.distill_from != "start":
            return None
        if base is None or not Path(base).is_file():
            log.warning("resuming without the checkpoint the trainer started from (%s): the distillation teacher is "
                        "the resumed version, not the start", base or "none set")
            return None
        return Checkpoint.load(Path(base))

    def _start_offsets(self) -> dict[int, int]:
        metadata = self._consumer.list_topics(self.topic, timeout=_TOPIC_TIMEOUT_S).topics[self.topic]
        if metadata.error is not None:
            raise SystemExit(f"cannot read topic {self.topic}: {metadata.error}")
        offsets = {}
        for partition in sorted(metadata.partitions):
            low, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition),
                                                             timeout=_TOPIC_TIMEOUT_S)
            offsets[partition] = high if self.settings.training.start_from == "latest" else max(low, 0)
        return offsets

    def run(self, stop: threading.Event) -> None:
        """Read, step, publish until `stop`; a last version is published on the way out if steps were made."""
        training = self.settings.training
        try:
            while not stop.is_set():
                self._read()
                report = self.learner.step()
                if report is not None:
                    self._stepped(report)
                due = (self._steps_since_publish >= training.publish_every_steps
                       or time.monotonic() - self._last_publish >= training.publish_every_s)
                if self._steps_since_publish and due:
                    self.publish()
                self._report_progress()
            if self._steps_since_publish:
                self.publish()
        finally:
            self._consumer.close()
            self.publisher.close()

    def _read(self) -> None:
        """Everything already waiting (at least one call; it blocks briefly when there is nothing to train)."""
        limit = self.settings.training.poll_max_records
        timeout = 0.0 if self.learner.pending else _IDLE_POLL_S
        while True:
            messages = self._consumer.consume(limit, timeout)
            valid = [m for m in self._guard.admit(messages) if self._position(m)]
            for (topic, partition), offset in self._guard.take_reseeks().items():
                self._consumer.seek(TopicPartition(topic, partition, offset))
            self.learner.add(self.reader.examples(valid))
            if len(messages) < limit:
                return
            timeout = 0.0

    def _position(self, message: Message) -> bool:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("trainer consumer error: %s", error)
            return False
        self.positions[message.partition()] = message.offset() + 1
        return True

    def _stepped(self, report: StepReport) -> None:
        self._steps_since_publish += 1
        self._last_loss = report.loss
        metrics.STEPS.inc()
        metrics.LOSS.set(report.loss)
        metrics.EXAMPLES_SKIPPED.set(report.skipped_examples)

    def publish(self) -> None:
        """Snapshot the learner, store it with its offsets and waiting examples, announce it."""
        through = dict(self.positions)
        checkpoint = self.learner.snapshot({"trained_through": {str(p): o for p, o in through.items()},
                                            "last_click_ts": self.reader.last_click_ts})
        self.publisher.publish(checkpoint, through, self.reader.last_click_ts, self.learner.examples,
                               self.learner.steps, pending=_encode_pending(self.learner.pending))
        self._steps_since_publish = 0
        self._last_publish = time.monotonic()
        offsets = [TopicPartition(self.topic, p, o) for p, o in through.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)  # for lag monitoring only
        except Exception as exc:  # noqa: BLE001 - resuming never reads group offsets
            log.debug("group commit failed: %s", exc)

    def _report_progress(self) -> None:
        now = time.monotonic()
        last_at, last_examples = self._last_report
        if now - last_at < _REPORT_EVERY_S:
            return
        lag = {}
        for partition, position in self.positions.items():
            try:
                _, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=1.0)
            except Exception:  # noqa: BLE001 - a progress line is not worth failing over
                continue
            lag[partition] = max(0, high - position)
            metrics.LAG.labels(str(partition)).set(lag[partition])
        rate = (self.learner.examples - last_examples) / (now - last_at)
        log.info("trainer: %d examples (%.0f/s), %d steps, loss %s, %d skipped, %d waiting, lag %s",
                 self.learner.examples, rate, self.learner.steps,
                 "-" if self._last_loss is None else f"{self._last_loss:.3f}", self.learner.skipped,
                 len(self.learner.pending), lag)
        self._last_report = (now, self.learner.examples)


def _encode_pending(pending: object) -> list[dict[str, object]]:
    return [{"s": list(e.session_items), "t": e.target, "ts": e.ts, "h": list(e.history_items)} for e in pending]  # type: ignore[attr-defined]


def _decode_pending(rows: list[dict[str, object]]) -> list[StreamExample]:
    return [StreamExample(tuple(r["s"]), str(r["t"]), float(r["ts"]), tuple(r.get("h") or ())) for r in rows]  # type: ignore[arg-type]


def run_trainer(settings: Settings, stop: threading.Event) -> None:
    """The trainer role's entry point (`streamrec worker --role trainer`, `streamrec train --follow`)."""
    Trainer(settings, candidate_index_builder(settings)).run(stop)

