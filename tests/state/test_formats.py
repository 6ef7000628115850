"""Readers: each format on small inline files, malformed rows reported with line numbers."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from streamrec.state.clicklog import FORMATS, MalformedLogError, read_log, read_log_with_report
from streamrec.state.clicklog.formats import BEAUTY_CLICK_GAP_S, BEAUTY_EPOCH_S

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_formats_listed() -> None:
    assert set(FORMATS) == {"amazon-beauty", "yoochoose", "diginetica", "events-csv"}
    with pytest.raises(MalformedLogError, match="unknown format"):
        read_log(Path("whatever"), "parquet")


def test_beauty_users_are_sessions_with_monotone_synthetic_times(tmp_path: Path) -> None:
    path = write(tmp_path, "beauty.txt", "1 10 11 12\n2 20 21\n")
    clicks = read_log(path, "amazon-beauty")
    assert [(c.session_id, c.user_id, c.item_id) for c in clicks] == [
        ("1", "1", "10"), ("2", "2", "20"), ("1", "1", "11"), ("2", "2", "21"), ("1", "1", "12"),
    ]  # users interleave: everyone's n-th item shares the n-th synthetic time
    user1 = [c.ts for c in clicks if c.user_id == "1"]
    assert user1 == [BEAUTY_EPOCH_S + n * BEAUTY_CLICK_GAP_S for n in range(3)]


def test_malformed_rows_are_skipped_and_reported_with_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "beauty.txt", "1 10 11\n7\n\n2 20\n")
    clicks, report = read_log_with_report(path, "amazon-beauty")
    assert len(clicks) == 3 and report.clicks == 3
    assert [bad.line for bad in report.bad_rows] == [2]  # the blank line 3 is not a click, nor an error
    assert "line 2" in report.summary()
    with pytest.raises(MalformedLogError, match="line 2"):
        read_log(path, "amazon-beauty", strict=True)


def test_yoochoose_tsv_and_bad_time(tmp_path: Path) -> None:
    path = write(tmp_path, "yc.tsv", "SessionId\tItemId\tTime\n1\t100\t20.5\n1\t101\tnoon\n2\t100\t10.0\n")
    clicks, report = read_log_with_report(path, "yoochoose")
    assert [(c.session_id, c.item_id, c.ts, c.user_id) for c in clicks] == [("2", "100", 10.0, None),
                                                                            ("1", "100", 20.5, None)]
    assert [(bad.line, "noon" in bad.reason) for bad in report.bad_rows] == [(3, True)]


def test_yoochoose_prefix_reads_train_and_test_together(tmp_path: Path) -> None:
    write(tmp_path, "yc.train.tsv", "SessionId\tItemId\tTime\n1\t100\t1\n1\t101\t2\n")
    write(tmp_path, "yc.test.tsv", "SessionId\tItemId\tTime\n9\t100\t3\n9\t101\t4\n")
    assert [c.session_id for c in read_log(tmp_path / "yc", "yoochoose")] == ["1", "1", "9", "9"]
    with pytest.raises(FileNotFoundError):
        read_log(tmp_path / "nothing", "yoochoose")


def test_wrong_header_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "yc.tsv", "session\titem\ttime\n1\t2\t3\n")
    with pytest.raises(MalformedLogError, match="line 1"):
        read_log(path, "yoochoose")


def test_diginetica_times_users_and_in_session_order(tmp_path: Path) -> None:
    text = (
        "session_id;user_id;item_id;timeframe;eventdate\n"
        "1;NA;81766;526309;2016-05-09\n"
        "1;NA;31331;75848;2016-05-09\n"
        "2;194;9654;1000;2016-05-10\n"
        "3;NA;77;-5;2016-05-10\n"
        "4;NA;78;1000;yesterday\n"
    )
    clicks, report = read_log_with_report(write(tmp_path, "d.csv", text), "diginetica")
    midnight = datetime(2016, 5, 9, tzinfo=UTC).timestamp()
    assert [(c.session_id, c.user_id, c.item_id) for c in clicks] == [("1", None, "31331"), ("1", None, "81766"),
                                                                      ("2", "194", "9654")]
    assert clicks[0].ts == pytest.approx(midnight + 75.848)
    assert [bad.line for bad in report.bad_rows] == [5, 6]


def test_events_csv_any_column_order_iso_and_unix_times(tmp_path: Path) -> None:
    text = (
        "item_id,timestamp,user_id,session_id,type\n"
        "a,2024-01-01T00:00:10Z,u1,s1,view\n"
        "b,1704067205,,s2,\n"
        "c,2024-01-01T00:00:20,u1,s1,cart\n"
        "d,not-a-time,u1,s1,view\n"
        ",1704067230,u1,s1,view\n"
        "e,1704067240\n"
    )
    clicks, report = read_log_with_report(write(tmp_path, "e.csv", text), "events-csv")
    assert [(c.item_id, c.user_id, c.session_id, c.ts, c.type) for c in clicks] == [
        ("b", None, "s2", 1704067205.0, "view"),
        ("a", "u1", "s1", 1704067210.0, "view"),
        ("c", "u1", "s1", 1704067220.0, "cart"),
    ]
    reasons = {bad.line: bad.reason for bad in report.bad_rows}
    assert sorted(reasons) == [5, 6, 7]
    assert "not-a-time" in reasons[5] and "item_id" in reasons[6]


def test_events_csv_header_must_name_the_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "e.csv", "session_id,item_id,timestamp\ns,i,1\n")
    with pytest.raises(MalformedLogError, match="user_id"):
        read_log(path, "events-csv")


@pytest.mark.data
@pytest.mark.parametrize(
    ("name", "fmt", "clicks", "sessions"),
    [
        ("amazon-beauty.seq.txt", "amazon-beauty", 198_502, 22_363),
        ("yoochoose-100k.train.tsv", "yoochoose", 70_278, 17_794),
        ("yoochoose-100k.test.tsv", "yoochoose", 13_568, 3_416),
        ("diginetica-sample.item-views.csv", "diginetica", 12_391, 2_986),
    ],
)
def test_real_files_match_their_readme(name: str, fmt: str, clicks: int, sessions: int) -> None:
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} absent")
    read, report = read_log_with_report(path, fmt)
    assert not report.bad_rows
    assert len(read) == clicks
    assert len({c.session_id for c in read}) == sessions
    assert all(a.ts <= b.ts for a, b in zip(read, read[1:]))
