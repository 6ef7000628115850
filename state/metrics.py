"""Ranking metrics for next-item prediction, shared by `streamrec evaluate` and the replay.

One target per prediction, so with the 1-based rank r of the target in the ranked list:
HR@k = [r <= k] (= Recall@k with one relevant item), NDCG@k = [r <= k] / log2(r + 1)
(the ideal DCG is 1), MRR@k = [r <= k] / r. A target missing from the list (or ranked below
the cut) scores 0, which is how S3-Rec/ICLRec (`recall_at_k`, `ndcg_k`) and session-rec
(MRR@20, HitRate@20) count it. Averages are over every prediction added.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

CUTOFFS: tuple[int, ...] = (10, 20)
MRR_CUTOFF = 20
METRIC_NAMES: tuple[str, ...] = (*(f"HR@{k}" for k in CUTOFFS), *(f"NDCG@{k}" for k in CUTOFFS), f"MRR@{MRR_CUTOFF}")
"""Keys of `RankingMetrics.summary()`, in the order reports show them."""


class RankingMetrics:
    """Running sums of HR@10/20, NDCG@10/20 and MRR@20 over added predictions."""

    def __init__(self) -> None:
        self.count = 0
        self._hits = dict.fromkeys(CUTOFFS, 0)
        self._ndcg = dict.fromkeys(CUTOFFS, 0.0)
        self._reciprocal_rank = 0.0

    def add(self, ranked_item_ids: Sequence[str], target: str) -> None:
        """Score one prediction: `ranked_item_ids` best first, `target` the true next item."""
        self.count += 1
        rank = _rank(ranked_item_ids, target, max(*CUTOFFS, MRR_CUTOFF))
        if rank is None:
            return
        for k in CUTOFFS:
            if rank <= k:
                self._hits[k] += 1
                self._ndcg[k] += 1.0 / math.log2(rank + 1)
        if rank <= MRR_CUTOFF:
            self._reciprocal_rank += 1.0 / rank

    def summary(self) -> dict[str, float]:
        """Means over the predictions added (all 0.0 before the first): keys `METRIC_NAMES`."""
        n = max(self.count, 1)
        result: dict[str, float] = {f"HR@{k}": self._hits[k] / n for k in CUTOFFS}
        result.update({f"NDCG@{k}": self._ndcg[k] / n for k in CUTOFFS})
        result[f"MRR@{MRR_CUTOFF}"] = self._reciprocal_rank / n
        return result


def _rank(ranked_item_ids: Sequence[str], target: str, cutoff: int) -> int | None:
    """1-based position of `target` within the first `cutoff` items, None if absent."""
    for position, item in enumerate(ranked_item_ids[:cutoff], start=1):
        if item == target:
            return position
    return None
