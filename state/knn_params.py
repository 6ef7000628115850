"""The kNN parameters in one frozen value: the one definition every user of them reads.

Two decisions use this type, each made on its own model's validation: the kNN baseline's values
(built from settings in one place, `streamrec.models.knn.knn_params`, from `scoring.sknn_*`;
read by the baseline, models/knn.py, and the popularity baseline's decay, models/popularity.py)
and the ContextGNN head's (`models/presets.CONTEXTGNN_KNN`), with which the head reproduces a
kNN score inside the network (models/contextgnn.py). A checkpoint saves the values its head was
trained with (ModelConfig.knn), and serving uses those.
No defaults here on purpose: the settings and the presets hold the values.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from streamrec.state.cooccurrence import CooccurrencePolicy


@dataclass(frozen=True)
class KnnParams:
    """How clicks become co-occurrence rows (the statistics' policy) and how the rows are scored."""

    window: int
    """A click pairs with up to this many earlier clicks of its session (weight 1/distance)."""
    backward_weight: float
    """Weight of the reverse pair (b -> a) relative to the forward transition (a -> b)."""
    max_neighbours: int
    """Entries kept per co-occurrence row."""
    half_life_clicks: float
    """Statistics decay: an observation counts half after this many further clicks (0: none)."""
    recency_decay: float
    """Weight of the j-th most recent distinct session item: decay**j."""
    idf: float
    """Candidate scores are multiplied by popularity**-idf."""
    repeat: float
    """Extra score of the session's own items, per unit of recency weight."""

    @property
    def policy(self) -> CooccurrencePolicy:
        """The statistics' policy (what a persisted store must have been built with)."""
        return CooccurrencePolicy(window=self.window, backward_weight=self.backward_weight,
                                  max_neighbours=self.max_neighbours, half_life_clicks=self.half_life_clicks)

    @property
    def popularity_policy(self) -> CooccurrencePolicy:
        """Popularity counts only (window 0), decaying like the kNN's statistics."""
        return CooccurrencePolicy(window=0, half_life_clicks=self.half_life_clicks)

    @property
    def digest(self) -> str:
        """8 hex digits naming these parameters (in version stamps and statistics folders)."""
        return hashlib.sha1(repr(sorted(self.to_dict().items())).encode()).hexdigest()[:8]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KnnParams:
        return cls(**d)

    def differences(self, other: KnnParams) -> dict[str, tuple[Any, Any]]:
        """{field: (self's value, other's value)} for every field that differs."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
