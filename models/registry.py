"""Scorers by name: the one place that turns `settings.scoring` into a Scorer.

`scoring.scorer` is a baseline name ("sknn", "pop") or a checkpoint path; a checkpoint
(or `scoring.checkpoint_path`) is loaded by the neural-model code with the kNN as its
fallback for cold users and short sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from streamrec.config import Settings
from streamrec.models.knn import SessionKNN, session_knn
from streamrec.models.popularity import Popularity, popularity
from streamrec.models.scorer import Scorer

CHECKPOINT_SUFFIX = ".pt"
"""A `scoring.scorer` ending in this names a checkpoint file, even one that is missing."""
STATS_SUBDIR = "scoring"
"""Baseline statistics live under `state.dir / STATS_SUBDIR / <scorer name>`."""


def _stats_path(settings: Settings, name: str, persist: bool) -> Path | None:
    return settings.state.dir / STATS_SUBDIR / name if persist else None


def build_sknn(settings: Settings, persist: bool = True) -> SessionKNN:
    """The kNN baseline with every parameter from `settings.scoring`."""
    s = settings.scoring
    return session_knn(
        window=s.sknn_window,
        backward_weight=s.sknn_backward_weight,
        max_neighbours=s.sknn_neighbours,
        half_life_clicks=s.sknn_half_life_clicks,
        recency_decay=s.sknn_recency_decay,
        idf=s.sknn_idf,
        repeat=s.sknn_repeat,
        path=_stats_path(settings, SessionKNN.name, persist),
    )


def build_popularity(settings: Settings, persist: bool = True) -> Popularity:
    """The popularity baseline, decaying like the kNN's statistics."""
    path = _stats_path(settings, Popularity.name, persist)
    return popularity(half_life_clicks=settings.scoring.sknn_half_life_clicks, path=path)


_BASELINES: dict[str, tuple[Callable[[Settings, bool], Scorer], str]] = {
    SessionKNN.name: (build_sknn, "session item-kNN over streaming co-occurrence, recency-weighted, popularity fallback"),
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
        from streamrec.models.serving import load_checkpoint_scorer

        fallback = build_sknn(settings, persist)
        from streamrec.models.candidates import CandidateConfig

        candidates = CandidateConfig.from_settings(settings.scoring)
        return load_checkpoint_scorer(checkpoint, device=settings.scoring.device, fallback=fallback, candidates=candidates)
    name = settings.scoring.scorer
    if name not in _BASELINES:
        raise ValueError(f"unknown scorer {name!r}: not a checkpoint file and not one of {sorted(_BASELINES)}")
    build, _ = _BASELINES[name]
    return build(settings, persist)
