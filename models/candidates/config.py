"""The candidate path's parameters, defined once (read from `settings.scoring`, saved with every index)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamrec.config.settings import ScoringSettings


@dataclass(frozen=True)
class CandidateConfig:
    """HNSW index, neighbour matrix and candidate-generation parameters.

    The scorer scores the whole catalogue below `candidates_min_catalogue_items` items and
    re-ranks candidates at or above it. Defaults are chosen with bench/hnsw_candidates.py
    (recall@20 against exact full-catalogue scoring on validation sessions and a synthetic
    1,000,000-item catalogue; figures: docs/benchmarks.md, "Candidate path vs full-catalogue
    scoring"). The build parameters and the query-time ones are saved in the index sidecar: a
    loaded index searches as it was built to.
    """

    candidates_min_catalogue_items: int = 200_000
    """Catalogues of at least this many items (padding excluded) are served from candidates. On the
    real catalogues (thousands of items) full scoring is faster, as the familiar items alone are a
    large share of the catalogue; at 1,000,000 items the candidate path is far faster. 200,000 is a
    conservative point in between, not measured itself (docs/benchmarks.md, "Candidate path vs
    full-catalogue scoring")."""
    hnsw_top_m: int = 200
    """Items the HNSW index returns per session vector (before the neighbour-matrix and familiar items)."""
    hnsw_ef_search: int = 4096
    """hnswlib's ef at query time (>= hnsw_top_m is used): larger is more exact and slower. 4096 is
    the smallest value tried that keeps recall@20 >= 0.98 at 1,000,000 items with an untrained
    encoder (queries far from every item, HNSW's hard case); the briefly trained real-catalogue
    models need far less, so a deployment may lower it after measuring its own model."""
    hnsw_m: int = 16
    """hnswlib's M: graph links per item (index size and build time grow with it)."""
    hnsw_ef_construction: int = 100
    """hnswlib's ef_construction: candidate list size while building (build time grows with it)."""
    neighbour_matrix_k: int = 20
    """GRAINRec's nearest-neighbour matrix: most similar items kept per item (by embedding cosine).

    GRAINRec: "GRAINRec: Graph and Attention Integrated Approach for Real-Time Session-Based Item
    Recommendations", https://arxiv.org/abs/2411.09152."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CandidateConfig:
        return cls(**d)

    @classmethod
    def from_settings(cls, scoring: ScoringSettings) -> CandidateConfig:
        """The scoring settings' values (`scoring.<field>`: the same names)."""
        return cls(**{name: getattr(scoring, name) for name in asdict(cls())})
