"""Most-popular baseline: the same (decayed) click counts for every query.

It is the floor every other scorer must beat, and what the kNN serves when a session
has nothing it knows. Counts come from the shared statistics structure with window 0,
so they decay and persist exactly like the kNN's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from streamrec.models.scorer import Query, Ranked
from streamrec.models.statistics_scorer import StatisticsScorer
from streamrec.state.cooccurrence import CooccurrencePolicy, CooccurrenceStats


class Popularity(StatisticsScorer):
    """Top-k most clicked items, minus each query's exclusions; learns online via `observe`
    (models/statistics_scorer.py).

    Its `version` is `pop-c<clicks counted>`: which counts answered.
    """

    name = "pop"

    def recommend(self, queries: Sequence[Query], k: int) -> list[Ranked]:
        """Scores are counts relative to the most popular item (1.0), so they are comparable across decay."""
        ranked = []
        for query in queries:
            top = self.stats.top(k, exclude=query.exclude)
            best = top[0][1] if top else 1.0
            ranked.append([(item, count / best) for item, count in top])
        return ranked


def popularity(
    policy: CooccurrencePolicy | None = None, path: Path | None = None, **stats_kwargs: object
) -> Popularity:
    """A Popularity scorer with fresh (or, given `path`, persisted) counts; `policy` (window 0) sets its decay
    (`KnnParams.popularity_policy`: the kNN's half-life); the default counts without decay."""
    policy = policy or CooccurrencePolicy(window=0)
    return Popularity(CooccurrenceStats(policy, path=path, **stats_kwargs))  # type: ignore[arg-type]
