"""Per-query cost of the kNN scorer's ranking, next to the plain ranking it replaced, in one run.

Learns the default synthetic stream's first 70% of clicks (scoring.sknn_* defaults), then
answers every later click's session both ways and checks they rank the same items:

- `recommend`: the scorer's path (dict votes, vectorised idf and partial sort);
- plain: the same votes, the idf factor applied per candidate in Python and a full sort (the
  ranking it replaced).

    .venv/bin/python bench/knn_speed.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable
from operator import itemgetter

from streamrec.config import load_settings
from streamrec.models.knn import SessionKNN
from streamrec.models.registry import build_sknn
from streamrec.models.scorer import Query, Ranked
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate

K = 20


def learned_knn_and_queries() -> tuple[SessionKNN, list[Query]]:
    clicks = sorted(generate(SyntheticSpec()), key=lambda c: c.ts)
    knn = build_sknn(load_settings(), persist=False)
    assert isinstance(knn, SessionKNN)
    sessions: dict[str, list[str]] = defaultdict(list)
    queries = []
    for n, click in enumerate(clicks):
        session = sessions[click.session_id]
        session.append(click.item_id)
        if n >= 0.7 * len(clicks):
            queries.append(Query(session_items=list(session), history_items=[], user_id=None))
        else:
            knn.observe([session])
    return knn, queries


def plain(knn: SessionKNN, queries: list[Query]) -> list[Ranked]:
    """The ranking `recommend` replaced: the idf factor per candidate in Python, then a sort of them all."""
    by_score_then_item = itemgetter(1, 0)
    popularity, exponent = knn.stats.popularities, -knn.idf
    ranked = []
    for query in queries:
        votes = knn._session_votes(query.session_items)  # private: the shared first half of both rankings
        scores = {c: v * max(popularity.get(c, 0.0), 1e-12) ** exponent for c, v in votes.items()}
        ranked.append(sorted(scores.items(), key=by_score_then_item, reverse=True)[:K])
    return ranked


def best_us_per_query(run: Callable[[], list[Ranked]], queries: int, repeats: int) -> tuple[float, list[Ranked]]:
    best, out = float("inf"), []
    for _ in range(repeats):
        started = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - started)
    return best / queries * 1e6, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    knn, queries = learned_knn_and_queries()
    fast_us, fast = best_us_per_query(lambda: knn.recommend(queries, K), len(queries), args.repeats)
    plain_us, reference = best_us_per_query(lambda: plain(knn, queries), len(queries), args.repeats)
    # recommend tops up short lists with popular items
    neighbour_filled = [r[: len(p)] for r, p in zip(fast, reference)]
    same = sum([i for i, _ in a] == [i for i, _ in b] for a, b in zip(neighbour_filled, reference))
    print(f"{len(queries):,} queries, {len(knn.stats.popularities):,} items: recommend {fast_us:.1f} us/query, "
          f"plain ranking {plain_us:.1f} us/query ({plain_us / fast_us:.2f}x); "
          f"same items ranked: {same:,}/{len(queries):,}")


if __name__ == "__main__":
    main()
