"""ContextGNN head: its kNN evidence is the SKNN baseline's score; training reads out-of-fold tables."""

from __future__ import annotations

import random

import pytest
import torch
from _toy_split import toy_split

from streamrec.models.contextgnn import ContextGNNHead, cooccurrence_neighbours, session_neighbours
from streamrec.models.graph.batch import collate_sessions
from streamrec.models.knn import session_knn_from
from streamrec.models.presets import preset
from streamrec.models.train import _cooccurrence_tables, _initial_model, train_checkpoint
from streamrec.state.knn_params import KnnParams
from streamrec.state.vocab import ItemVocabulary


def _random_sessions(seed: int, sessions: int = 60, items: int = 25) -> list[list[str]]:
    rng = random.Random(seed)
    return [[f"i{rng.randrange(items)}" for _ in range(rng.randint(2, 7))] for _ in range(sessions)]


def _knn(max_neighbours: int) -> KnnParams:
    return KnnParams(window=3, backward_weight=0.5, max_neighbours=max_neighbours, half_life_clicks=0.0,
                     recency_decay=0.5, idf=0.1, repeat=0.3)


def _head_for(sequences: list[list[int]], num_items: int, dim: int = 8, session_table: bool = False) -> ContextGNNHead:
    config = preset("grainrec-contextgnn", dim=dim, knn=_knn(num_items), session_cooccurrence=session_table)
    counts = torch.bincount(torch.tensor([i for s in sequences for i in s]), minlength=num_items).float()
    head = ContextGNNHead(dim, num_items, config.recency_decay, config.scale, config.knn, session_table=session_table)
    cosine, row, session = _cooccurrence_tables(config, num_items, sequences)
    head.set_neighbours(cosine, row, counts, session)
    return head


def test_knn_evidence_ranks_like_the_sknn_baseline() -> None:
    """knn[b, v] (contextgnn docstring) equals SessionKNN's score up to the per-session maximum."""
    raw = _random_sessions(seed=1)
    vocab = ItemVocabulary(sorted({i for s in raw for i in s}))
    sequences = [vocab.encode_known(s) for s in raw]
    head = _head_for(sequences, len(vocab))
    knn = session_knn_from(_knn(len(vocab)))
    knn.fit(raw)
    queries = _random_sessions(seed=2, sessions=5)
    graphs = collate_sessions([vocab.encode_known(q) for q in queries])
    scores, _ = head._knn_scores(torch.zeros(len(queries), 8), graphs, head.knn_index, head.knn_weight)
    for row, query in enumerate(queries):
        expected = knn.neighbour_scores(query)
        top = max(expected.values())
        for item, value in expected.items():
            assert scores[row, vocab.index(item)].item() == pytest.approx(value / top, rel=1e-4)
        assert int((scores[row] > 0).sum()) == len(expected)


def test_a_sessions_own_items_and_their_neighbours_are_local() -> None:
    sequences = [[1, 2, 3], [2, 4], [5, 6]]
    head = _head_for(sequences, 7)
    graphs = collate_sessions([[1]])
    two_tower = torch.zeros(1, 7)
    logits = head(torch.zeros(1, 8), two_tower, graphs, torch.zeros(graphs.num_nodes, 8))
    assert set(torch.nonzero(logits[0]).flatten().tolist()) == {1, 2, 3}  # 1 itself, 2 and 3 follow it


def test_the_session_table_counts_sessions_holding_both_items() -> None:
    """S(a, b) = n(a, b) / sqrt(n(a) n(b)) over sessions: a pair repeated inside a session counts once."""
    index, weight, sessions = session_neighbours([[1, 2, 1, 2, 3], [2, 3], [4]], 5, k=4)
    assert sessions.tolist() == [0.0, 1.0, 2.0, 2.0, 1.0]
    rows = [{int(i): round(float(w), 4) for i, w in zip(ri, rw) if w > 0} for ri, rw in zip(index, weight)]
    assert rows[1] == {2: round(1 / 2**0.5, 4), 3: round(1 / 2**0.5, 4)}
    assert rows[2] == {3: 1.0, 1: round(1 / 2**0.5, 4)} and rows[4] == {}


def test_with_the_session_table_items_of_the_same_session_beyond_the_window_are_local() -> None:
    sequences = [[1, 2, 3, 4, 5, 6], [7, 8]]
    graphs = collate_sessions([[1]])
    local = {}
    for session_table in (False, True):
        head = _head_for(sequences, 9, session_table=session_table)
        with torch.no_grad():  # the session feature starts with weight 0 (the head starts as two-tower + kNN)
            head.fusion[-1].bias[-1] = 1.0
        logits = head(torch.zeros(1, 8), torch.zeros(1, 9), graphs, torch.zeros(graphs.num_nodes, 8))
        local[session_table] = set(torch.nonzero(logits[0]).flatten().tolist())
    assert local[False] == {1, 2, 3, 4}  # window 3 after 1
    assert local[True] == {1, 2, 3, 4, 5, 6}  # the whole session; 7 and 8 never shared one with 1


def test_out_of_fold_tables_do_not_contain_the_folds_own_transitions() -> None:
    """Fold f's table is built without fold f's sequences, so their pairs are unseen there."""
    sequences = [[1, 2], [3, 4], [1, 5], [3, 6]]
    config = preset("grainrec-contextgnn", knn=_knn(4))
    (_, _), (row_index, row_weight), _ = _cooccurrence_tables(config, 7,
                                                              [s for i, s in enumerate(sequences) if i % 2 != 0])
    assert 2 not in row_index[1][row_weight[1] > 0].tolist()  # [1, 2] is in fold 0
    assert 4 in row_index[3][row_weight[3] > 0].tolist()  # [3, 4] is in fold 1
    full_index, full_weight = cooccurrence_neighbours(sequences, 7, _knn(4), "row")
    assert {2, 5} <= set(full_index[1][full_weight[1] > 0].tolist())


def test_training_uses_fold_tables_and_serving_the_full_table() -> None:
    split = toy_split()
    model = _initial_model(preset("grainrec-contextgnn", dim=8, knn=_knn(10)), ItemVocabulary(split.items),
                           [[1, 2, 3], [1, 4, 3]])
    assert model.head is not None
    model.head.set_fold_tables([[(torch.zeros_like(t), t * 0) for t in model.head.tables()[::2]]])  # empty tables
    inputs = model.encode([([1], [])])
    inputs.fold = 0
    model.train()
    with torch.no_grad():
        training = model(inputs)
    model.eval()
    with torch.no_grad():
        serving = model(inputs)
    assert not torch.allclose(training[0, 2], serving[0, 2])  # 2 follows 1 only in the full table
    assert "fold_tables" not in "".join(model.state_dict())  # nothing of the folds is checkpointed


def test_toy_training_with_folds_still_learns_the_chains() -> None:
    checkpoint = train_checkpoint("grainrec-contextgnn", toy_split(), device="cpu", dim=16, max_epochs=20, patience=20,
                                  batch_size=16, lr=0.01)
    assert checkpoint.metrics["valid"]["HR@10"] == pytest.approx(1.0)
