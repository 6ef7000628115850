"""Paired comparison of two scorers judged on the same predictions: the difference and its 95% interval.

"A beats B" in streamrec means the paired 95% bootstrap interval of mean(A) - mean(B) excludes 0.
The resampling unit is the group a prediction belongs to: the session (next-click protocols, the
replay) or the user (leave-one-out), because predictions of one session are not independent. Each
bootstrap replicate draws G groups with replacement out of the G groups both tallies share and
recomputes the difference of means over all predictions of the drawn groups (a ratio estimator:
sum of differences / number of predictions, so long sessions weigh by their length, as in the
point estimate). The interval is the 2.5 and 97.5 percentiles of the replicates (Efron and
Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13, percentile interval).

Only predictions both tallies recorded with the same key are compared (`RankingMetrics.ranks`),
so a click one scorer did not answer drops out of every pair it is in rather than counting as a
miss for one side.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np

from streamrec.state.ranking_metrics import RankingMetrics, metric_of_rank

PAIRED_METRICS: tuple[str, ...] = ("HR@20", "MRR@20")
"""Metrics every pair-wise comparison reports unless asked for others (`streamrec evaluate` adds NDCG@10)."""
RESAMPLES = 2000
"""Bootstrap replicates: the percentile interval's ends move by well under 1e-3 between seeds at this count."""
CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedDifference:
    """mean(a) - mean(b) of `metric` over the predictions both judged, with its bootstrap interval."""

    a: str
    b: str
    metric: str
    diff: float
    ci95: tuple[float, float]
    predictions: int
    groups: int

    @property
    def a_beats_b(self) -> bool:
        """The interval lies above 0: a is better than b on this metric."""
        return self.ci95[0] > 0.0

    @property
    def b_beats_a(self) -> bool:
        return self.ci95[1] < 0.0

    @property
    def verdict(self) -> str:
        """'a beats b', 'b beats a' or 'tie' (the interval holds 0), in words."""
        if self.a_beats_b:
            return f"{self.a} beats {self.b}"
        if self.b_beats_a:
            return f"{self.b} beats {self.a}"
        return "tie"

    @property
    def interval_text(self) -> str:
        """The interval as every report prints it: [+lo, +hi] to four places."""
        return f"[{self.ci95[0]:+.4f}, {self.ci95[1]:+.4f}]"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ci95"] = list(self.ci95)
        return data


def paired_difference(
    a: RankingMetrics,
    b: RankingMetrics,
    metric: str,
    names: tuple[str, str] = ("a", "b"),
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> PairedDifference:
    """Compare tallies `a` and `b` on `metric` over the keys both recorded (see the module docstring)."""
    shared = [key for key in a.ranks if key in b.ranks]
    groups: dict[Hashable, int] = {}
    group_of = np.empty(len(shared), dtype=np.int64)
    delta = np.empty(len(shared), dtype=np.float64)
    for i, key in enumerate(shared):
        group, rank_a = a.ranks[key]
        group_of[i] = groups.setdefault(group, len(groups))
        delta[i] = metric_of_rank(metric, rank_a) - metric_of_rank(metric, b.ranks[key][1])
    if not shared:
        return PairedDifference(names[0], names[1], metric, 0.0, (0.0, 0.0), 0, 0)
    sums = np.bincount(group_of, weights=delta, minlength=len(groups))
    sizes = np.bincount(group_of, minlength=len(groups)).astype(np.float64)
    low, high = _percentile_interval(sums, sizes, resamples, seed)
    return PairedDifference(names[0], names[1], metric, float(delta.mean()), (low, high), len(shared), len(groups))


def paired_differences(
    tallies: Mapping[str, RankingMetrics],
    metrics: Sequence[str] = PAIRED_METRICS,
    pairs: Sequence[tuple[str, str]] | None = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> list[PairedDifference]:
    """Every pair of named tallies (in the mapping's order, or the given `pairs`) on every metric."""
    chosen = list(pairs) if pairs is not None else list(combinations(tallies, 2))
    return [
        paired_difference(tallies[a], tallies[b], metric, (a, b), resamples, seed)
        for a, b in chosen
        for metric in metrics
    ]


def _percentile_interval(sums: np.ndarray, sizes: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """Percentile interval of sum(w * sums) / sum(w * sizes), w the group counts of a bootstrap draw.

    Replicates go in blocks so memory stays O(block * groups) however many groups there are.
    """
    rng = np.random.default_rng(seed)
    count = sums.size
    estimates = np.empty(resamples, dtype=np.float64)
    block = max(1, min(resamples, 2_000_000 // max(count, 1)))
    for start in range(0, resamples, block):
        stop = min(start + block, resamples)
        draws = rng.integers(0, count, size=(stop - start, count))
        estimates[start:stop] = sums[draws].sum(axis=1) / np.maximum(sizes[draws].sum(axis=1), 1.0)
    tail = (1.0 - CONFIDENCE) / 2.0 * 100.0
    low, high = np.percentile(estimates, [tail, 100.0 - tail])
    return float(low), float(high)
