"""SessionKNN: learns transitions, weighs recent items most, falls back to popularity, never raises."""

from __future__ import annotations

from pathlib import Path

from streamrec.config import load_settings
from streamrec.models.knn import SessionKNN
from streamrec.models.registry import build_sknn
from streamrec.models.scorer import Query, Scorer

SESSIONS = [
    ["shoes", "socks", "laces"],
    ["shoes", "socks"],
    ["shoes", "socks", "laces"],
    ["tent", "stove", "gas"],
    ["tent", "stove"],
    ["tent", "mat"],
] + [["bestseller"]] * 10


def knn(tmp_path: Path | None = None, **scoring: object) -> SessionKNN:
    settings = load_settings(scoring=scoring, state={"dir": tmp_path or Path("unused")})
    return build_sknn(settings, persist=tmp_path is not None)


def items(ranked: list[tuple[str, float]]) -> list[str]:
    return [item for item, _ in ranked]


def test_implements_the_scorer_protocol() -> None:
    assert isinstance(knn(), Scorer)


def test_next_item_follows_learned_transitions() -> None:
    scorer = knn(sknn_repeat=0.0).fit(SESSIONS)
    [ranked] = scorer.recommend([Query(session_items=["shoes"])], k=3)
    assert items(ranked)[0] == "socks"
    [ranked] = scorer.recommend([Query(session_items=["tent", "stove"])], k=2)
    assert items(ranked)[0] == "gas"


def test_the_most_recent_item_dominates() -> None:
    scorer = knn(sknn_recency_decay=0.3, sknn_repeat=0.0).fit(SESSIONS)
    [after_tent, after_shoes] = scorer.recommend(
        [Query(session_items=["shoes", "tent"]), Query(session_items=["tent", "shoes"])], k=1
    )
    assert items(after_tent) == ["stove"] and items(after_shoes) == ["socks"]


def test_repeat_weight_brings_the_sessions_own_items_back() -> None:
    query = [Query(session_items=["tent", "stove"])]
    [without] = knn(sknn_repeat=0.0).fit(SESSIONS).recommend(query, k=3)
    [with_repeat] = knn(sknn_repeat=5.0).fit(SESSIONS).recommend(query, k=3)
    assert items(without)[0] == "gas"
    assert items(with_repeat)[:2] == ["stove", "tent"]


def test_lists_are_filled_with_popular_items_ranked_below_neighbours() -> None:
    scorer = knn().fit(SESSIONS)
    [ranked] = scorer.recommend([Query(session_items=["tent", "stove"])], k=8)
    assert len(ranked) == 8 and len(set(items(ranked))) == 8
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)
    assert "bestseller" in items(ranked)[2:]


def test_unknown_items_and_empty_sessions_get_popular_items() -> None:
    scorer = knn().fit(SESSIONS)
    unknown, empty = scorer.recommend([Query(session_items=["never-seen"]), Query(session_items=[])], k=3)
    assert items(unknown)[0] == "bestseller" and items(empty)[0] == "bestseller"


def test_a_cold_scorer_answers_with_nothing_rather_than_raising() -> None:
    assert knn().recommend([Query(session_items=["x"])], k=5) == [[]]


def test_exclude_is_honoured_in_neighbours_and_fallback() -> None:
    scorer = knn().fit(SESSIONS)
    [ranked] = scorer.recommend([Query(session_items=["shoes"], exclude=frozenset({"socks", "bestseller"}))], k=20)
    assert "socks" not in items(ranked) and "bestseller" not in items(ranked)


def test_observe_learns_only_the_newest_click() -> None:
    streamed, fitted = knn(), knn().fit([["a", "b", "c"]])
    streamed.observe([["a"]])
    streamed.observe([["a", "b"]])
    streamed.observe([["a", "b", "c"]])
    query = [Query(session_items=["a"])]
    assert streamed.recommend(query, 5) == fitted.recommend(query, 5)
    assert streamed.version == fitted.version and streamed.version.endswith("-c3")


def test_version_changes_with_parameters_and_statistics() -> None:
    a, b = knn(sknn_window=2), knn(sknn_window=3)
    assert a.version != b.version
    before = a.version
    a.observe([["x"]])
    assert a.version != before


def test_persisted_statistics_survive_a_restart(tmp_path: Path) -> None:
    first = knn(tmp_path).fit(SESSIONS)
    expected = first.recommend([Query(session_items=["shoes"])], 5)
    first.close()
    again = knn(tmp_path)
    assert again.recommend([Query(session_items=["shoes"])], 5) == expected
    again.close()
