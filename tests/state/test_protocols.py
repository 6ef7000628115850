"""Protocols: leave-one-out masking, session next-click prefixes, SR-GNN preprocessing, split_for."""

import math
from pathlib import Path

import pytest

from streamrec.state.clicklog import (
    LoggedClick,
    diginetica_split,
    leave_one_out,
    read_log,
    recent_split,
    session_split,
    split_for,
)
from streamrec.state.clicklog.protocols import DAY_S, sessions_of, split_by_end

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def session(sid: str, items: str, start: float, user: str | None = None, gap: float = 1.0) -> list[LoggedClick]:
    """Clicks of one session: `items` space separated, `gap` seconds apart from `start`."""
    return [LoggedClick(sid, user, item, start + n * gap) for n, item in enumerate(items.split())]


# --- leave-one-out ------------------------------------------------------------------------


def test_loo_targets_contexts_and_history_masking() -> None:
    clicks = session("u1", "a b c d e", 0, "u1") + session("u2", "x y", 0, "u2") + session("u3", "p q p", 0, "u3")
    split = leave_one_out(clicks)
    assert split.protocol == "loo"
    train = {seq.user_id: seq.items for seq in split.train}
    assert train == {"u1": ("a", "b", "c"), "u2": ("x", "y"), "u3": ("p",)}  # u2 too short to test: trains only
    valid = {e.user_id: e for e in split.valid}
    test = {e.user_id: e for e in split.test}
    assert (valid["u1"].session_items, valid["u1"].target) == (("a", "b", "c"), "d")
    assert (test["u1"].session_items, test["u1"].target) == (("a", "b", "c", "d"), "e")
    assert test["u1"].exclude == {"a", "b", "c", "d"} and valid["u1"].exclude == {"a", "b", "c"}
    assert test["u1"].history_items == ()
    # ICLRec masks the whole history row, so a target that repeats a history item is masked too.
    assert test["u3"].target == "p" and "p" in test["u3"].exclude
    assert set(split.items) == {"a", "b", "c", "d", "e", "x", "y", "p", "q"}


def test_loo_groups_anonymous_clicks_by_session() -> None:
    split = leave_one_out(session("s1", "a b c", 0) + session("s2", "d e f", 0))
    assert sorted(e.target for e in split.test) == ["c", "f"]
    assert all(e.user_id is None for e in split.test)


# --- session next-click -------------------------------------------------------------------


def test_session_split_prefixes_unseen_items_and_short_sessions() -> None:
    train = session("t1", "a b c", 0) + session("t2", "b c d", 10)
    test = session("x1", "a z b c", 100) + session("x2", "z d", 200) + session("x3", "c c", 300)
    split = session_split(train, test, valid_fraction=0.0)
    assert split.protocol == "session-split"
    assert [seq.items for seq in split.train] == [("a", "b", "c"), ("b", "c", "d")]
    assert split.valid == ()
    got = [(e.session_items, e.target) for e in split.test]
    assert got == [
        (("a",), "b"),  # z (never trained on) is removed from the session before cutting prefixes
        (("a", "b"), "c"),
        (("c",), "c"),  # repeat clicks stay: no masking in session protocols
    ]  # x2 has one known click left: dropped
    assert all(e.exclude == frozenset() for e in split.test)
    assert set(split.items) == {"a", "b", "c", "d"}


def test_session_split_holds_out_latest_train_sessions_for_validation() -> None:
    train = [c for n in range(10) for c in session(f"t{n}", f"a b{n} c", n * 100)]
    split = session_split(train, session("x", "a c", 5000), valid_fraction=0.2)
    assert [seq.items[1] for seq in split.train] == [f"b{n}" for n in range(8)]
    # b8 and b9 are unknown to train-minus-valid, so they leave the valid sessions
    assert [(e.session_items, e.target) for e in split.valid] == [(("a",), "c")] * 2
    assert {"b8", "b9"} <= set(split.items)  # still the catalogue: the test set stays the standard one


def test_session_split_history_from_the_same_users_earlier_sessions() -> None:
    train = session("s1", "a b", 0, "u") + session("s2", "c d", 100, "u") + session("s3", "a c", 150)
    test = session("s4", "b z c", 1000, "u") + session("s5", "a b", 2000)
    split = session_split(train, test, valid_fraction=0.0)
    histories = {seq.items: seq.history_items for seq in split.train}
    assert histories == {("a", "b"): (), ("c", "d"): ("a", "b"), ("a", "c"): ()}
    user_test = [e for e in split.test if e.user_id == "u"]
    assert user_test and all(e.history_items == ("a", "b", "c", "d") for e in user_test)
    assert all(e.history_items == () for e in split.test if e.user_id is None)


def test_recent_split_tests_the_latest_sessions() -> None:
    clicks = [c for n in range(10) for c in session(f"s{n}", "a b c", n * 100)]
    split = recent_split(clicks, test_fraction=0.2, valid_fraction=0.0)
    assert len(split.train) == 8 and len(split.test) == 2 * 2


def test_split_by_end_cuts_the_latest_sessions_by_end_time_rounding_up() -> None:
    # s0 starts first but ends last: end time, not start time, decides
    clicks = session("s0", "a b c d e f", 0, gap=100) + [c for n in range(1, 10) for c in session(f"s{n}", "a b", n)]
    older, latest = split_by_end(sessions_of(clicks), 0.15)  # 1.5 sessions: 2
    assert [s.session_id for s in latest] == ["s9", "s0"]
    assert [s.session_id for s in older] == [f"s{n}" for n in range(1, 9)]
    assert split_by_end(sessions_of(session("x", "a b", 0)), 0.5) == (sessions_of(session("x", "a b", 0)), [])
    with pytest.raises(ValueError, match="fraction"):
        split_by_end([], 1.0)


# --- Diginetica (SR-GNN preprocessing) -------------------------------------------------------


def test_diginetica_srgnn_filters_and_seven_day_split() -> None:
    day = 20_000 * DAY_S
    clicks: list[LoggedClick] = []
    for n in range(6):  # a, b, c seen 6 times each in training days
        clicks += session(f"t{n}", "a b c", day + n * DAY_S)
    clicks += session("one", "a", day)  # length 1: dropped before counting
    clicks += session("rare", "a r", day)  # r seen once: removed, session left with 1 item: dropped
    clicks += session("on-split-day", "a b", day + 6 * DAY_S)  # split day = last day - 7: neither set
    clicks += session("test1", "b r c a", day + 10 * DAY_S)
    clicks += session("last", "c b", day + 13 * DAY_S)
    split = diginetica_split(clicks, valid_fraction=0.0)
    assert len(split.train) == 6
    assert all("r" not in seq.items for seq in split.train)
    assert [(e.session_items, e.target) for e in split.test] == [
        (("b",), "c"), (("b", "c"), "a"), (("c",), "b"),
    ]


# --- split_for ----------------------------------------------------------------------------


def test_split_for_yoochoose_accepts_prefix_or_either_file(tmp_path: Path) -> None:
    header = "SessionId\tItemId\tTime\n"
    (tmp_path / "yc.train.tsv").write_text(header + "1\ta\t1\n1\tb\t2\n2\tb\t3\n2\tc\t4\n")
    (tmp_path / "yc.test.tsv").write_text(header + "9\ta\t10\n9\tb\t11\n9\tc\t12\n")
    splits = [split_for("yoochoose", tmp_path / name, "session-split")
              for name in ("yc", "yc.train.tsv", "yc.test.tsv")]
    assert splits[0] == splits[1] == splits[2]
    assert len(splits[0].test) == 2


def test_split_for_rejects_what_cannot_work(tmp_path: Path) -> None:
    beauty = tmp_path / "b.txt"
    beauty.write_text("1 a b c\n")
    with pytest.raises(ValueError, match="loo"):
        split_for("amazon-beauty", beauty, "session-split")
    with pytest.raises(ValueError, match="protocol"):
        split_for("amazon-beauty", beauty, "random")
    with pytest.raises(ValueError, match="format"):
        split_for("parquet", beauty, "loo")
    with pytest.raises(ValueError, match="needs a dataset"):
        split_for("events-csv", None, "loo")
    with pytest.raises(ValueError, match="synthetic"):
        split_for("synthetic", beauty, "loo")


def test_split_for_synthetic_needs_no_file() -> None:
    split = split_for("synthetic", None, "session-split")
    assert split.train and split.valid and split.test
    assert any(e.history_items for e in split.test)  # returning users bring history
    assert all(e.target in set(split.items) for e in split.test)


# --- the real files -----------------------------------------------------------------------


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists() and not path.with_name(f"{name}.train.tsv").exists():
        pytest.skip(f"{path} absent")
    return path


@pytest.mark.data
def test_real_yoochoose_predicts_every_prefix_of_every_test_session() -> None:
    split = split_for("yoochoose", shared("yoochoose-100k"), "session-split")
    assert len(split.test) == 13_568 - 3_416  # the files are session-rec filtered: all test items are known
    assert len(split.train) == 17_794 - math.ceil(0.1 * 17_794)  # latest 10% of sessions validate


@pytest.mark.data
def test_real_beauty_leave_one_out() -> None:
    split = split_for("amazon-beauty", shared("amazon-beauty.seq.txt"), "loo")
    assert len(split.test) == len(split.valid) == 22_363
    assert len(split.items) == 12_101
    assert sum(len(seq.items) for seq in split.train) == 198_502 - 2 * 22_363


@pytest.mark.data
def test_real_diginetica_matches_srgnn_preprocessing() -> None:
    clicks = read_log(shared("diginetica-sample.item-views.csv"), "diginetica")
    split = diginetica_split(clicks, valid_fraction=0.0)
    # Counts from running SR-GNN's preprocess.py logic on the same file.
    assert (len(split.train), len(split.items), len(split.test)) == (469, 309, 99)
