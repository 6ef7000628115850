"""Continual fine-tuning follows drift and new items that a frozen checkpoint cannot (prequential, synthetic)."""

from __future__ import annotations

from dataclasses import replace

from streamrec.config import load_settings
from streamrec.models.knn import knn_params
from streamrec.models.online import ContinualLearner, OnlineSettings
from streamrec.models.online.prequential import Continual, Frozen, prequential
from streamrec.models.serving import NeuralScorer
from streamrec.models.train import train_checkpoint
from streamrec.state.clicklog.protocols import sessions_of, split_sessions
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate


def test_continual_learning_beats_the_frozen_checkpoint_after_drift_and_new_items() -> None:
    spec = SyntheticSpec(
        seed=3, users=100, sessions=1600, items=200, intents=10, follow_prob=0.8, new_item_share=0.2, drift_share=0.5,
        drift_day=15.0,
    )
    clicks = generate(spec)
    drift_ts = spec.start_ts + spec.drift_day * 86_400.0
    before = [c for c in clicks if c.ts < drift_ts]
    after = [c for c in clicks if c.ts >= drift_ts]
    checkpoint = train_checkpoint(
        "grainrec-contextgnn", split_sessions(sessions_of(before), [], 0.1), device="cpu", dim=16, max_epochs=2,
        knn=replace(knn_params(load_settings()), max_neighbours=20),
    )
    learner = ContinualLearner(checkpoint, OnlineSettings())
    result = prequential(
        after, {"continual": Continual(learner), "frozen": Frozen(NeuralScorer(checkpoint, device="cpu"))}, chunk=32
    )
    continual, frozen = (result.metrics[name].summary() for name in ("continual", "frozen"))
    assert result.metrics["continual"].count == result.metrics["frozen"].count > 3000
    assert len(learner.vocab) > len(checkpoint.vocab)  # items released after training joined the catalogue
    assert continual["HR@20"] > frozen["HR@20"] + 0.1  # measured 0.827 vs 0.628 (lr 0: tables only, 0.658)
    assert continual["MRR@20"] > frozen["MRR@20"] + 0.03  # measured 0.370 vs 0.297


def test_without_drift_the_log_is_unchanged() -> None:
    spec = SyntheticSpec(sessions=200, items=100)
    plain = generate(spec)
    assert generate(SyntheticSpec(sessions=200, items=100, drift_share=0.0, drift_day=3.0)) == plain
    drifted = generate(SyntheticSpec(sessions=200, items=100, drift_share=0.5, drift_day=3.0))
    early = [c for c in plain if c.ts < spec.start_ts + 3 * 86_400.0]
    assert drifted[: len(early)] == early and drifted != plain
