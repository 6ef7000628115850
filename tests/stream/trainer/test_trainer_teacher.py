"""A restarted trainer keeps distilling towards the checkpoint it started from (`distill_from` "start")."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from streamrec.models.online import OnlineSettings
from streamrec.models.train import train_checkpoint
from streamrec.state.clicklog.types import Example, Split, TrainSequence
from streamrec.stream.trainer.loop import Trainer


def _base_file(tmp_path: Path) -> Path:
    chains = [["a", "b", "c", "d"], ["e", "f", "g", "h"]]
    train = tuple(TrainSequence(tuple(chain[start:])) for chain in chains * 2 for start in (0, 1))
    examples = tuple(Example(tuple(chain[: t + 1]), chain[t + 1]) for chain in chains for t in range(3))
    split = Split("toy", train, examples, examples, tuple(sorted({i for chain in chains for i in chain})))
    path = tmp_path / "base.pt"
    train_checkpoint("grainrec-contextgnn", split, device="cpu", dim=8, max_epochs=1).save(path)
    return path


def test_the_resumed_trainer_is_anchored_to_its_base_checkpoint(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    base = _base_file(tmp_path)
    start = Trainer._start_checkpoint(base, OnlineSettings())
    assert start is not None and sorted(start.vocab.to_list()) == list("abcdefgh")
    assert Trainer._start_checkpoint(base, OnlineSettings(distill_from="latest")) is None
    assert Trainer._start_checkpoint(base, OnlineSettings(distillation_weight=0.0)) is None
    with caplog.at_level(logging.WARNING):
        assert Trainer._start_checkpoint(tmp_path / "gone.pt", OnlineSettings()) is None
    assert "the distillation teacher is the resumed version" in caplog.text
