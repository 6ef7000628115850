"""CooccurrenceStats: counting, direction, caps, decay, persistence across reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec.state.cooccurrence import CooccurrencePolicy, CooccurrenceStats


def stats(**policy: float) -> CooccurrenceStats:
    return CooccurrenceStats(CooccurrencePolicy(**policy))  # type: ignore[arg-type]


def test_forward_pairs_weigh_by_distance_and_backward_pairs_are_discounted() -> None:
    s = stats(window=2, backward_weight=0.5)
    s.observe_session(["a", "b", "c"])
    assert s.neighbours("a") == {"b": 1.0, "c": 0.5}
    assert s.neighbours("b") == {"c": 1.0, "a": 0.5}
    assert s.neighbours("c") == {"b": 0.5, "a": 0.25}


def test_window_limits_pairs_and_popularity_counts_every_click() -> None:
    s = stats(window=1, backward_weight=0.0)
    s.observe_session(["a", "b", "c", "a"])
    assert s.neighbours("a") == {"b": 1.0}
    assert s.popularity("a") == 2.0 and s.popularity("zzz") == 0.0
    assert s.clicks == 4


def test_streaming_prefixes_equals_fitting_whole_sessions() -> None:
    offline, online = stats(), stats()
    session = ["x", "y", "x", "z", "w"]
    offline.observe_session(session)
    for end in range(1, len(session) + 1):
        online.observe_click(session[:end])
    for item in set(session):
        assert offline.neighbours(item) == online.neighbours(item)


def test_unknown_items_have_empty_rows() -> None:
    assert stats().neighbours("never-seen") == {}


def test_rows_are_capped_keeping_the_heaviest() -> None:
    s = stats(window=1, backward_weight=0.0, max_neighbours=4)
    for _ in range(10):
        s.observe_session(["hub", "favourite"])
    for i in range(50):
        s.observe_session(["hub", f"rare{i}"])
    row = s.neighbours("hub")
    assert len(row) <= 6  # trimmed to 4 whenever it grows 50% past the cap
    assert max(row, key=row.__getitem__) == "favourite"


def test_top_is_exact_and_honours_exclude() -> None:
    s = stats(window=0, top_items=3)
    counts = {"a": 9, "b": 7, "c": 5, "d": 3, "e": 1}
    for i in range(20):  # interleave so the top set is trimmed while counts grow
        for item, n in counts.items():
            if i < n:
                s.observe_click([item])
    assert [item for item, _ in s.top(3)] == ["a", "b", "c"]
    assert [item for item, _ in s.top(2, exclude={"a"})] == ["b", "c"]


def test_decay_prefers_recent_clicks_and_survives_rescaling() -> None:
    s = stats(window=0, half_life_clicks=1.0, top_items=10)
    for _ in range(40):
        s.observe_click(["old"])
    for _ in range(30):
        s.observe_click(["new"])
    # 70 clicks at half-life 1: the boost passed 2**60 once, so everything was rescaled
    assert s.top(1)[0][0] == "new"
    assert s.popularity("new") > 1000 * s.popularity("old") > 0


def test_statistics_survive_reopening(tmp_path: Path) -> None:
    policy = CooccurrencePolicy(window=2)
    first = CooccurrenceStats(policy, path=tmp_path / "stats")
    first.observe_session(["a", "b", "c"])
    first.flush()
    first.close()
    again = CooccurrenceStats(policy, path=tmp_path / "stats", max_cached_rows=1)
    assert again.clicks == 3
    assert again.neighbours("a") == {"b": 1.0, "c": 0.5}
    assert [item for item, _ in again.top(3)] == ["a", "b", "c"]
    again.observe_click(["a", "b", "c", "a"])
    again.close()
    third = CooccurrenceStats(policy, path=tmp_path / "stats")
    assert third.popularity("a") == 2.0 and third.neighbours("b")["a"] == 0.5 + 0.5
    third.close()


def test_reopening_with_another_policy_is_refused(tmp_path: Path) -> None:
    CooccurrenceStats(CooccurrencePolicy(window=2), path=tmp_path / "s").close()
    CooccurrenceStats(CooccurrencePolicy(window=2), path=tmp_path / "s").close()
    first = CooccurrenceStats(CooccurrencePolicy(window=2), path=tmp_path / "s")
    first.observe_click(["a"])
    first.close()
    with pytest.raises(ValueError, match="were built with"):
        CooccurrenceStats(CooccurrencePolicy(window=3), path=tmp_path / "s")


def test_a_persisted_rescale_waits_for_the_flush(tmp_path: Path) -> None:
    """Rescaling used to flush mid-batch, writing counts whose clicks the ledger did not list yet (double counts
    after a crash); now nothing reaches disk before the flush, and the ranking survives the rescale and a reopen."""
    policy = CooccurrencePolicy(window=1, half_life_clicks=1.0)
    s = CooccurrenceStats(policy, path=tmp_path / "stats")
    for item, follower in [("old", "x")] * 20 + [("new", "y")] * 20:
        s.observe_click([item])
        s.observe_click([item, follower])  # 80 clicks at half-life 1: the boost passed 2**60
    assert s._db is not None and s._db.get(b"m\x00meta") is None  # nothing written before the flush
    s.flush()
    assert s._log2_boost == 0.0  # rescaled, after the flush
    assert s.top(1)[0][0] in {"new", "y"} and s.neighbours("new")["y"] > 1000 * s.neighbours("old")["x"] > 0
    s.close()
    again = CooccurrenceStats(policy, path=tmp_path / "stats")
    assert again.clicks == 80 and again.top(1)[0][0] in {"new", "y"}
    assert 0 < again.neighbours("new")["y"] < 2.0**30
    assert again.neighbours("new")["y"] > 1000 * again.neighbours("old")["x"]
    again.close()


def test_a_rescale_interrupted_by_a_crash_is_finished_on_reopen(tmp_path: Path) -> None:
    import orjson
    from rocksdict import Options, Rdict

    policy = CooccurrencePolicy(window=1, backward_weight=1.0)
    s = CooccurrenceStats(policy, path=tmp_path / "stats")
    s.observe_click(["z"])
    for item in "abcd":
        s.observe_click(["z", item])
    s.close()
    db = Rdict(str(tmp_path / "stats"), Options(raw_mode=True))  # what a crash after the rescale's first batch leaves
    meta = orjson.loads(db[b"m\x00meta"])
    keys = [k for k, _ in db.items(from_key=b"n\x00") if k.startswith(b"n\x00")]
    assert len(keys) >= 2
    db[keys[0]] = orjson.dumps({b: w * 0.5 for b, w in orjson.loads(db[keys[0]]).items()})  # the first row was scaled
    db[b"m\x00meta"] = orjson.dumps({**meta, "rows_rescale": {"factor": 0.5, "after": keys[0].hex()}})
    db.close()
    again = CooccurrenceStats(policy, path=tmp_path / "stats")
    assert again.neighbours("z") == {"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.5}  # every row scaled exactly once
    assert all(w == 0.5 for item in "abcd" for w in again.neighbours(item).values())
    again.close()
    assert "rows_rescale" not in orjson.loads(Rdict(str(tmp_path / "stats"), Options(raw_mode=True))[b"m\x00meta"])
