"""Self-attentive encoder: shapes, padding never leaks between sessions, order matters, a node's state is its latest
click's."""

from __future__ import annotations

import pytest
import torch

from streamrec.models.graph.batch import collate_sessions
from streamrec.models.presets import ModelConfig, preset
from streamrec.models.recommender import SessionRecommender
from streamrec.models.sequence_encoder import CausalBandFilter, SelfAttentiveEncoder


def _encoder(window: int = 8, lowpass_mix: float = 0.0) -> SelfAttentiveEncoder:
    torch.manual_seed(0)
    config = preset("sasrec", dim=16, heads=2, window=window, embedding_dropout=0.0, hidden_dropout=0.0,
                    lowpass_mix=lowpass_mix, lowpass_clicks=3)
    return SelfAttentiveEncoder(config, num_items=20).eval()


def test_one_unit_vector_per_session_and_per_node() -> None:
    session, nodes = _encoder()(collate_sessions([[1, 2, 3], [4], [5, 6, 5, 7]]))
    assert session.shape == (3, 16) and nodes.shape == (7, 16)  # 3 + 1 + 3 distinct items
    assert torch.allclose(session.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(nodes.norm(dim=-1), torch.ones(7), atol=1e-5)


@pytest.mark.parametrize("lowpass_mix", [0.0, 0.7])
def test_padding_and_batch_neighbours_change_nothing(lowpass_mix: float) -> None:
    """A short session batched with a long one (so left-padded) encodes as it does alone."""
    encoder = _encoder(lowpass_mix=lowpass_mix)
    together, nodes_together = encoder(collate_sessions([[1, 2, 3, 4, 5, 6], [7, 8]]))
    alone, nodes_alone = encoder(collate_sessions([[7, 8]]))
    assert torch.allclose(together[1], alone[0], atol=1e-5)
    assert torch.allclose(nodes_together[-2:], nodes_alone, atol=1e-5)


def test_click_order_matters_unlike_a_bag_of_items() -> None:
    encoder = _encoder()
    a, _ = encoder(collate_sessions([[1, 2, 3]]))
    b, _ = encoder(collate_sessions([[3, 2, 1]]))
    assert not torch.allclose(a, b, atol=1e-4)


def test_a_repeated_items_node_state_is_its_latest_click() -> None:
    """Item 5 is clicked first and third: its node state is the third position's, which is the session's own."""
    encoder = _encoder()
    session, nodes = encoder(collate_sessions([[5, 6, 5]]))
    graphs = collate_sessions([[5, 6, 5]])
    node_of_5 = int((graphs.x == 5).nonzero())
    assert torch.allclose(nodes[node_of_5], session[0], atol=1e-5)


def test_the_whole_model_trains_with_the_contextgnn_head() -> None:
    """The encoder plugs into the same recommender and head: one gradient step lowers the loss on a fixed batch."""
    torch.manual_seed(0)
    config = preset("sasrec", dim=16, window=6, max_epochs=1)
    model = SessionRecommender(config, num_items=12)
    inputs = model.encode([([1, 2, 3], []), ([4, 5], []), ([6, 7, 8, 9, 10, 11, 1], [])])
    target = torch.tensor([4, 6, 2])
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    model.eval()  # no dropout: the loss is a function of the weights only
    losses = []
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(inputs), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_unknown_encoder_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="graph, attention"):
        ModelConfig(encoder="transformer")


@pytest.mark.parametrize("lowpass_mix", [0.0, 0.7])
def test_one_pass_over_a_sequence_gives_every_prefixs_session_vector(lowpass_mix: float) -> None:
    """The state after click t does not depend on later clicks or padding: all-positions training
    (models/sequence_training.py) trains exactly what serving computes for each prefix (with the filter too)."""
    encoder = _encoder(lowpass_mix=lowpass_mix)
    sequences = [[1, 2, 3, 4, 5, 6], [7, 8, 7]]
    clicks = torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 7, 0, 0, 0]])
    states = torch.nn.functional.normalize(encoder.encode_sequences(clicks), dim=-1)
    for b, sequence in enumerate(sequences):
        prefixes, _ = encoder(collate_sessions([sequence[: t + 1] for t in range(len(sequence))]))
        assert torch.allclose(states[b, : len(sequence)], prefixes, atol=1e-5)


def test_the_filters_low_pass_is_the_mean_of_the_latest_clicks() -> None:
    """beta = 0 leaves only the low-pass: position t holds the mean of positions t-2..t (lowpass_clicks 3)."""
    band = CausalBandFilter(dim=1, clicks=3)
    with torch.no_grad():
        band.sqrt_beta.zero_()
    z = torch.tensor([1.0, 2.0, 6.0, 10.0, 2.0]).view(1, 5, 1)
    expected = torch.tensor([1.0, 1.5, 3.0, 6.0, 6.0])
    assert torch.allclose(band(z).flatten(), expected)
    with torch.no_grad():
        band.sqrt_beta.fill_(1.0)  # beta = 1: low + (z - low), the input itself
    assert torch.allclose(band(z), z)


def test_without_the_filter_the_encoder_has_no_filter_weights() -> None:
    """lowpass_mix 0 (the default) builds the encoder as before, so checkpoints written before the filter load."""
    names = {name for name, _ in _encoder().named_parameters()}
    assert not any("filter" in name for name in names)
    assert any("filter.sqrt_beta" in name for name, _ in _encoder(lowpass_mix=0.5).named_parameters())


@pytest.mark.parametrize(("field", "value"), [("lowpass_mix", 1.5), ("lowpass_clicks", 0)])
def test_a_filter_setting_out_of_range_is_refused(field: str, value: float) -> None:
    overrides = {"lowpass_mix": 0.5, field: value}
    with pytest.raises(ValueError, match=field):
        SelfAttentiveEncoder(preset("sasrec", dim=16, **overrides), num_items=20)
