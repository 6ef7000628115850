"""build_scorer: names to scorers, persisted statistics under state.dir, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec.config import load_settings
from streamrec.models.checkpoint import CheckpointError
from streamrec.models.registry import build_scorer, list_scorers
from streamrec.models.scorer import Query, Scorer, close_scorer


def test_every_listed_scorer_builds_and_answers(tmp_path: Path) -> None:
    for name in list_scorers():
        scorer = build_scorer(load_settings(scoring={"scorer": name}, state={"dir": tmp_path}), persist=False)
        assert isinstance(scorer, Scorer) and scorer.name == name
        assert scorer.recommend([Query(session_items=["x"])], k=3) == [[]]


def test_streaming_baselines_persist_under_the_state_dir(tmp_path: Path) -> None:
    settings = load_settings(scoring={"scorer": "sknn"}, state={"dir": tmp_path})
    scorer = build_scorer(settings)
    scorer.observe([["a"], ["a", "b"]])
    close_scorer(scorer)
    assert (tmp_path / "scoring" / "sknn").is_dir()
    again = build_scorer(settings)
    assert again.version == scorer.version and again.recommend([Query(session_items=["a"])], 1)[0][0][0] == "b"
    close_scorer(again)


def test_an_unknown_name_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sknn"):
        build_scorer(load_settings(scoring={"scorer": "nope"}, state={"dir": tmp_path}))


def test_a_missing_checkpoint_named_as_scorer_is_reported_as_missing(tmp_path: Path) -> None:
    missing = tmp_path / "model.pt"
    with pytest.raises(CheckpointError, match=f"{missing}: no such checkpoint file"):
        build_scorer(load_settings(scoring={"scorer": str(missing)}, state={"dir": tmp_path}))
