"""Popularity: most clicked first, exclusions honoured, learns online, versioned."""

from __future__ import annotations

from streamrec.models.popularity import popularity
from streamrec.models.scorer import Query, Scorer
from streamrec.state.cooccurrence import CooccurrencePolicy


def test_most_clicked_first_for_every_query() -> None:
    scorer = popularity().fit([["a", "b", "a"], ["a", "c"], ["b"]])
    assert isinstance(scorer, Scorer)
    first, second = scorer.recommend([Query(session_items=["z"]), Query(session_items=[])], k=2)
    assert first == second == [("a", 1.0), ("b", 2 / 3)]


def test_exclude_is_honoured() -> None:
    scorer = popularity().fit([["a", "a", "b", "c"]])
    [ranked] = scorer.recommend([Query(session_items=["a"], exclude=frozenset({"a"}))], k=5)
    assert [item for item, _ in ranked] == ["b", "c"]


def test_observe_counts_the_newest_click_and_bumps_the_version() -> None:
    scorer = popularity()
    assert scorer.recommend([Query(session_items=["x"])], k=3) == [[]]
    scorer.observe([["a"], ["a", "b"], ["a", "b", "b"]])
    assert scorer.version == "pop-c3"
    [ranked] = scorer.recommend([Query(session_items=["x"])], k=3)
    assert [item for item, _ in ranked] == ["b", "a"]


def test_decay_lets_a_new_trend_overtake() -> None:
    scorer = popularity(CooccurrencePolicy(window=0, half_life_clicks=5)).fit([["old"] * 20, ["new"] * 10])
    [ranked] = scorer.recommend([Query(session_items=[])], k=1)
    assert ranked[0][0] == "new"
