"""A tiny batch-trained checkpoint for the continual-learning tests (chains of items, dim 16)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streamrec.config import load_settings
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.knn import knn_params
from streamrec.models.train import train_checkpoint
from streamrec.state.clicklog.types import Example, Split, TrainSequence

CHAINS = [["a", "b", "c", "d", "e"], ["f", "g", "h", "i", "j"], ["k", "l", "m", "n", "o"]]
"""Each session walks one chain: the next item is determined by the last click."""


def chain_split() -> Split:
    train = tuple(TrainSequence(tuple(chain[start:])) for chain in CHAINS * 4 for start in (0, 1))
    examples = tuple(Example(tuple(chain[: t + 1]), chain[t + 1]) for chain in CHAINS for t in range(len(chain) - 1))
    return Split("toy", train, examples, examples, tuple(sorted({i for chain in CHAINS for i in chain})))


@pytest.fixture(scope="session")
def tiny_checkpoint() -> Checkpoint:
    return train_checkpoint("grainrec-contextgnn", chain_split(), device="cpu", dim=16, max_epochs=2,
                            knn=replace(knn_params(load_settings()), max_neighbours=8))
