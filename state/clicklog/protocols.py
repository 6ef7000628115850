"""Evaluation protocols: a click log in, a `Split` (train sequences, valid and test examples) out.

Implemented as ../shared/data/README.md describes them, and where it is silent, as the public
reference code does (each choice is noted where it is made):

- `leave_one_out` (Beauty; S3-Rec / ICLRec): per user, train on items[:-2], validate on
  items[-2] given items[:-2], test on items[-1] given items[:-1]. Full ranking over every item,
  masking the user's history: ``exclude = set(context)``. ICLRec masks the whole rating-matrix
  row of the context (``rating_pred[train_matrix > 0] = 0``, trainers.py), so a target that
  already occurs in the history is masked as well and can never be hit; we do the same
  (it never happens on the 5-core Beauty file: no user's last item repeats an earlier one).
- `session_split` (YooChoose; session-rec): the train file trains; every prefix of every test
  session predicts its next click; test clicks on items never seen in the train file are
  removed and test sessions left shorter than 2 dropped (session-rec's preprocessing). No masking.
- `diginetica_split`: SR-GNN's preprocess.py, then the same prefixes and metrics.
- `recent_split`: for logs without a published split (events CSV, synthetic): the latest
  sessions by end time are the test sessions, then as `session_split`.

Validation for session protocols: the last `valid_fraction` of the train file's sessions by end
time. They are held out of `Split.train` (train on train-minus-valid, early-stop on valid,
report test), so early stopping never looks at data it trained on; the test set and the
catalogue (`Split.items`, all items of the train file) stay those of the standard protocol.
SR-GNN draws its optional validation set at random; we take the latest sessions because that
mirrors the test split. Pass ``valid_fraction=0`` to train on the whole train file.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from streamrec.state.clicklog.formats import FORMATS, train_test_pair
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate
from streamrec.state.clicklog.types import Example, LoggedClick, Split, TrainSequence

PROTOCOLS: tuple[str, ...] = ("loo", "session-split")
VALID_FRACTION = 0.1
"""Share of the train file's latest sessions held out for early stopping."""
TEST_FRACTION = 0.1
"""Share of the latest sessions tested by `recent_split` (logs without a published split)."""
SRGNN_MIN_ITEM_COUNT = 5
SRGNN_TEST_DAYS = 7
DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class LoggedSession:
    """One session of a log: its clicked items in time order and when it started and ended."""

    session_id: str
    user_id: str | None
    items: tuple[str, ...]
    start_ts: float
    end_ts: float


def sessions_of(clicks: Iterable[LoggedClick]) -> list[LoggedSession]:
    """Group clicks by session (event-time order inside each), sessions in order of first click."""
    grouped: dict[str, list[LoggedClick]] = defaultdict(list)
    for click in sorted(clicks, key=lambda c: c.ts):
        grouped[click.session_id].append(click)
    return [
        LoggedSession(
            sid, next((c.user_id for c in cs if c.user_id), None), tuple(c.item_id for c in cs), cs[0].ts, cs[-1].ts
        )
        for sid, cs in grouped.items()
    ]


def leave_one_out(clicks: Sequence[LoggedClick]) -> Split:
    """S3-Rec/ICLRec leave-one-out over each user's time-ordered items (anonymous: per session).

    Users with fewer than 3 items cannot give a train, valid and test item; they train only.
    """
    sequences: dict[str, list[str]] = defaultdict(list)
    users: dict[str, str | None] = {}
    for click in sorted(clicks, key=lambda c: c.ts):
        key = click.user_id if click.user_id is not None else f"session:{click.session_id}"
        sequences[key].append(click.item_id)
        users[key] = click.user_id
    train: list[TrainSequence] = []
    valid: list[Example] = []
    test: list[Example] = []
    for key, items in sequences.items():
        user = users[key]
        if len(items) < 3:
            train.append(TrainSequence(tuple(items), user))
            continue
        train.append(TrainSequence(tuple(items[:-2]), user))
        valid.append(_masked_example(items[:-2], items[-2], user, key))
        test.append(_masked_example(items[:-1], items[-1], user, key))
    return Split("loo", tuple(train), tuple(valid), tuple(test), _first_seen(c.item_id for c in clicks))


def _masked_example(context: list[str], target: str, user: str | None, sequence: str) -> Example:
    """Whole context as the session, history masked (target included when it occurs there, as ICLRec);
    grouped by its `sequence` (the user, or the session of an anonymous one)."""
    return Example(tuple(context), target, (), user, frozenset(context), group=sequence)


def session_split(
    train_clicks: Sequence[LoggedClick], test_clicks: Sequence[LoggedClick], valid_fraction: float = VALID_FRACTION
) -> Split:
    """session-rec next-click protocol on an already time-split pair of logs."""
    return split_sessions(sessions_of(train_clicks), sessions_of(test_clicks), valid_fraction)


def diginetica_split(clicks: Sequence[LoggedClick], valid_fraction: float = VALID_FRACTION) -> Split:
    """SR-GNN preprocessing of DIGINETICA, then the next-click protocol.

    As preprocess.py: drop sessions of length 1; count item occurrences over the remaining
    sessions and drop items seen fewer than 5 times; drop sessions left shorter than 2. A
    session's date is the day of its last click; split date = latest date - 7 days; sessions
    dated before it train, after it test. SR-GNN compares strictly on both sides, so sessions
    dated exactly on the split day are in neither set; we keep that quirk to stay comparable.
    """
    sessions = [s for s in sessions_of(clicks) if len(s.items) > 1]
    counts: dict[str, int] = defaultdict(int)
    for session in sessions:
        for item in session.items:
            counts[item] += 1
    kept = [_keep_items(s, lambda item: counts[item] >= SRGNN_MIN_ITEM_COUNT) for s in sessions]
    kept_sessions = [s for s in kept if len(s.items) >= 2]
    if not kept_sessions:
        raise ValueError("no session survives SR-GNN preprocessing")
    day = {s.session_id: math.floor(s.end_ts / DAY_S) * DAY_S for s in kept_sessions}
    split_day = max(day.values()) - SRGNN_TEST_DAYS * DAY_S
    train = [s for s in kept_sessions if day[s.session_id] < split_day]
    test = [s for s in kept_sessions if day[s.session_id] > split_day]
    return split_sessions(train, test, valid_fraction)


def recent_split(
    clicks: Sequence[LoggedClick], test_fraction: float = TEST_FRACTION, valid_fraction: float = VALID_FRACTION
) -> Split:
    """Time split for logs without a published one: the latest `test_fraction` of sessions test."""
    older, latest = split_by_end(sessions_of(clicks), test_fraction)
    return split_sessions(older, latest, valid_fraction)


def split_sessions(
    train_sessions: Sequence[LoggedSession], test_sessions: Sequence[LoggedSession], valid_fraction: float
) -> Split:
    """The shared core of every session protocol (see the module docstring)."""
    fit_sessions, valid_sessions = split_by_end(train_sessions, valid_fraction)
    by_end = [*fit_sessions, *valid_sessions]
    catalogue = _first_seen(item for s in by_end for item in s.items)
    known, fit_known = set(catalogue), {item for s in fit_sessions for item in s.items}
    valid_kept = _known_sessions(valid_sessions, fit_known)
    test_kept = _known_sessions(test_sessions, known)
    history = _histories([*by_end, *test_kept], known)
    train = tuple(TrainSequence(s.items, s.user_id, history[s.session_id]) for s in fit_sessions)
    valid = tuple(e for s in valid_kept for e in _prefix_examples(s, history[s.session_id]))
    test = tuple(e for s in test_kept for e in _prefix_examples(s, history[s.session_id]))
    return Split("session-split", train, valid, test, catalogue)


def split_by_end(
    sessions: Iterable[LoggedSession], fraction: float
) -> tuple[list[LoggedSession], list[LoggedSession]]:
    """(older, latest): sessions by end time, the latest `fraction` of them (rounded up; none of a single session)
    in the second part. The one cut every protocol and bench makes, so a bench's fit/validation sessions are
    exactly those of the split a model was trained on."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    by_end = sorted(sessions, key=lambda s: s.end_ts)
    latest = math.ceil(len(by_end) * fraction) if len(by_end) > 1 else 0
    return by_end[: len(by_end) - latest], by_end[len(by_end) - latest :]


def _keep_items(session: LoggedSession, keep: Callable[[str], bool]) -> LoggedSession:
    return LoggedSession(
        session.session_id, session.user_id, tuple(i for i in session.items if keep(i)), session.start_ts,
        session.end_ts,
    )


def _known_sessions(sessions: Iterable[LoggedSession], known: set[str]) -> list[LoggedSession]:
    """Remove clicks on unknown items; sessions left with fewer than 2 clicks predict nothing."""
    filtered = (_keep_items(s, known.__contains__) for s in sessions)
    return [s for s in filtered if len(s.items) >= 2]


def _prefix_examples(session: LoggedSession, history: tuple[str, ...]) -> Iterator[Example]:
    """Every prefix -> next click of one session (no masking: repeat clicks are legitimate)."""
    for end in range(1, len(session.items)):
        yield Example(session.items[:end], session.items[end], history, session.user_id, group=session.session_id)


def _histories(sessions: Sequence[LoggedSession], known: set[str]) -> dict[str, tuple[str, ...]]:
    """Per session: the known items of the same user's sessions that ended before it started.

    Oldest first, as the stream's user memory would hold them (closed sessions only).
    Anonymous sessions get an empty history.
    """
    per_user: dict[str, list[LoggedSession]] = defaultdict(list)
    histories: dict[str, tuple[str, ...]] = {s.session_id: () for s in sessions}
    for session in sessions:
        if session.user_id is not None:
            per_user[session.user_id].append(session)
    for user_sessions in per_user.values():
        closed = sorted(user_sessions, key=lambda s: s.end_ts)
        items: list[str] = []
        done = 0
        for session in sorted(user_sessions, key=lambda s: s.start_ts):
            while done < len(closed) and closed[done].end_ts < session.start_ts:
                items.extend(i for i in closed[done].items if i in known)
                done += 1
            histories[session.session_id] = tuple(items)
    return histories


def _first_seen(items: Iterable[str]) -> tuple[str, ...]:
    """Distinct items in order of first appearance (deterministic catalogue order)."""
    return tuple(dict.fromkeys(items))


def split_for(fmt: str, dataset: Path | None, protocol: str) -> Split:
    """The Split the CLI evaluates and trains on: `dataset` read as `fmt` ("synthetic": the generator).

    loo works on every format; session-split uses the published split where there is one
    (yoochoose train/test pair, Diginetica's SR-GNN split) and `recent_split` otherwise.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    if fmt == "synthetic":
        if dataset is not None:
            raise ValueError("the synthetic format is generated, it reads no dataset file")
        clicks = generate(SyntheticSpec())
        return leave_one_out(clicks) if protocol == "loo" else recent_split(clicks)
    if dataset is None:
        raise ValueError(f"format {fmt!r} needs a dataset path")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected synthetic or one of {', '.join(FORMATS)}")
    if protocol == "loo":
        return leave_one_out(_read_checked(dataset, fmt))
    if fmt == "amazon-beauty":
        raise ValueError("amazon-beauty has no timestamps, so no time split: use --protocol loo")
    if fmt == "diginetica":
        return diginetica_split(_read_checked(dataset, fmt))
    pair = train_test_pair(Path(dataset)) if fmt == "yoochoose" else None
    if pair is not None:
        return session_split(_read_checked(pair[0], fmt), _read_checked(pair[1], fmt))
    return recent_split(_read_checked(dataset, fmt))


def _read_checked(path: Path, fmt: str) -> list[LoggedClick]:
    """The log's clicks, refusing a file evidently in another format or with malformed rows (never garbage)."""
    from streamrec.state.clicklog.sniff import read_checked  # sniff reads through formats, as this module does

    return read_checked(Path(path), fmt)[0]
