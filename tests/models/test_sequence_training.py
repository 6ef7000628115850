"""All-positions training: every transition is a target exactly once, with at most `window` clicks before it."""

from __future__ import annotations

import torch

from streamrec.models.presets import preset
from streamrec.models.recommender import SessionRecommender
from streamrec.models.sequence_training import SequenceChunks, all_positions_loss
from streamrec.state.vocab import PAD_INDEX


def test_every_transition_is_a_target_once_and_inputs_precede_their_targets() -> None:
    sequences = [[1, 2, 3, 4, 5, 6, 7], [8, 9], [3]]
    chunks = SequenceChunks.of(sequences, window=3)
    pairs = []
    for inputs, targets, length in zip(chunks.inputs.tolist(), chunks.targets.tolist(), chunks.lengths.tolist(),
                                       strict=True):
        assert all(i != PAD_INDEX for i in inputs[:length]) and all(i == PAD_INDEX for i in inputs[length:])
        assert inputs[1:length] == targets[: length - 1]  # the targets are the inputs shifted by one
        pairs += [(inputs[t], targets[t]) for t in range(length)]
    expected = [(s[t], s[t + 1]) for s in sequences for t in range(len(s) - 1)]
    assert sorted(pairs) == sorted(expected)
    assert max(chunks.lengths.tolist()) <= 3


def test_batches_cover_every_chunk_once() -> None:
    chunks = SequenceChunks.of([[i, i + 1, i + 2] for i in range(1, 40)], window=5)
    rows = torch.cat(chunks.batches(batch_size=4)).tolist()
    assert sorted(rows) == list(range(len(chunks)))


def test_the_all_positions_loss_falls_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model = SessionRecommender(preset("sasrec", dim=16, window=4, embedding_dropout=0.0, hidden_dropout=0.0), 12)
    chunks = SequenceChunks.of([[1, 2, 3, 4], [5, 6, 7], [8, 9, 10, 11]], window=4)
    optimiser = torch.optim.Adam(model.encoder.parameters(), lr=0.05)
    losses = []
    for _ in range(5):
        loss = all_positions_loss(model.encoder, chunks.inputs, chunks.targets, scale=12.0)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
