"""Streaming co-occurrence counts give the head the same tables batch training computes."""

from __future__ import annotations

import random
from dataclasses import replace

import torch

from streamrec.config import load_settings
from streamrec.models.contextgnn import ContextGNNHead
from streamrec.models.knn import knn_params
from streamrec.models.online.cooccurrence import StreamingCooccurrence
from streamrec.models.presets import preset
from streamrec.models.train import _cooccurrence_tables

ITEMS = 20

KNN = replace(knn_params(load_settings()), max_neighbours=ITEMS)
"""Every neighbour kept, so batch and streamed tables can be compared row by row."""


def _sequences(seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(1, ITEMS) for _ in range(rng.randint(2, 7))] for _ in range(80)]


def _batch_head(sequences: list[list[int]]) -> tuple[ContextGNNHead, torch.Tensor]:
    config = preset("grainrec-contextgnn", dim=8, knn=KNN, session_cooccurrence=True)
    counts = torch.bincount(torch.tensor([i for s in sequences for i in s]), minlength=ITEMS).float()
    head = ContextGNNHead(8, ITEMS, config.recency_decay, config.scale, KNN, session_table=True)
    cosine, row, session = _cooccurrence_tables(config, ITEMS, sequences)
    head.set_neighbours(cosine, row, counts, session)
    return head, counts


def _rows(index: torch.Tensor, weight: torch.Tensor) -> list[dict[int, float]]:
    """Each row as {neighbour: weight} (tie order inside a row is not part of the contract)."""
    return [{int(i): round(float(w), 5) for i, w in zip(ri, rw) if w > 0} for ri, rw in zip(index, weight)]


def _streamed_head(sequences: list[list[int]]) -> tuple[ContextGNNHead, torch.Tensor, StreamingCooccurrence]:
    stats = StreamingCooccurrence(ITEMS, window=KNN.window, row_entries_cap=1000, backward_weight=KNN.backward_weight,
                                  session_pairs=True)
    for sequence in sequences:
        for t, item in enumerate(sequence):
            stats.observe(sequence[:t], item)
    head = ContextGNNHead(8, ITEMS, 0.7, 12.0, KNN, session_table=True)
    counts = torch.zeros(ITEMS)
    stats.write_tables(head, counts, head.knn.idf)
    return head, counts, stats


def test_click_by_click_counts_give_the_batch_tables() -> None:
    sequences = _sequences(0)
    batch, batch_counts = _batch_head(sequences)
    streamed, counts, _ = _streamed_head(sequences)
    assert torch.equal(counts, batch_counts)
    assert (_rows(streamed.neighbour_index, streamed.neighbour_weight)
            == _rows(batch.neighbour_index, batch.neighbour_weight))
    assert _rows(streamed.knn_index, streamed.knn_weight) == _rows(batch.knn_index, batch.knn_weight)
    assert _rows(streamed.session_index, streamed.session_weight) == _rows(batch.session_index, batch.session_weight)
    assert torch.equal(streamed.session_count, batch.session_count)
    assert torch.allclose(streamed.idf_weight, batch.idf_weight)


def test_only_touched_rows_are_rewritten_and_new_clicks_arrive() -> None:
    sequences = _sequences(1)
    head, counts, stats = _streamed_head(sequences)
    assert stats.write_tables(head, counts, head.knn.idf) == 0  # nothing new: nothing rewritten
    stats.observe([3], 4)
    # rows 3 (forward) and 4 (backward) of the windowed tables, and both rows of the session table
    assert stats.write_tables(head, counts, head.knn.idf) == 4
    batch, _ = _batch_head(sequences + [[3, 4]])
    assert _rows(head.knn_index, head.knn_weight)[3] == _rows(batch.knn_index, batch.knn_weight)[3]


def test_counts_rebuilt_from_a_checkpoints_tables_reproduce_them() -> None:
    sequences = _sequences(2)
    batch, counts = _batch_head(sequences)
    stats = StreamingCooccurrence.from_tables(batch, counts, KNN, row_entries_cap=1000)
    stats.dirty.update(range(ITEMS))
    assert stats.sessions is not None  # the batch head has a session table
    stats.sessions.dirty.update(range(ITEMS))
    head = ContextGNNHead(8, ITEMS, 0.7, 12.0, KNN, session_table=True)
    stats.write_tables(head, torch.zeros(ITEMS), head.knn.idf)
    assert _rows(head.neighbour_index, head.neighbour_weight) == _rows(batch.neighbour_index, batch.neighbour_weight)
    assert _rows(head.session_index, head.session_weight) == _rows(batch.session_index, batch.session_weight)
    assert _rows(head.knn_index, head.knn_weight) == _rows(batch.knn_index, batch.knn_weight)


def test_forgetting_a_row_removes_it_everywhere() -> None:
    head, counts, stats = _streamed_head(_sequences(3))
    stats.forget(5)
    stats.write_tables(head, counts, head.knn.idf)
    assert not (head.knn_index == 5).any() and not (head.neighbour_index == 5).any()
    assert counts[5] == 0 and not head.knn_weight[5].any()
    assert not (head.session_index == 5).any() and head.session_count[5] == 0 and not head.session_weight[5].any()


def test_rows_stay_capped() -> None:
    stats = StreamingCooccurrence(200, window=3, row_entries_cap=10, backward_weight=0.5)
    for item in range(2, 200):
        stats.observe([1], item)
    assert len(stats.rows[1]) <= 15 and stats.mass[1] == 198.0  # trimmed entries keep their mass


def test_a_session_counts_each_pair_once_whatever_its_length() -> None:
    """The session table's n(a, b) counts sessions: re-clicks and distance add nothing."""
    stats = StreamingCooccurrence(10, window=1, row_entries_cap=10, backward_weight=0.5, session_pairs=True)
    session = [1, 2, 1, 3, 4, 5, 6, 1, 2]
    for t, item in enumerate(session):
        stats.observe(session[:t], item)
    assert stats.sessions is not None
    # 4 and 5 never next to 1: beyond the window
    assert stats.sessions.rows[1] == {2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0, 6: 1.0}
    assert stats.sessions.sessions[1] == 1.0 and stats.sessions.sessions[2] == 1.0
    assert 4 not in stats.rows[1] and 5 not in stats.rows[1]  # the windowed counts do not see that far
    stats.observe([7], 1)  # a second session holding 1
    assert stats.sessions.sessions[1] == 2.0 and stats.sessions.rows[1][7] == 1.0


def test_rows_are_read_from_a_checkpoints_tables_only_when_a_click_touches_them() -> None:
    """A scoring stage rebuilds counts at every swap: that must not cost a pass over every row."""
    batch, counts = _batch_head(_sequences(2))
    stats = StreamingCooccurrence.from_tables(batch, counts, KNN, row_entries_cap=1000)
    assert stats.sessions is not None
    assert not any(stats.rows) and not any(stats.sessions.rows)  # nothing read yet
    stats.observe([3], 4)
    assert {a for a, row in enumerate(stats.rows) if row} <= {3, 4}
    assert {a for a, row in enumerate(stats.sessions.rows) if row} <= {3, 4}
    eager = StreamingCooccurrence.from_tables(batch, counts, KNN, row_entries_cap=1000)
    eager._read_all()
    assert stats._row(7) == eager.rows[7] and stats._row(7)  # a row read late is the row read at once


def test_forgetting_after_a_rebuild_removes_the_item_from_rows_not_read_yet() -> None:
    batch, counts = _batch_head(_sequences(4))
    assert (batch.knn_index == 5).sum() > 1 and (batch.session_index == 5).sum() > 1
    stats = StreamingCooccurrence.from_tables(batch, counts, KNN, row_entries_cap=1000)
    stats.forget(5)
    stats.write_tables(batch, counts, batch.knn.idf)
    assert not (batch.knn_index == 5).any() and not (batch.neighbour_index == 5).any()
    assert not (batch.session_index == 5).any()
