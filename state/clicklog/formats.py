"""Readers for the public click-log formats and a generic events CSV.

Every reader turns one file into `LoggedClick`s sorted by event time (a stable sort, so
ties keep file order). Malformed rows never crash a read and are never dropped silently:
each is recorded as a `BadRow` (line number + reason) in a `ReadReport`, `read_log`
logs how many were skipped and where, and `strict=True` turns the first one into a
`MalformedLogError` instead. Formats (see ../shared/data/README.md):

- ``amazon-beauty``: ``user item item ...`` per line (S3-Rec/ICLRec 5-core files), items in
  time order, no timestamps. Each user is one session (session_id = user_id = the user
  token). Times are synthesised: the n-th item of every user happens at
  ``BEAUTY_EPOCH_S + n * BEAUTY_CLICK_GAP_S``, monotone per user, so a replay interleaves
  users (everyone's first item, then everyone's second, ...) instead of playing them one
  after another.
- ``yoochoose``: session-rec TSV ``SessionId ItemId Time`` (unix seconds). The path may name
  one file or the common prefix of a ``<prefix>.train.tsv`` / ``<prefix>.test.tsv`` pair,
  which are then read together (their session ids are disjoint).
- ``diginetica``: SR-GNN's ``session_id;user_id;item_id;timeframe;eventdate`` (``NA`` user =
  anonymous). ``ts = midnight UTC of eventdate + timeframe / 1000``: timeframe is ms since
  the session start, so this keeps SR-GNN's within-session order and each session's day.
- ``events-csv``: comma-separated with a header naming at least ``session_id, user_id,
  item_id, timestamp`` (any order; optional ``type``); empty user_id = anonymous;
  timestamp in unix seconds or ISO-8601 (naive times are taken as UTC).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from streamrec.state.clicklog.types import LoggedClick

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("amazon-beauty", "yoochoose", "diginetica", "events-csv")
"""Formats `read_log` understands (the CLI adds ``synthetic``, which needs no file)."""

BEAUTY_EPOCH_S = 1_388_534_400.0
"""2014-01-01 UTC: the first synthesised Beauty click (the reviews end in 2014)."""
BEAUTY_CLICK_GAP_S = 60.0
"""Synthesised time between two consecutive Beauty items of one user."""

YOOCHOOSE_HEADER = ("SessionId", "ItemId", "Time")
DIGINETICA_HEADER = ("session_id", "user_id", "item_id", "timeframe", "eventdate")
EVENTS_CSV_COLUMNS = ("session_id", "user_id", "item_id", "timestamp")
MAX_BAD_ROWS_LOGGED = 5


class MalformedLogError(ValueError):
    """A log cannot be read (wrong header, unknown format, or a bad row under strict=True)."""


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    """1-based line number in the file."""
    reason: str


@dataclass
class ReadReport:
    """What one read produced: the clicks kept and every row skipped, with its line."""

    path: Path
    clicks: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)

    def summary(self) -> str:
        shown = "; ".join(f"line {b.line}: {b.reason}" for b in self.bad_rows[:MAX_BAD_ROWS_LOGGED])
        more = len(self.bad_rows) - MAX_BAD_ROWS_LOGGED
        tail = f" (+{more} more)" if more > 0 else ""
        return f"{self.path}: {self.clicks} clicks read, {len(self.bad_rows)} malformed rows skipped: {shown}{tail}"


Row = tuple[int, list[str]]
"""(1-based line number, fields)."""
RowParser = Callable[[list[str]], list[LoggedClick]]
"""Turns one row's fields into its clicks (one, or a whole Beauty user); raises ValueError with the reason."""


def read_log(path: Path, fmt: str, *, strict: bool = False) -> list[LoggedClick]:
    """All clicks of `path` in event-time order; malformed rows are skipped and logged."""
    clicks, report = read_log_with_report(path, fmt, strict=strict)
    if report.bad_rows:
        log.warning(report.summary())
    return clicks


def read_log_with_report(path: Path, fmt: str, *, strict: bool = False) -> tuple[list[LoggedClick], ReadReport]:
    """Like `read_log`, but hands back the `ReadReport` instead of logging it."""
    if fmt not in FORMATS:
        raise MalformedLogError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    files = yoochoose_files(path) if fmt == "yoochoose" else (Path(path),)
    report = ReadReport(path=Path(path))
    clicks: list[LoggedClick] = []
    for file in files:
        clicks.extend(_read_file(file, fmt, report, strict))
    clicks.sort(key=lambda click: click.ts)
    report.clicks = len(clicks)
    return clicks, report


def yoochoose_files(path: Path) -> tuple[Path, ...]:
    """The yoochoose file(s) a --dataset argument names: one file, or a train/test prefix pair."""
    path = Path(path)
    if path.is_file():
        return (path,)
    pair = train_test_pair(path)
    if pair is None:
        raise FileNotFoundError(f"{path} is neither a file nor the prefix of <prefix>.train.tsv/<prefix>.test.tsv")
    return pair


def train_test_pair(path: Path) -> tuple[Path, Path] | None:
    """(train, test) files for a prefix or for either file of the pair; None if not both exist."""
    name = path.name
    for suffix in (".train.tsv", ".test.tsv"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    train, test = path.with_name(f"{name}.train.tsv"), path.with_name(f"{name}.test.tsv")
    return (train, test) if train.is_file() and test.is_file() else None


def _read_file(path: Path, fmt: str, report: ReadReport, strict: bool) -> list[LoggedClick]:
    with path.open(newline="", encoding="utf-8") as handle:
        if fmt == "amazon-beauty":
            return _collect(_beauty_rows(handle), _parse_beauty, report, strict)
        delimiter = {"yoochoose": "\t", "diginetica": ";", "events-csv": ","}[fmt]
        rows = _numbered_rows(csv.reader(handle, delimiter=delimiter))
        header = next(rows, (1, []))[1]
        return _collect(rows, _row_parser(fmt, header, path), report, strict)


def _collect(rows: Iterator[Row], parse: RowParser, report: ReadReport, strict: bool) -> list[LoggedClick]:
    clicks: list[LoggedClick] = []
    for line, fields in rows:
        if not any(f.strip() for f in fields):
            continue  # blank line: nothing to read, nothing lost
        try:
            clicks.extend(parse(fields))
        except (ValueError, IndexError) as error:
            bad = BadRow(line, str(error) or type(error).__name__)
            if strict:
                raise MalformedLogError(f"{report.path} line {bad.line}: {bad.reason}") from error
            report.bad_rows.append(bad)
    return clicks


def _numbered_rows(reader: Iterator[list[str]]) -> Iterator[Row]:
    for fields in reader:
        yield reader.line_num, fields  # type: ignore[attr-defined]


def _row_parser(fmt: str, header: list[str], path: Path) -> RowParser:
    """Check the header and return the parser for the data rows below it."""
    names = [h.strip() for h in header]
    if fmt == "yoochoose":
        _require_header(names, YOOCHOOSE_HEADER, path)
        return _parse_yoochoose
    if fmt == "diginetica":
        _require_header(names, DIGINETICA_HEADER, path)
        return _parse_diginetica
    missing = [c for c in EVENTS_CSV_COLUMNS if c not in names]
    if missing:
        raise MalformedLogError(f"{path} line 1: header {names} lacks column(s) {missing}")
    return _events_csv_parser({name: i for i, name in enumerate(names)})


def _require_header(names: list[str], expected: tuple[str, ...], path: Path) -> None:
    if tuple(names[: len(expected)]) != expected:
        raise MalformedLogError(f"{path} line 1: expected header {list(expected)}, got {names}")


def _beauty_rows(handle: Iterator[str]) -> Iterator[Row]:
    for line, text in enumerate(handle, start=1):
        yield line, text.split()


def _parse_beauty(fields: list[str]) -> list[LoggedClick]:
    """One user line: the user's items in order, at synthesised monotone times."""
    if len(fields) < 2:
        raise ValueError("a user line needs a user id and at least one item")
    user, items = fields[0], fields[1:]
    return [LoggedClick(user, user, item, BEAUTY_EPOCH_S + n * BEAUTY_CLICK_GAP_S) for n, item in enumerate(items)]


def _required(value: str, name: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"empty {name}")
    return value


def _parse_yoochoose(fields: list[str]) -> list[LoggedClick]:
    if len(fields) != 3:
        raise ValueError(f"expected 3 tab-separated fields, got {len(fields)}")
    session, item, time = fields
    return [LoggedClick(_required(session, "SessionId"), None, _required(item, "ItemId"), _unix_seconds(time))]


def _parse_diginetica(fields: list[str]) -> list[LoggedClick]:
    if len(fields) != 5:
        raise ValueError(f"expected 5 ';'-separated fields, got {len(fields)}")
    session, user, item, timeframe_ms, day = (f.strip() for f in fields)
    midnight = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    offset_s = int(timeframe_ms) / 1000.0
    if offset_s < 0:
        raise ValueError(f"negative timeframe {timeframe_ms}")
    user_id = None if user in ("", "NA") else user
    return [LoggedClick(_required(session, "session_id"), user_id, _required(item, "item_id"), midnight + offset_s)]


def _events_csv_parser(column: dict[str, int]) -> RowParser:
    width = max(column.values()) + 1
    type_column = column.get("type")

    def parse(fields: list[str]) -> list[LoggedClick]:
        if len(fields) < width:
            raise ValueError(f"expected {width} comma-separated fields, got {len(fields)}")
        user = fields[column["user_id"]].strip()
        kind = fields[type_column].strip() if type_column is not None else ""
        click = LoggedClick(
            session_id=_required(fields[column["session_id"]], "session_id"),
            user_id=user or None,
            item_id=_required(fields[column["item_id"]], "item_id"),
            ts=_timestamp(fields[column["timestamp"]]),
            type=kind or "view",
        )
        return [click]

    return parse


def _unix_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"bad unix time {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"bad unix time {text!r}")
    return value


def _timestamp(text: str) -> float:
    """Unix seconds, or ISO-8601 (naive = UTC)."""
    text = text.strip()
    try:
        return _unix_seconds(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is neither unix seconds nor ISO-8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
