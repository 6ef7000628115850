"""Ranking metrics for next-item prediction: the one evaluator of `streamrec train`, `streamrec evaluate` and the
replay.

One target per prediction, so with the 1-based rank r of the target: HR@k = [r <= k]
(= Recall@k with one relevant item), NDCG@k = [r <= k] / log2(r + 1) (the ideal DCG is 1),
MRR@k = [r <= k] / r. A target missing from the list (or ranked below the cut) scores 0,
which is how S3-Rec/ICLRec (`recall_at_k`, `ndcg_k`) and session-rec (MRR@20, HitRate@20)
count it. Averages are over every prediction added.

Ties count against the target (pessimistic): r is the number of items scoring at least as
high as the target, the target included. An optimistic count (only strictly higher scores)
would let a model that gives every item the same score hit everything at rank 1, and the
two spellings used to disagree between training's validation and `streamrec evaluate`.
Where only a served list is known (the replay), r is the position in it, which is what a
user sees. Metric names are spelled once, here (`METRIC_NAMES`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence

CUTOFFS: tuple[int, ...] = (10, 20)
MRR_CUTOFF = 20
METRIC_NAMES: tuple[str, ...] = (*(f"HR@{k}" for k in CUTOFFS), *(f"NDCG@{k}" for k in CUTOFFS), f"MRR@{MRR_CUTOFF}")
"""Keys of `RankingMetrics.summary()`, in the order reports show them."""
DEEPEST_CUTOFF = max(*CUTOFFS, MRR_CUTOFF)


class RankingMetrics:
    """Running sums of HR@10/20, NDCG@10/20 and MRR@20 over added predictions.

    A prediction added with a `key` (the click or example it judges) and a `group` (its session,
    or its user under leave-one-out) is also kept in `ranks`, so two tallies judged on the same
    predictions can be compared pair-wise with a confidence interval (state/paired.py).
    """

    def __init__(self) -> None:
        self.count = 0
        self._hits = dict.fromkeys(CUTOFFS, 0)
        self._ndcg = dict.fromkeys(CUTOFFS, 0.0)
        self._reciprocal_rank = 0.0
        self.ranks: dict[Hashable, tuple[Hashable, float | None]] = {}
        """key -> (group, rank) of every prediction added with a key (rank None: a miss)."""

    def add(
        self,
        ranked_item_ids: Sequence[str],
        target: str,
        scores: Sequence[float] | None = None,
        *,
        key: Hashable | None = None,
        group: Hashable | None = None,
    ) -> None:
        """Score one prediction: `ranked_item_ids` best first, `target` the true next item.

        With `scores` (one per listed item) the rank is pessimistic: items listed after the
        target with the same score count against it. Without, the rank is the list position.
        """
        self.add_rank(_rank(ranked_item_ids, target, scores), key=key, group=group)

    def add_rank(self, rank: float | None, *, key: Hashable | None = None, group: Hashable | None = None) -> None:
        """Score one prediction by the target's 1-based rank (None or inf: not ranked, a miss).

        With a `key` the prediction is also kept for pair-wise comparison, in `group`
        (the resampling unit of the bootstrap; the key itself when None)."""
        self.count += 1
        if key is not None:
            self.ranks[key] = (key if group is None else group, None if rank is None or rank > DEEPEST_CUTOFF else rank)
        if rank is None or rank > DEEPEST_CUTOFF:
            return
        for k in CUTOFFS:
            if rank <= k:
                self._hits[k] += 1
                self._ndcg[k] += 1.0 / math.log2(rank + 1)
        if rank <= MRR_CUTOFF:
            self._reciprocal_rank += 1.0 / rank

    def add_ranks(self, ranks: Iterable[float | None]) -> None:
        for rank in ranks:
            self.add_rank(rank)

    def restricted(self, keys: Iterable[Hashable]) -> RankingMetrics:
        """A tally of the kept predictions whose key is in `keys` (e.g. one period of a stream)."""
        part = RankingMetrics()
        for key in keys:
            if key in self.ranks:
                group, rank = self.ranks[key]
                part.add_rank(rank, key=key, group=group)
        return part


    def summary(self) -> dict[str, float]:
        """Means over the predictions added (all 0.0 before the first): keys `METRIC_NAMES`."""
        n = max(self.count, 1)
        result: dict[str, float] = {f"HR@{k}": self._hits[k] / n for k in CUTOFFS}
        result.update({f"NDCG@{k}": self._ndcg[k] / n for k in CUTOFFS})
        result[f"MRR@{MRR_CUTOFF}"] = self._reciprocal_rank / n
        return result


def _rank(ranked_item_ids: Sequence[str], target: str, scores: Sequence[float] | None) -> int | None:
    """1-based rank of `target` within the first DEEPEST_CUTOFF items (pessimistic with scores), None if absent."""
    for position, item in enumerate(ranked_item_ids[:DEEPEST_CUTOFF], start=1):
        if item == target:
            if scores is None:
                return position
            mine = scores[position - 1]
            return position + sum(1 for s in scores[position:] if s >= mine)
    return None


def metric_of_rank(metric: str, rank: float | None) -> float:
    """One prediction's value of `metric` (a name of `METRIC_NAMES`) given the target's rank (None: a miss)."""
    kind, _, cut = metric.partition("@")
    k = int(cut)
    if rank is None or rank > k:
        return 0.0
    if kind == "HR":
        return 1.0
    if kind == "NDCG":
        return 1.0 / math.log2(rank + 1)
    if kind == "MRR":
        return 1.0 / rank
    raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}")
