"""Exact re-ranking of candidates: the sparse ContextGNN features equal the dense ones, and the
scorer's candidate path recommends what full-catalogue scoring recommends."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from streamrec.config import load_settings
from streamrec.models.candidates import CandidateConfig, CandidateIndex, candidate_items, rerank, sidecar_path
from streamrec.models.checkpoint import Checkpoint
from streamrec.models.contextgnn import cooccurrence_neighbours, session_neighbours
from streamrec.models.knn import knn_params
from streamrec.models.presets import preset
from streamrec.models.recommender import SessionRecommender
from streamrec.models.scorer import Query
from streamrec.models.serving import NeuralScorer, load_checkpoint_scorer
from streamrec.models.train import train_checkpoint
from streamrec.state.clicklog.protocols import leave_one_out
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate
from streamrec.state.vocab import PAD_INDEX

V = 600


def sequences(count: int, seed: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 14, (count,), generator=generator).tolist()
    return [torch.randint(1, V, (n,), generator=generator).tolist() for n in lengths]


def fitted_model(name: str) -> SessionRecommender:
    """A randomly initialised model with co-occurrence tables of random sessions (the head's features are
    non-trivial)."""
    torch.manual_seed(0)
    knn = replace(knn_params(load_settings()), window=3, max_neighbours=12)
    model = SessionRecommender(preset(name, dim=16, knn=knn), V).eval()
    log = sequences(400, seed=1)
    model.item_counts.copy_(torch.bincount(torch.tensor([i for s in log for i in s]), minlength=V).float())
    assert model.head is not None
    model.head.set_neighbours(cooccurrence_neighbours(log, V, knn), cooccurrence_neighbours(log, V, knn, "row"),
                              model.item_counts, session_neighbours(log, V, knn.max_neighbours))
    with torch.no_grad():  # every feature weighs in (a fresh head weighs only the kNN score)
        torch.nn.init.normal_(model.head.fusion[-1].weight, std=0.2)
        torch.nn.init.normal_(model.head.fusion[-1].bias, std=1.0)
    if model.memory is not None and model.memory.clusters is not None:
        model.start_epoch(log)
    return model


@pytest.mark.parametrize("name", ["grainrec-contextgnn", "contextgnn"])  # without and with GLAD memory
def test_candidate_scores_equal_full_scores_at_the_candidates(name: str) -> None:
    model = fitted_model(name)
    contexts = [(s, h) for s, h in zip(sequences(40, seed=2), sequences(40, seed=3))]
    inputs = model.encode(contexts)
    index = CandidateIndex.build(model, CandidateConfig(hnsw_top_m=30, neighbour_matrix_k=5))
    with torch.inference_mode():
        full = model(inputs)
        session, _ = model.encoder(inputs.graphs)
        familiar = candidate_items(model, index, inputs, session, top_m=30)
        random = torch.randint(1, V, (40, 25), generator=torch.Generator().manual_seed(4))
        for candidates in (familiar, random):
            torch.testing.assert_close(model(inputs, candidates), full.gather(1, candidates), rtol=1e-5, atol=1e-5)


def test_sparse_head_features_are_the_dense_features_bit_for_bit() -> None:
    model = fitted_model("grainrec-contextgnn")
    inputs = model.encode([(s, []) for s in sequences(30, seed=5)])
    candidates = torch.randint(0, V, (30, 50), generator=torch.Generator().manual_seed(6))
    with torch.inference_mode():
        session, nodes = model.encoder(inputs.graphs)
        two_tower = torch.zeros(30, 50)
        head = model.head
        assert head is not None
        sparse = head(session, two_tower, inputs.graphs, nodes, candidates)
        dense = head(session, torch.zeros(30, V), inputs.graphs, nodes).gather(1, candidates)
    assert torch.equal(sparse, dense)


def test_candidates_hold_the_familiar_items_and_no_padding_or_duplicates() -> None:
    model = fitted_model("grainrec-contextgnn")
    contexts = [(s, []) for s in sequences(20, seed=7)]
    inputs = model.encode(contexts)
    index = CandidateIndex.build(model, CandidateConfig(hnsw_top_m=10, neighbour_matrix_k=4))
    with torch.inference_mode():
        logits, candidates = rerank(model, index, inputs, top_m=10)
        full = model(inputs)
    assert model.head is not None
    for row, (session, _) in enumerate(contexts):
        items = [i for i in candidates[row].tolist() if i != PAD_INDEX]
        assert len(items) == len(set(items))
        familiar = set(model.head.familiar_items(torch.tensor(session)).flatten().tolist()) - {PAD_INDEX}
        assert familiar <= set(items)
        assert set(index.neighbours[session].flatten().tolist()) - {PAD_INDEX} <= set(items)
    assert torch.isinf(logits[candidates == PAD_INDEX]).all()
    real = candidates != PAD_INDEX
    torch.testing.assert_close(logits[real], full.gather(1, candidates)[real], rtol=1e-5, atol=1e-5)


def test_rows_the_model_may_not_rank_never_win_on_the_candidate_path() -> None:
    """Expired or spare rows (`rankable` False) score -inf there too, as on the full-catalogue path."""
    model = fitted_model("grainrec-contextgnn")
    inputs = model.encode([(s, []) for s in sequences(20, seed=8)])
    index = CandidateIndex.build(model, CandidateConfig(hnsw_top_m=10, neighbour_matrix_k=4))
    with torch.inference_mode():
        logits, candidates = rerank(model, index, inputs, top_m=10)
        winners = candidates.gather(1, logits.argmax(1, keepdim=True)).unique()
        model.rankable[winners] = False
        logits, candidates = rerank(model, index, inputs, top_m=10)
    assert torch.isin(candidates, winners).any()  # the index still proposes them ...
    assert torch.isinf(logits[torch.isin(candidates, winners)]).all()  # ... but they can never be recommended


@pytest.fixture(scope="module")
def trained() -> Checkpoint:
    split = leave_one_out(generate(SyntheticSpec(users=100, sessions=800, items=800, intents=20)))
    return train_checkpoint("grainrec-contextgnn", split, device="cpu", dim=16, max_epochs=2, max_train_seconds=20.0,
                            batch_size=64, lr=0.01)


CANDIDATES = CandidateConfig(candidates_min_catalogue_items=1, hnsw_top_m=40)


def queries_of(checkpoint: Checkpoint, count: int) -> list[Query]:
    items = checkpoint.vocab.items
    generator = torch.Generator().manual_seed(8)
    draws = (torch.randint(0, len(items), (4,), generator=generator).tolist() for _ in range(count))
    return [Query(session_items=tuple(items[i] for i in draw)) for draw in draws]


def test_candidate_path_recommends_what_full_scoring_recommends(trained: Checkpoint) -> None:
    full = NeuralScorer(trained, device="cpu")
    fast = NeuralScorer(trained, device="cpu", candidates=CANDIDATES)
    assert full.index is None and fast.index is not None
    queries = queries_of(trained, 200)
    exact, approximate = full.recommend(queries, k=20), fast.recommend(queries, k=20)
    overlap = sum(len({i for i, _ in a} & {i for i, _ in b}) for a, b in zip(exact, approximate)) / (20 * len(queries))
    assert overlap >= 0.95
    assert sum(a[0][0] == b[0][0] for a, b in zip(exact, approximate)) >= 0.95 * len(queries)


def test_candidate_path_keeps_exclusions_and_unknown_items(trained: Checkpoint) -> None:
    fast = NeuralScorer(trained, device="cpu", candidates=CANDIDATES)
    query = queries_of(trained, 1)[0]
    best = [item for item, _ in fast.recommend([query], k=5)[0]]
    masked = Query(session_items=query.session_items + ("unknown",), exclude=frozenset(best[:3]) | {"nope"})
    ranked = fast.recommend([masked], k=5)[0]
    assert len(ranked) == 5 and not {item for item, _ in ranked} & set(best[:3])
    assert [len(r) for r in fast.recommend([Query(session_items=("nope",)), Query(session_items=())], k=3)] == [3, 3]


def test_scorer_loads_the_sidecar_and_rebuilds_a_refused_one(trained: Checkpoint, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    path = trained.save(tmp_path / "m.pt")
    model = trained.build_model()
    CandidateIndex.build(model, CANDIDATES, trained.version).save(sidecar_path(path))
    scorer = load_checkpoint_scorer(path, device="cpu", candidates=CANDIDATES)
    assert scorer.index is not None and scorer.index.model_version == trained.version
    CandidateIndex.build(model, CANDIDATES, "another-version").save(sidecar_path(path))
    with caplog.at_level(logging.WARNING):
        rebuilt = load_checkpoint_scorer(path, device="cpu", candidates=CANDIDATES)
    assert rebuilt.index is not None and rebuilt.index.model_version == trained.version
    assert "built for model another-version" in caplog.text
    small = load_checkpoint_scorer(path, device="cpu")  # below the catalogue size: full scoring, no index read
    assert small.index is None


def test_swap_index_replaces_the_reference_and_refuses_a_misfit(trained: Checkpoint) -> None:
    scorer = NeuralScorer(trained, device="cpu", candidates=CANDIDATES)
    old = scorer.index
    new = CandidateIndex.build(scorer.model, CANDIDATES, trained.version)
    scorer.swap_index(new)
    assert scorer.index is new and old is not new
    with pytest.raises(ValueError, match="does not fit the model"):
        scorer.swap_index(CandidateIndex.from_vectors(torch.randn(10, 16), CANDIDATES))


def test_sampled_softmax_training_gets_the_dense_gradients() -> None:
    """Training with sampled negatives passes candidates too: the sparse features must back-propagate like the dense
    ones."""
    model = fitted_model("grainrec-contextgnn")
    model = SessionRecommender(replace(model.config, embedding_dropout=0.0), V).train()
    model.load_state_dict(fitted_model("grainrec-contextgnn").state_dict())
    inputs = model.encode([(s, []) for s in sequences(20, seed=9)])
    candidates = torch.randint(1, V, (20, 30), generator=torch.Generator().manual_seed(10))
    grads = []
    for logits in (lambda: model(inputs, candidates), lambda: model(inputs).gather(1, candidates)):
        model.zero_grad()
        (logits() * torch.linspace(-1, 1, 30)).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for sparse, dense in zip(*grads):
        torch.testing.assert_close(sparse, dense, rtol=1e-4, atol=1e-5)
