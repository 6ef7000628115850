"""`training.learner`: every OnlineSettings field can be set from the settings, wrong ones get one line."""

from __future__ import annotations

import pytest

from streamrec.config import load_settings
from streamrec.stream.trainer.learner_settings import online_settings


def test_numbers_booleans_and_names_all_reach_the_learner() -> None:
    settings = load_settings(training={"learner": {"lr": 1e-4, "max_pending_examples": 4096, "learn_head": False,
                                                   "distill_from": "latest"}})
    learner = online_settings(settings)
    assert (learner.lr, learner.max_pending_examples, learner.learn_head, learner.distill_from) == (
        1e-4, 4096, False, "latest")


@pytest.mark.parametrize("overrides", [{"distill_from": "newest"}, {"no_such_knob": 1}])
def test_a_wrong_override_is_one_line(overrides: dict[str, object]) -> None:
    with pytest.raises(SystemExit, match="training.learner is not valid"):
        online_settings(load_settings(training={"learner": overrides}))
