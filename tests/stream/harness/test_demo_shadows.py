"""The demo's shadow scorers next to a primary serving a checkpoint: their own scorer, their own RocksDB folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from streamrec.config import load_settings
from streamrec.models.registry import build_scorer
from streamrec.models.scorer import Query, close_scorer
from streamrec.models.serving import NeuralScorer
from streamrec.models.train import train_checkpoint
from streamrec.stream.harness.demo import DEMO_SHADOW_SCORERS, shadow_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models"))
from _toy_split import toy_split


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    checkpoint = train_checkpoint("grainrec-contextgnn", toy_split(), device="cpu", dim=8, max_epochs=1)
    return checkpoint.save(tmp_path_factory.mktemp("ckpt") / "model.pt")


@pytest.mark.parametrize("shadow", sorted({*DEMO_SHADOW_SCORERS, "sknn"}))
def test_shadows_of_a_checkpoint_serve_their_own_scorer_from_their_own_folder(
    shadow: str, checkpoint_file: Path, tmp_path: Path
) -> None:
    primary_settings = load_settings(scoring={"checkpoint_path": checkpoint_file}, state={"dir": tmp_path})
    settings = shadow_settings(primary_settings, shadow)
    assert settings.scoring.checkpoint_path is None and settings.scoring.scorer == shadow
    primary = build_scorer(primary_settings)  # holds the LOCK of its kNN fallback's folder
    try:
        shadow_scorer = build_scorer(settings)  # used to open the same folder and die on its LOCK
        try:
            assert isinstance(primary, NeuralScorer) and shadow_scorer.name == shadow
            assert shadow_scorer.recommend([Query(session_items=["a"])], k=3) == [[]]
        finally:
            close_scorer(shadow_scorer)
    finally:
        close_scorer(primary)
