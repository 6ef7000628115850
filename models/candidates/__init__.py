"""Candidate generation for big catalogues: HNSW over item vectors + GRAINRec's neighbour matrix.

Pure compute (torch, numpy, hnswlib); no Kafka, no settings reads beyond `CandidateConfig.from_settings`.

API
---
- `CandidateConfig` (frozen): `candidates_min_catalogue_items`, `hnsw_top_m`, `hnsw_ef_search`,
  `hnsw_m`, `hnsw_ef_construction`, `neighbour_matrix_k`; `CandidateConfig.from_settings(settings.scoring)`.
  Saved inside every index sidecar.
- `CandidateIndex.build(model, config, model_version=checkpoint.version, threads=2)`: a NEW index
  over `model.encoder.item_table()` (L2-normalised, inner product) plus the neighbour matrix
  `index.neighbours` [V, k]; never mutated afterwards (hnswlib is never queried while adding).
- `index.query(session_vectors [B, d], top_m=None) -> [B, top_m]` item indices (PAD-padded);
  `index.set_ef_search(ef)` changes the query-time ef only (benchmarks).
- `index.save(sidecar_path(checkpoint_path))`: one file `<checkpoint>.hnsw`, written atomically,
  with a sha256 of its body. `CandidateIndex.load(path, model_version=checkpoint.version)`
  raises `CandidateIndexError` (a ValueError) for a corrupt file or another model's index.
- `rerank(model, index, inputs, top_m) -> (logits [B, C], candidates [B, C])`: the full model's
  exact scores on each session's candidates (HNSW top-M, neighbour-matrix rows and ContextGNN
  familiar items); `candidate_items` gives the candidates alone.

Publishing a version (trainer): `CandidateIndex.build(model, config, checkpoint.version).save(sidecar_path(path))`
BEFORE the checkpoint becomes visible at `path` (a scorer that finds no usable sidecar builds the
index itself: minutes at 1,000,000 items); a stale sidecar of an earlier version is refused; serving
(`models/serving.py`): `load_checkpoint_scorer` reads the sidecar when the catalogue has at least
`candidates_min_catalogue_items` items (building the index itself when it is missing or refused) and
`NeuralScorer.swap_index` swaps in a new one.
"""

from streamrec.models.candidates.config import CandidateConfig
from streamrec.models.candidates.generate import candidate_items, pack_rows, rerank
from streamrec.models.candidates.index import CandidateIndex, CandidateIndexError, sidecar_path

__all__ = [
    "CandidateConfig", "CandidateIndex", "CandidateIndexError", "candidate_items", "pack_rows", "rerank",
    "sidecar_path",
]
