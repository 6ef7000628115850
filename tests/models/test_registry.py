"""build_scorer: names to scorers, persisted statistics under state.dir, clear errors."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from streamrec.config import load_settings
from streamrec.models.checkpoint import CheckpointError
from streamrec.models.knn import knn_params
from streamrec.models.registry import build_scorer, list_scorers, serving_knn_params, stats_path
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
    assert stats_path(settings, "sknn", knn_params(settings).policy).is_dir()
    assert (stats_path(settings, "sknn", knn_params(settings).policy).parent
            == tmp_path / "scoring" / settings.kafka.consumer_group)
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


def test_a_changed_policy_opens_a_fresh_store_instead_of_refusing_the_old_one(tmp_path: Path) -> None:
    """The scoring stage re-learns a fresh store from the topic (stream/learning/catch_up.py)."""
    first = build_scorer(load_settings(scoring={"scorer": "sknn", "sknn_window": 2}, state={"dir": tmp_path}))
    first.observe([["a"], ["a", "b"]])
    close_scorer(first)
    second = build_scorer(load_settings(scoring={"scorer": "sknn", "sknn_window": 4}, state={"dir": tmp_path}))
    assert second.version.endswith("-c0")
    close_scorer(second)


def test_two_consumer_groups_never_share_a_statistics_folder(tmp_path: Path) -> None:
    a = load_settings(kafka={"consumer_group": "a"}, state={"dir": tmp_path})
    b = load_settings(kafka={"consumer_group": "b"}, state={"dir": tmp_path})
    policy = knn_params(a).policy
    assert stats_path(a, "sknn", policy) != stats_path(b, "sknn", policy)


def test_a_checkpoint_is_served_with_its_own_knn_parameters_and_a_mismatch_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = load_settings(scoring={"sknn_window": 2})
    trained = replace(knn_params(settings), window=4, idf=0.2)
    with caplog.at_level(logging.INFO, logger="streamrec.models.registry"):
        assert serving_knn_params(settings, trained) == trained
        assert "window=4 vs 2" in caplog.text and "idf=0.2 vs" in caplog.text
        caplog.clear()
        assert serving_knn_params(settings, knn_params(settings)) == knn_params(settings) and not caplog.text
