"""Publishing a version: the learner's snapshot into the checkpoint store, then an announcement on model-updates.

Order matters for crash safety: the file and its manifest (with the trained-through offsets)
are durable before the announcement is produced, so an announced version always exists, and a
trainer that dies between the two resumes from that version (re-announcing it is harmless:
scoring stages skip what they already serve). The announcement is keyed `<model>/<slot>`
with slot = sequence mod `keep_versions`: the compacted topic keeps the announcements of the
versions the store still holds, so a scoring stage starting late finds the newest good one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from streamrec.config import Settings
from streamrec.models.candidates import CandidateConfig, CandidateIndex, sidecar_path
from streamrec.models.checkpoint import Checkpoint
from streamrec.state.checkpoint_store import CheckpointStore, StoredVersion
from streamrec.stream.kafka import build_producer, producer_config
from streamrec.stream.topics import ModelUpdate, Topics
from streamrec.stream.trainer import metrics

log = logging.getLogger(__name__)

CandidatesHook = Callable[[Checkpoint, Path], Path | None]
"""Builds the candidate index that ships with a version (models/candidates), next to its file; None: no index."""
_FLUSH_TIMEOUT_S = 30.0


def candidate_index_builder(settings: Settings) -> CandidatesHook:
    """The hook that ships a candidate index (models/candidates) with each version of a big enough catalogue.

    Built by the trainer at publish time, next to the checkpoint (`<file>.hnsw`, pruned with it), so
    scoring stages load it instead of building it; a stage whose index is missing or refused builds its own.
    """
    config = CandidateConfig.from_settings(settings.scoring)

    def build(checkpoint: Checkpoint, path: Path) -> Path | None:
        if len(checkpoint.vocab) - 1 < config.candidates_min_catalogue_items:
            return None
        index = CandidateIndex.build(checkpoint.build_model("cpu"), config, model_version=checkpoint.version)
        return index.save(sidecar_path(path))

    return build


def announcement_key(model: str, sequence: int, keep: int) -> bytes:
    return f"{model}/{sequence % keep}".encode()


class Publisher:
    """Writes versions to the store and announces them; `latest()` is where a restarted trainer resumes."""

    def __init__(self, settings: Settings, candidates: CandidatesHook | None = None) -> None:
        training = settings.training
        self.store = CheckpointStore(training.checkpoint_dir, keep=training.keep_versions)
        self.topic = Topics(settings.kafka.topic_prefix).model_updates
        self.keep = training.keep_versions
        self.candidates = candidates
        self._producer = build_producer(settings.kafka, producer_config(settings))

    def latest(self) -> StoredVersion | None:
        return self.store.latest()

    def publish(self, checkpoint: Checkpoint, trained_through: dict[int, int], last_click_ts: float | None,
                examples: int, steps: int, pending: list[dict[str, object]] | None = None) -> ModelUpdate:
        """Store `checkpoint` with its offsets (and the examples still waiting for a step), announce it.

        Raises when the broker never acknowledges the announcement (the version stays in the store).
        """
        started = time.perf_counter()
        manifest = {"version": checkpoint.version, "model": checkpoint.preset,
                    "trained_through": {str(p): o for p, o in trained_through.items()},
                    "last_click_ts": last_click_ts, "examples_trained": examples, "steps": steps,
                    "pending": pending or []}
        stored = self.store.publish(lambda path: checkpoint.save(path), manifest)
        index = self.candidates(checkpoint, stored.path) if self.candidates else None
        update = ModelUpdate(
            model=checkpoint.preset, sequence=stored.sequence, version=checkpoint.version,
            path=str(stored.path.resolve()), sha256=stored.sha256, trained_through=trained_through,
            last_click_ts=last_click_ts, examples_trained=examples, steps=steps, published_at=time.time(),
            candidates_path=None if index is None else str(index.resolve()),
        )
        self.announce(update)
        metrics.PUBLISHED.inc()
        metrics.PUBLISH_SECONDS.observe(time.perf_counter() - started)
        log.info("published %s (#%d): %d examples, %d steps, trained through %s, in %.2f s", update.version,
                 update.sequence, examples, steps, trained_through, time.perf_counter() - started)
        return update

    def announce(self, update: ModelUpdate) -> None:
        errors: list[str] = []

        def on_delivery(error: object, _message: object) -> None:
            if error is not None:
                errors.append(str(error))

        self._producer.produce(self.topic, key=announcement_key(update.model, update.sequence, self.keep),
                               value=update.model_dump_json().encode(), on_delivery=on_delivery)
        if self._producer.flush(_FLUSH_TIMEOUT_S) or errors:
            raise RuntimeError(f"announcement of {update.version} not acknowledged: {errors or 'timeout'}")

    def close(self) -> None:
        self._producer.flush(5.0)


def stored_update(stored: StoredVersion, published_at: float) -> ModelUpdate:
    """The announcement of a version already in the store (re-announced by a restarted trainer)."""
    m = stored.manifest
    return ModelUpdate(
        model=m["model"], sequence=stored.sequence, version=m["version"], path=str(stored.path.resolve()),
        sha256=stored.sha256, trained_through={int(p): o for p, o in m["trained_through"].items()},
        last_click_ts=m.get("last_click_ts"), examples_trained=m.get("examples_trained", 0), steps=m.get("steps", 0),
        published_at=published_at,
    )
