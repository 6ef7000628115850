"""Session encoder and readout: shapes, independence of batched sessions, attention within a graph."""

from __future__ import annotations

import torch

from streamrec.models.graph.attention import GraphSelfAttention, complete_edges
from streamrec.models.graph.batch import collate_sessions
from streamrec.models.presets import preset
from streamrec.models.session_encoder import SessionEncoder


def _encoder(name: str) -> SessionEncoder:
    torch.manual_seed(0)
    return SessionEncoder(preset(name, dim=16, embedding_dropout=0.0), num_items=20).eval()


def test_session_vectors_are_unit_length_and_one_per_session() -> None:
    for name in ("srgnn", "grainrec"):
        session, nodes = _encoder(name)(collate_sessions([[1, 2, 3], [4], [5, 6, 5, 7]]))
        assert session.shape == (3, 16) and nodes.shape == (7, 16)
        assert torch.allclose(session.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_batching_does_not_mix_sessions() -> None:
    encoder = _encoder("grainrec")
    together, _ = encoder(collate_sessions([[1, 2, 3], [4, 5]]))
    alone, _ = encoder(collate_sessions([[4, 5]]))
    assert torch.allclose(together[1], alone[0], atol=1e-5)


def test_last_click_matters() -> None:
    encoder = _encoder("srgnn")
    a, _ = encoder(collate_sessions([[1, 2, 3]]))
    b, _ = encoder(collate_sessions([[1, 3, 2]]))  # same nodes, different last click
    assert not torch.allclose(a, b)


def test_attention_stays_inside_each_graph() -> None:
    torch.manual_seed(0)
    layer = GraphSelfAttention(dim=8, heads=2).eval()
    batch = collate_sessions([[1, 2, 3], [4, 5]])
    h = torch.randn(batch.num_nodes, 8)
    out = layer(h, complete_edges(batch.ptr))
    solo = collate_sessions([[4, 5]])
    assert torch.allclose(out[3:], layer(h[3:], complete_edges(solo.ptr)), atol=1e-5)
