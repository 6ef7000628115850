"""CandidateIndex: build, query, neighbour matrix, sidecar save/load and refusals, build-then-swap."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from streamrec.config import load_settings
from streamrec.config.settings import ScoringSettings
from streamrec.models.candidates import CandidateConfig, CandidateIndex, CandidateIndexError, pack_rows, sidecar_path
from streamrec.models.candidates import index as index_module
from streamrec.models.knn import knn_params
from streamrec.models.presets import preset
from streamrec.models.recommender import SessionRecommender
from streamrec.state.vocab import PAD_INDEX

CONFIG = CandidateConfig(hnsw_top_m=10, hnsw_ef_search=64, hnsw_m=8, hnsw_ef_construction=64, neighbour_matrix_k=5)


def clustered_vectors(items: int = 400, dim: int = 16, clusters: int = 20, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(clusters, dim, generator=generator)
    return centres[torch.arange(items) % clusters] + 0.3 * torch.randn(items, dim, generator=generator)


def exact_top(vectors: torch.Tensor, queries: torch.Tensor, k: int) -> torch.Tensor:
    table = torch.nn.functional.normalize(vectors, dim=-1)
    scores = torch.nn.functional.normalize(queries, dim=-1) @ table.T
    scores[:, PAD_INDEX] = float("-inf")
    return scores.topk(k, dim=1).indices


def test_query_returns_the_nearest_items_by_cosine() -> None:
    vectors = clustered_vectors()
    index = CandidateIndex.from_vectors(vectors, CONFIG)
    queries = vectors[1:50] + 0.1 * torch.randn(49, 16, generator=torch.Generator().manual_seed(1))
    found = index.query(queries)
    assert found.shape == (49, 10) and found.dtype == torch.long
    assert (found != PAD_INDEX).all()  # the padding row is never indexed
    exact = exact_top(vectors, queries, 10)
    recall = sum(len(set(a) & set(b)) for a, b in zip(found.tolist(), exact.tolist())) / exact.numel()
    assert recall >= 0.95


def test_neighbour_matrix_holds_each_items_most_similar_other_items() -> None:
    vectors = clustered_vectors()
    index = CandidateIndex.from_vectors(vectors, CONFIG)
    assert index.neighbours.shape == (400, 5)
    assert (index.neighbours[0] == PAD_INDEX).all()
    rows = torch.arange(1, 400)
    assert not (index.neighbours[1:] == rows.unsqueeze(-1)).any()  # never the item itself
    table = torch.nn.functional.normalize(vectors, dim=-1)
    scores = table[1:] @ table.T
    scores[:, PAD_INDEX] = float("-inf")
    scores[rows - 1, rows] = float("-inf")
    exact = scores.topk(5, dim=1).indices
    overlap = sum(len(set(a) & set(b)) for a, b in zip(index.neighbours[1:].tolist(), exact.tolist())) / exact.numel()
    assert overlap >= 0.95


def test_tiny_catalogue_pads_what_it_cannot_fill() -> None:
    index = CandidateIndex.from_vectors(clustered_vectors(items=4), CONFIG)
    assert index.query(torch.randn(2, 16)).tolist()[0][3:] == [PAD_INDEX] * 7
    assert (index.neighbours[1:, 2:] == PAD_INDEX).all() and (index.neighbours[1:, :2] != PAD_INDEX).all()


def test_builds_from_a_models_item_table_and_round_trips_through_the_sidecar(tmp_path: Path) -> None:
    config = preset("grainrec-contextgnn", dim=16, knn=knn_params(load_settings()))
    model = SessionRecommender(config, num_items=300).eval()
    index = CandidateIndex.build(model, CONFIG, model_version="m-1")
    assert index.num_items == 300 and index.dim == 16 and index.model_version == "m-1"
    queries = torch.randn(8, 16, generator=torch.Generator().manual_seed(2))
    path = index.save(sidecar_path(tmp_path / "model.pt"))
    assert path == tmp_path / "model.pt.hnsw" and not list(tmp_path.glob("*.tmp"))
    loaded = CandidateIndex.load(path, model_version="m-1")
    assert torch.equal(loaded.query(queries), index.query(queries))
    assert torch.equal(loaded.neighbours, index.neighbours)
    assert loaded.config == CONFIG and loaded.model_version == "m-1"


def test_load_refuses_a_corrupt_or_foreign_sidecar(tmp_path: Path) -> None:
    path = CandidateIndex.from_vectors(clustered_vectors(), CONFIG, model_version="m-1").save(tmp_path / "a.hnsw")
    with pytest.raises(CandidateIndexError, match="built for model m-1, not m-2"):
        CandidateIndex.load(path, model_version="m-2")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte in the neighbour matrix
    path.write_bytes(bytes(data))
    with pytest.raises(CandidateIndexError, match="checksum mismatch"):
        CandidateIndex.load(path)
    path.write_bytes(bytes(data[: len(data) // 2]))  # a partly written copy
    with pytest.raises(CandidateIndexError, match="checksum mismatch"):
        CandidateIndex.load(path)
    with pytest.raises(CandidateIndexError, match="cannot read"):
        CandidateIndex.load(tmp_path / "missing.hnsw")


def test_build_adds_everything_before_any_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """hnswlib must never be queried while items are added: build adds all, then queries its own fresh index."""
    calls: list[str] = []
    real = index_module.hnswlib.Index

    class Recording:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self._real = real(*args, **kwargs)
            calls.append("new")

        def __getattr__(self, name: str) -> object:
            attribute = getattr(self._real, name)
            if name in ("add_items", "knn_query"):
                calls.append(name)
            return attribute

    monkeypatch.setattr(index_module.hnswlib, "Index", Recording)
    first = CandidateIndex.from_vectors(clustered_vectors(), CONFIG)
    first.query(torch.randn(2, 16))
    second = CandidateIndex.from_vectors(clustered_vectors(seed=1), CONFIG)
    assert calls == ["new", "add_items", "knn_query", "knn_query", "new", "add_items", "knn_query"]
    assert second._index is not first._index


def test_pack_rows_deduplicates_per_row_and_drops_padding() -> None:
    rows = torch.tensor([0, 0, 0, 1, 1, 2])
    items = torch.tensor([5, 3, 5, PAD_INDEX, 7, 2])
    assert pack_rows(rows, items, 4, 10).tolist() == [[3, 5], [7, 0], [2, 0], [0, 0]]


def test_config_defaults_are_the_settings_defaults() -> None:
    assert CandidateConfig.from_settings(ScoringSettings()) == CandidateConfig()
