"""Scorers by name: the one place that turns `settings.scoring` into a Scorer.

`scoring.scorer` is a baseline name ("sknn", "pop") or a checkpoint path; a checkpoint
(or `scoring.checkpoint_path`) is loaded by the neural-model code with the kNN as its
fallback for cold users and short sessions.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from streamrec.config import Settings
from streamrec.models.knn import SessionKNN, knn_params, session_knn_from
from streamrec.models.popularity import Popularity, popularity
from streamrec.models.scorer import Scorer
from streamrec.state.cooccurrence import CooccurrencePolicy
from streamrec.state.knn_params import KnnParams

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIX = ".pt"
"""A `scoring.scorer` ending in this names a checkpoint file, even one that is missing."""
STATS_SUBDIR = "scoring"
"""Baseline statistics live under `state.dir / STATS_SUBDIR / <consumer group> / <scorer>-<policy digest>`."""


def stats_path(settings: Settings, name: str, policy: CooccurrencePolicy) -> Path:
    """Where a scorer's persisted statistics live: one folder per consumer group (two scoring stages
    on one host, e.g. the demo's shadow scorers, never share a RocksDB folder) and per policy (a
    changed `scoring.sknn_*` policy starts a fresh store, which the scoring stage re-learns from
    the scoring-requests topic, instead of refusing to open the old one)."""
    digest = hashlib.sha1(repr(sorted(asdict(policy).items())).encode()).hexdigest()[:8]
    return settings.state.dir / STATS_SUBDIR / settings.kafka.consumer_group / f"{name}-{digest}"


def _stats_kwargs(settings: Settings, name: str, policy: CooccurrencePolicy, persist: bool) -> dict[str, object]:
    path = stats_path(settings, name, policy) if persist else None
    return {"path": path, "learned_ids_kept": settings.scoring.learned_event_ids_kept}


def build_sknn(settings: Settings, persist: bool = True, params: KnnParams | None = None) -> SessionKNN:
    """The kNN baseline with `params` (default: the settings' `scoring.sknn_*`)."""
    params = params or knn_params(settings)
    return session_knn_from(params, **_stats_kwargs(settings, SessionKNN.name, params.policy, persist))


def build_popularity(settings: Settings, persist: bool = True) -> Popularity:
    """The popularity baseline, decaying like the kNN's statistics."""
    policy = knn_params(settings).popularity_policy
    return popularity(policy, **_stats_kwargs(settings, Popularity.name, policy, persist))  # type: ignore[arg-type]


_BASELINES: dict[str, tuple[Callable[[Settings, bool], Scorer], str]] = {
    SessionKNN.name: (build_sknn, "recency-weighted sequential item-transition kNN (not session-kNN): each recent "
                      "session item votes for the items that followed it in past sessions; popularity fills the rest"),
    Popularity.name: (build_popularity, "most clicked items (time-decayed)"),
}


def list_scorers() -> dict[str, str]:
    """Scorer names `scoring.scorer` accepts, with one line each (a checkpoint path is accepted too)."""
    return {name: description for name, (_, description) in _BASELINES.items()}


def _checkpoint(settings: Settings) -> Path | None:
    if settings.scoring.checkpoint_path is not None:
        return settings.scoring.checkpoint_path
    name = settings.scoring.scorer
    if name in _BASELINES:
        return None
    path = Path(name)  # a missing "*.pt" is a checkpoint path: loading it says which file is missing
    return path if path.is_file() or path.suffix == CHECKPOINT_SUFFIX else None


def build_scorer(settings: Settings, *, persist: bool = True) -> Scorer:
    """The scorer `settings.scoring` names.

    `persist=False` keeps baseline statistics in memory (offline evaluation); the streaming
    worker persists them under `state.dir` so they survive restarts.
    """
    checkpoint = _checkpoint(settings)
    if checkpoint is not None:
        from streamrec.models.candidates import CandidateConfig
        from streamrec.models.checkpoint import Checkpoint
        from streamrec.models.serving import load_checkpoint_scorer

        loaded = Checkpoint.load(checkpoint)
        fallback = build_sknn(settings, persist, serving_knn_params(settings, loaded.config.knn))
        candidates = CandidateConfig.from_settings(settings.scoring)
        return load_checkpoint_scorer(loaded, device=settings.scoring.device, fallback=fallback, candidates=candidates,
                                      path=checkpoint)
    name = settings.scoring.scorer
    if name not in _BASELINES:
        raise ValueError(f"unknown scorer {name!r}: not a checkpoint file and not one of {sorted(_BASELINES)}")
    build, _ = _BASELINES[name]
    return build(settings, persist)


def serving_knn_params(settings: Settings, trained: KnnParams | None) -> KnnParams:
    """The kNN parameters a checkpoint is served with: the ones it was trained with, when it saved any.

    The head of a checkpoint reproduces the kNN's score with the parameters baked into its
    weights and tables at training time; its fallback kNN answers the queries the network does
    not (cold sessions) and should rank like the kNN the head learned to trust. So the
    checkpoint's parameters win (the ContextGNN presets choose their own, `presets.CONTEXTGNN_KNN`),
    and where they differ from `scoring.sknn_*` one line says so, naming every field.
    """
    configured = knn_params(settings)
    if trained is None:
        return configured
    differences = trained.differences(configured)
    if differences:
        log.info("the checkpoint's kNN fallback uses the kNN parameters its head was trained with, not scoring.sknn_* "
                 "(checkpoint vs settings: %s)", ", ".join(f"{k}={a} vs {b}" for k, (a, b) in differences.items()))
    return trained
