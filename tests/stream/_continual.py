"""A tiny trained checkpoint for the continual-learning tests (a helper module, not fixtures).

Sessions walk fixed chains of items, so the base model is quickly right on them; items outside
the chains are new to it (what the stream must teach).
"""

from __future__ import annotations

from pathlib import Path

from streamrec.models.checkpoint import Checkpoint
from streamrec.models.train import train_checkpoint
from streamrec.state.clicklog.types import Example, Split, TrainSequence

CHAINS = [["a", "b", "c", "d", "e"], ["f", "g", "h", "i", "j"], ["k", "l", "m", "n", "o"]]
FAST = {"dim": 16, "max_epochs": 4, "patience": 4, "batch_size": 16, "lr": 0.01, "embedding_dropout": 0.0,
        "max_train_seconds": 20.0, "cooccurrence_folds": 1}


def chain_split() -> Split:
    train = tuple(TrainSequence(items=tuple(chain[start:]), user_id=None) for chain in CHAINS * 4 for start in (0, 1))
    examples = tuple(Example(session_items=tuple(chain[: t + 1]), target=chain[t + 1])
                     for chain in CHAINS for t in range(4))
    items = tuple(sorted({i for chain in CHAINS for i in chain}))
    return Split(protocol="toy", train=train, valid=examples, test=examples, items=items)


def base_checkpoint(path: Path, preset: str = "default") -> Checkpoint:
    """Train the toy base model and save it at `path`."""
    checkpoint = train_checkpoint(preset, chain_split(), device="cpu", seed=0, **FAST)
    checkpoint.save(path)
    return checkpoint
