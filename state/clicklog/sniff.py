"""Which format a click-log file is in, judged from its first lines, and a read that refuses garbage.

A log read in the wrong format must not turn into plausible clicks: the YooChoose TSV read as
``amazon-beauty`` gave 27,138 "clicks" whose items were timestamps. `detect_format` recognises
the headered formats by their header and ``amazon-beauty`` by its shape (space-separated tokens,
no header); `read_checked` refuses a file whose header says another format, and a file whose
first data rows do not parse (naming their lines), instead of skipping them.
"""

from __future__ import annotations

from pathlib import Path

from streamrec.state.clicklog.formats import (
    DIGINETICA_HEADER,
    EVENTS_CSV_COLUMNS,
    YOOCHOOSE_HEADER,
    MalformedLogError,
    ReadReport,
    read_log_with_report,
    yoochoose_files,
)
from streamrec.state.clicklog.types import LoggedClick

CHECKED_ROWS = 10
"""A bad row among the first this many data rows refuses the whole file (the format is wrong)."""
MAX_BAD_FRACTION = 0.01
"""More malformed rows than this fraction refuses the file too."""


def _first_line(path: Path) -> str:
    files = yoochoose_files(path) if not path.is_file() else (path,)
    with files[0].open(encoding="utf-8", errors="replace") as handle:
        return handle.readline().rstrip("\r\n")


def detect_format(path: Path) -> str | None:
    """The format `path` is in, from its first line; None when it matches none."""
    line = _first_line(Path(path))
    if tuple(f.strip() for f in line.split("\t"))[: len(YOOCHOOSE_HEADER)] == YOOCHOOSE_HEADER:
        return "yoochoose"
    if tuple(f.strip() for f in line.split(";"))[: len(DIGINETICA_HEADER)] == DIGINETICA_HEADER:
        return "diginetica"
    if set(EVENTS_CSV_COLUMNS) <= {f.strip() for f in line.split(",")}:
        return "events-csv"
    tokens = line.split()
    if len(tokens) >= 2 and not any(sep in line for sep in "\t;,"):
        return "amazon-beauty"
    return None


def read_checked(path: Path, fmt: str) -> tuple[list[LoggedClick], ReadReport]:
    """`read_log_with_report`, refusing a file that is evidently in another format or mostly malformed."""
    path = Path(path)
    detected = detect_format(path)
    if detected is not None and detected != fmt:
        raise MalformedLogError(f"{path} looks like {detected} (line 1: {_first_line(path)[:80]!r}), not {fmt}: "
                                f"use --format {detected}")
    if detected is None and fmt == "amazon-beauty":
        raise MalformedLogError(f"{path} line 1 is not an amazon-beauty line (user item item ..., space-separated): "
                                f"{_first_line(path)[:80]!r}")
    clicks, report = read_log_with_report(path, fmt)
    data_rows = report.clicks + len(report.bad_rows)
    early = [b for b in report.bad_rows if b.line <= CHECKED_ROWS + 1]
    if early or len(report.bad_rows) > MAX_BAD_FRACTION * max(data_rows, 1):
        raise MalformedLogError(f"rows do not match --format {fmt}: {report.summary()}")
    return clicks, report
