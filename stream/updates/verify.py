"""Verify an announced version before it may serve: file, checksum, format, compatibility, a smoke batch.

A version is refused (`Refused`, with a reason that labels the refusal counter) when:
- `missing`: the file is not (or no longer) in the store;
- `checksum`: its bytes do not hash to the announced sha256 (truncated, corrupt, overwritten);
- `format`: it does not load as a streamrec checkpoint, or its stamp differs from the announcement;
- `incompatible`: another preset or architecture than the version serving;
- `vocabulary`: an item of the serving version sits on another row (a model of another lineage; a
  continual learner only appends items or recycles the rows of expired ones);
- `smoke`: it cannot answer a small batch with finite scores.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from streamrec.models.candidates import CandidateIndex, CandidateIndexError
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.presets import RECIPE_FIELDS
from streamrec.models.scorer import Query
from streamrec.models.serving import NeuralScorer
from streamrec.state.checkpoint_store import sha256_of
from streamrec.state.vocab import PAD_INDEX
from streamrec.stream.topics import ModelUpdate

log = logging.getLogger(__name__)

SMOKE_K = 10


class Refused(Exception):
    """A version that must not serve; `reason` labels the refusal counter."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def load_verified(update: ModelUpdate, serving: NeuralScorer, smoke_queries: int) -> NeuralScorer:
    """A scorer for `update` on `serving`'s device, without fallback yet; raises Refused."""
    path = Path(update.path)
    if not path.is_file():
        raise Refused("missing", f"{path} does not exist")
    sha = sha256_of(path)
    if sha != update.sha256:
        raise Refused("checksum", f"{path} hashes to {sha[:12]}, announced {update.sha256[:12]}")
    try:
        checkpoint = Checkpoint.load(path)
    except Exception as exc:  # any failure to load is a bad file
        raise Refused("format", f"{path}: {exc}") from exc
    if checkpoint.version != update.version:
        raise Refused("format", f"{path} holds {checkpoint.version}, announced {update.version}")
    check_compatible(checkpoint, serving.checkpoint)
    index = _shipped_index(update, checkpoint.version)
    try:  # builds the candidate index here (off the scoring loop) when the catalogue needs one and none shipped
        candidate = NeuralScorer(checkpoint, device=str(serving.device), fallback=None, batch_size=serving.batch_size,
                                 candidates=serving.candidates, index=index)
    except Exception as exc:  # e.g. weights whose shapes do not fit the config
        raise Refused("incompatible", f"{update.version} does not build: {exc}") from exc
    smoke_test(candidate, smoke_queries)
    return candidate


def _shipped_index(update: ModelUpdate, version: str) -> CandidateIndex | None:
    """The candidate index announced with the version, if any and intact; None lets the scorer build one."""
    if update.candidates_path is None:
        return None
    try:
        return CandidateIndex.load(Path(update.candidates_path), model_version=version)
    except (CandidateIndexError, OSError) as exc:
        log.warning("candidate index of %s not usable (%s); building it", version, exc)
        return None


def check_compatible(new: Checkpoint, serving: Checkpoint) -> None:
    """Same preset and architecture, and every item both know on the same embedding row."""
    if new.preset != serving.preset:
        raise Refused("incompatible", f"preset {new.preset}, serving {serving.preset}")
    old_config, new_config = serving.config.to_dict(), new.config.to_dict()
    differing = sorted(k for k in old_config if k not in RECIPE_FIELDS and old_config[k] != new_config.get(k))
    if differing:
        raise Refused("incompatible", f"architecture differs in {', '.join(differing)}")
    moved = [item for item in serving.vocab.items
             if new.vocab.index(item) not in (PAD_INDEX, serving.vocab.index(item))]
    if moved:
        raise Refused("vocabulary",
                      f"{len(moved)} items (e.g. {moved[0]!r}) changed rows: not a descendant of the serving version")


def smoke_test(scorer: NeuralScorer, queries: int) -> None:
    """The version answers sessions of its first and newest items with finite scores."""
    items = scorer.vocab.items
    if not items:
        raise Refused("smoke", "empty vocabulary")
    half = max(1, queries // 2)
    chosen = list(dict.fromkeys(items[:half] + items[-half:]))
    batch = [Query(session_items=[item]) for item in chosen]
    try:
        answers = scorer.recommend(batch, SMOKE_K)
    except Exception as exc:
        raise Refused("smoke", f"recommend raised {exc!r}") from exc
    if len(answers) != len(batch) or not all(answers):
        raise Refused("smoke", "an answer of the smoke batch is empty")
    if not all(math.isfinite(score) for answer in answers for _, score in answer):
        raise Refused("smoke", "non-finite scores")
