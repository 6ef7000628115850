"""The kNN baseline ("sknn"): a recency-weighted sequential item-transition kNN.

Not the classic session-kNN of the literature (Jannach & Ludewig's SKNN finds the past
SESSIONS most similar to the current one and votes with their items). This is an ITEM-based
kNN over sequential transitions, closest to the item-kNN/sequence-rule family (SR, "sequential
rules", Ludewig & Jannach 2018) with STAN-like recency weighting of the session's items: each
distinct session item votes for the items that FOLLOWED it (and, discounted, preceded it)
within a few clicks in past sessions, the most recent item loudest. Order matters: made
order-free (pairs counted both ways alike, every session item weighted alike) its test NDCG@10
drops on Beauty and on YooChoose (bench/knn_tuning.py; docs/models.md, "Baselines").
The CLI keeps the name `sknn` for compatibility.

For a session s_1..s_n (s_n the click being answered) the score of a candidate item c is

    score(c) = pop(c) ** -idf  *  sum_j  decay ** j * ( P(c | s_{n-j}) + repeat * [c = s_{n-j}] ),

where j = 0, 1, ... counts distinct items from the most recent one back (a repeated item keeps
its most recent position), [.] is 1 when true, and P(c | a) = W[a][c] / sum_b W[a][b] is the normalised row of the
co-occurrence statistics (state/cooccurrence.py: forward transitions within a window,
weighted by 1/distance, backward ones discounted, time-decayed). Normalising each row makes
every session item vote with the same mass however popular it is; the `idf` exponent damps
items that co-occur with everything; the `repeat` term lets the session's own items come
back (re-clicks are frequent in shop sessions; the `repeat` values tried: docs/models.md, "How the
defaults were chosen"). Items the neighbours do not fill (cold sessions,
unknown items) come from popularity, ranked below every neighbour-scored item.

This is the baseline the neural scorers are judged against and their fallback for cold
users and short sessions.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from operator import itemgetter

import numpy as np

from streamrec.config import Settings
from streamrec.models.scorer import Query, Ranked
from streamrec.models.statistics_scorer import StatisticsScorer
from streamrec.state.cooccurrence import CooccurrenceStats
from streamrec.state.knn_params import KnnParams

_SCORE_THEN_ITEM = itemgetter(1, 0)


class SessionKNN(StatisticsScorer):
    """Item-kNN over streaming co-occurrence statistics; learns online via `observe` (models/statistics_scorer.py)."""

    name = "sknn"

    def __init__(self, stats: CooccurrenceStats, params: KnnParams) -> None:
        if stats.policy != params.policy:
            raise ValueError(f"statistics policy {stats.policy} does not match the kNN parameters {params}")
        super().__init__(stats)
        self.params = params
        self.recency_decay = params.recency_decay
        self.idf = params.idf
        self.repeat = params.repeat
        self._params_digest = params.digest

    @property
    def version(self) -> str:
        """`sknn-<parameter digest>-c<clicks learned>`: which statistics answered."""
        return f"{self.name}-{self._params_digest}-c{self.stats.clicks}"

    def recommend(self, queries: Sequence[Query], k: int) -> list[Ranked]:
        return [self._recommend_one(q, k) for q in queries]

    def _recommend_one(self, query: Query, k: int) -> Ranked:
        raw = self._session_votes(query.session_items)
        for item in query.exclude:
            raw.pop(item, None)
        ranked = self._top(raw, k)
        if len(ranked) < k:
            ranked += self._popular_below(ranked, query.exclude, k)
        return ranked

    def neighbour_scores(self, session_items: Sequence[str]) -> dict[str, float]:
        """score(c) of the module docstring for every item some session item co-occurs with."""
        items, scores = self._scored(self._session_votes(session_items))
        return dict(zip(items, scores.tolist()))

    def _session_votes(self, session_items: Sequence[str]) -> dict[str, float]:
        """The recency-weighted sum of the module docstring, before the idf factor.

        The hot path of the scoring stage (one call per click): plain dict operations with
        the per-row factor hoisted out.
        """
        scores: dict[str, float] = {}
        get = scores.get
        known, neighbours, repeat = self.stats.popularities, self.stats.neighbours, self.repeat
        for weight, item in self._recency_weights(session_items):
            if item not in known:
                continue
            if repeat > 0:
                scores[item] = get(item, 0.0) + weight * repeat
            row = neighbours(item)
            total = sum(row.values())
            if total <= 0:
                continue
            factor = weight / total
            for neighbour, w in row.items():
                scores[neighbour] = get(neighbour, 0.0) + w * factor
        return scores

    def _scored(self, votes: dict[str, float]) -> tuple[list[str], np.ndarray]:
        """Candidates and their scores: the votes times the idf factor pop(c) ** -idf (the one place it is computed)."""
        items = list(votes)
        scores = np.fromiter(votes.values(), dtype=np.float64, count=len(items))
        if self.idf > 0:
            popularity = self.stats.popularities.get
            counts = np.fromiter(
                map(popularity, items, itertools.repeat(0.0, len(items))), dtype=np.float64, count=len(items)
            )
            scores *= np.maximum(counts, 1e-12) ** -self.idf
        return items, scores

    def _top(self, votes: dict[str, float], k: int) -> Ranked:
        """The k best candidates by score, then item id, both descending (ties resolve the same in every run).

        Vectorised: the idf factor, a partial sort to the k-th score, and a full sort of the few
        that reach it, instead of a Python sort of every candidate.
        """
        if not votes or k <= 0:
            return []
        items, scores = self._scored(votes)
        if len(items) > k:
            kth = np.partition(scores, len(items) - k)[len(items) - k]
            # ties at the k-th score are all kept, then cut
            chosen: Sequence[int] = np.flatnonzero(scores >= kth).tolist()
        else:
            chosen = range(len(items))
        ranked = sorted(((items[i], float(scores[i])) for i in chosen), key=_SCORE_THEN_ITEM, reverse=True)
        return ranked[:k]

    def _recency_weights(self, session_items: Sequence[str]) -> list[tuple[float, str]]:
        """(decay ** j, item) for distinct items, most recent first; negligible weights are cut."""
        seen: set[str] = set()
        weighted: list[tuple[float, str]] = []
        weight = 1.0
        for item in reversed(session_items):
            if item in seen:
                continue
            seen.add(item)
            weighted.append((weight, item))
            weight *= self.recency_decay
            if weight < 1e-4:
                break
        return weighted

    def _popular_below(self, ranked: Ranked, exclude: frozenset[str], k: int) -> Ranked:
        """Popular items not yet ranked, scored below the lowest neighbour score (share of clicks)."""
        taken = {item for item, _ in ranked} | exclude
        floor = ranked[-1][1] if ranked else 1.0
        popular = self.stats.top(k - len(ranked), exclude=taken)
        best = popular[0][1] if popular else 1.0
        return [(item, floor * 0.5 * count / best) for item, count in popular]


def knn_params(settings: Settings) -> KnnParams:
    """The kNN parameters of `settings.scoring.sknn_*`: the one place settings become KnnParams."""
    s = settings.scoring
    return KnnParams(
        window=s.sknn_window,
        backward_weight=s.sknn_backward_weight,
        max_neighbours=s.sknn_neighbours,
        half_life_clicks=s.sknn_half_life_clicks,
        recency_decay=s.sknn_recency_decay,
        idf=s.sknn_idf,
        repeat=s.sknn_repeat,
    )


def session_knn_from(params: KnnParams, **stats_kwargs: object) -> SessionKNN:
    """A SessionKNN with fresh (or, given `path=...`, persisted) statistics."""
    return SessionKNN(CooccurrenceStats(params.policy, **stats_kwargs), params)  # type: ignore[arg-type]
