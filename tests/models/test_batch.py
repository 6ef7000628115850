"""Session graph collation: SR-GNN edge weights and padding-free batching of uneven graphs."""

from __future__ import annotations

import pytest
import torch

from streamrec.models.graph.attention import complete_edges
from streamrec.models.graph.batch import collate_sessions, graph_sizes

A, B, C, D = 1, 2, 3, 4


def _edges(batch, field: str) -> dict[tuple[int, int], float]:
    src, dst = batch.edge_index
    items = batch.x
    return {(int(items[s]), int(items[d])): float(w) for s, d, w in zip(src, dst, batch[field])}


def test_clicks_abcbd_give_the_weighted_edges_of_the_srgnn_note() -> None:
    batch = collate_sessions([[A, B, C, B, D]])
    assert batch.x.tolist() == [A, B, C, D]  # one node per unique item
    assert _edges(batch, "edge_weight_out") == {(A, B): 1.0, (B, C): 0.5, (C, B): 1.0, (B, D): 0.5}
    # in-weights are normalised by the target's in-degree: B is entered from A and from C
    assert _edges(batch, "edge_weight_in") == {(A, B): 0.5, (B, C): 1.0, (C, B): 0.5, (B, D): 1.0}
    assert int(batch.x[batch.last[0]]) == D
    assert batch.x[batch.click_node].tolist() == [A, B, C, B, D]


def test_repeated_transitions_are_counted() -> None:
    batch = collate_sessions([[A, B, A, B, C]])
    weights = _edges(batch, "edge_weight_out")
    assert weights[(A, B)] == 1.0
    assert weights[(B, A)] == pytest.approx(0.5) and weights[(B, C)] == pytest.approx(0.5)
    assert sorted(batch.edge_count.tolist()) == [1.0, 1.0, 2.0]


def test_uneven_graphs_are_batched_without_padding_or_cross_edges() -> None:
    sessions = [[A], [B, C, B, C, D], [D, A]]
    batch = collate_sessions(sessions)
    assert batch.num_graphs == 3
    assert graph_sizes(batch).tolist() == [1, 3, 2]
    assert batch.batch.tolist() == [0, 1, 1, 1, 2, 2]
    src, dst = batch.edge_index
    assert torch.equal(batch.batch[src], batch.batch[dst])  # edges never cross sessions
    assert [int(batch.x[i]) for i in batch.last] == [A, D, A]
    assert batch.click_ptr.tolist() == [0, 1, 6, 8]
    assert batch.edge_index.size(1) == 4  # (B,C), (C,B), (C,D) in graph 1; (D,A) in graph 2


def test_self_repeat_is_a_self_loop() -> None:
    batch = collate_sessions([[A, A, B]])
    assert _edges(batch, "edge_weight_out") == {(A, A): 0.5, (A, B): 0.5}


def test_empty_session_is_rejected() -> None:
    with pytest.raises(ValueError):
        collate_sessions([[A], []])


def test_complete_edges_pair_every_node_of_a_graph_and_nothing_else() -> None:
    batch = collate_sessions([[A, B], [C], [A, B, C]])
    pairs = complete_edges(batch.ptr)
    assert pairs.size(1) == 2 * 2 + 1 + 3 * 3
    assert torch.equal(batch.batch[pairs[0]], batch.batch[pairs[1]])
    assert len({tuple(p) for p in pairs.T.tolist()}) == pairs.size(1)
