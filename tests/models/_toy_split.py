"""Tiny deterministic click data for the neural model tests (no data files needed).

Imported by the test modules (a helper, not a conftest, so it cannot clash with fixtures of
other test files in this folder)."""

from __future__ import annotations

from streamrec.state.clicklog.types import Example, Split, TrainSequence

CHAINS = [["a", "b", "c", "d", "e"], ["f", "g", "h", "i", "j"], ["k", "l", "m", "n", "o"], ["p", "q", "r", "s", "t"]]
"""Each session walks one chain: the next item is fully determined by the last click."""


def toy_split() -> Split:
    train = tuple(TrainSequence(items=tuple(chain[start:]), user_id=f"u{n}")
                  for n, chain in enumerate(CHAINS * 5) for start in (0, 1))
    examples = tuple(Example(session_items=tuple(chain[: t + 1]), target=chain[t + 1])
                     for chain in CHAINS for t in range(len(chain) - 1))
    items = tuple(sorted({i for chain in CHAINS for i in chain}))
    return Split(protocol="toy", train=train, valid=examples, test=examples, items=items)
