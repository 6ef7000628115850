"""A prequential run fed in parts and pickled between them gives what one uninterrupted run gives."""

from __future__ import annotations

import io

import torch

from streamrec.config import load_settings
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.online import ContinualLearner, OnlineSettings
from streamrec.models.online.prequential import Competitor, Continual, Frozen, Observing, Prequential, prequential
from streamrec.models.registry import build_sknn
from streamrec.models.serving import NeuralScorer
from streamrec.state.clicklog.types import LoggedClick

T0 = 1_700_000_000.0
CHAINS = [["a", "b", "c", "d", "e"], ["f", "g", "h", "i", "j"], ["k", "l", "m", "n", "o"]]
"""The chains the session fixture's checkpoint learned (tests/models/online/conftest.py)."""


def _stream() -> list[LoggedClick]:
    """Sessions walking the chains, with an unseen item now and then (the catalogue grows mid-stream)."""
    clicks = []
    for n in range(60):
        chain = CHAINS[n % len(CHAINS)] + ([f"new-{n // 20}"] if n % 4 == 0 else [])
        clicks += [LoggedClick(f"s{n}", None, item, T0 + 10 * n + t) for t, item in enumerate(chain[n % 2:])]
    return sorted(clicks, key=lambda c: c.ts)


def _competitors(checkpoint: Checkpoint) -> dict[str, Competitor]:
    return {"continual": Continual(ContinualLearner(checkpoint, OnlineSettings(micro_batch_size=8), seed=0)),
            "frozen": Frozen(NeuralScorer(checkpoint, device="cpu")),
            "sknn": Observing(build_sknn(load_settings(), persist=False))}


def test_a_run_resumed_from_its_pickle_matches_one_uninterrupted_run(tiny_checkpoint: Checkpoint) -> None:
    clicks = _stream()
    whole = prequential(clicks, _competitors(tiny_checkpoint), chunk=8)

    half = len(clicks) // 2 // 8 * 8  # a chunk boundary: feeding in parts changes nothing else
    run = Prequential(_competitors(tiny_checkpoint), chunk=8)
    run.feed(clicks[:half])
    saved = io.BytesIO()
    torch.save(run, saved)
    saved.seek(0)
    resumed: Prequential = torch.load(saved, weights_only=False)
    resumed.feed(clicks[half:])

    assert resumed.result.clicks == whole.clicks == len(clicks)
    for name, tally in whole.metrics.items():
        assert resumed.result.metrics[name].ranks == tally.ranks, name
        assert resumed.result.metrics[name].summary() == tally.summary(), name
    assert whole.metrics["continual"].summary()["HR@20"] > 0.5  # the chains are learnable: the run judged something
