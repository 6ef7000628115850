"""Prequential bookkeeping of one replay phase: which click was sent when, what answered it, how well.

A phase is a click log replayed in order. Click i gets event id ``<prefix><i>`` so an
answer finds its click in O(1); its target is the next click of the same session (none
for a session's last click, which is then answered but not judged). Every scorer that
answers gets its own tally, so a primary and shadow scorers are judged on the same clicks.
The main log is cut into equal-count windows (in send order) for the plots over time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamrec.state.clicklog.types import LoggedClick
from streamrec.state.paired import PairedDifference, paired_differences
from streamrec.state.ranking_metrics import RankingMetrics
from streamrec.stream.harness.report import (
    MISSING_IDS_LISTED,
    LatencyHistogram,
    LatencySummary,
    ScorerReport,
    TimelineWindow,
)
from streamrec.stream.topics import Answer, ClickEvent, ClickType

MAX_WINDOWS = 20
MIN_CLICKS_PER_WINDOW = 50


def next_items(clicks: Sequence[LoggedClick]) -> list[str | None]:
    """targets[i] = the item of the next click in click i's session (None for its last click)."""
    targets: list[str | None] = [None] * len(clicks)
    last_index: dict[str, int] = {}
    for index, click in enumerate(clicks):
        previous = last_index.get(click.session_id)
        if previous is not None:
            targets[previous] = click.item_id
        last_index[click.session_id] = index
    return targets


class _ScorerTally:
    """One scorer's answers to one phase: latency and arrival per click, metrics overall and per window."""

    def __init__(self, name: str, size: int, windows: int) -> None:
        self.name = name
        self.latency_ms = np.full(size, np.nan)
        self.received_at = np.full(size, np.nan)
        self.duplicates = 0
        self.versions: dict[str, None] = {}
        """Distinct model versions in the order they first answered."""
        self.trained_on_later = 0
        self.first_version = self.last_version = ""
        self.overall = RankingMetrics()
        self.per_window = [RankingMetrics() for _ in range(windows)]

    @property
    def answered(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.received_at)))


class PhaseTally:
    """Sent clicks and their answers for one phase (warm-up or main) of a replay."""

    def __init__(self, id_prefix: str, clicks: Sequence[LoggedClick]) -> None:
        self.prefix = id_prefix
        self.clicks = clicks
        self.size = len(clicks)
        self.targets = next_items(clicks)
        self.sent_at = np.full(self.size, np.nan)
        self.windows = max(1, min(MAX_WINDOWS, self.size // MIN_CLICKS_PER_WINDOW))
        self.dead: set[int] = set()
        self.scorers: dict[str, _ScorerTally] = {}

    @property
    def dlq(self) -> int:
        return len(self.dead)

    def event(self, index: int, click: LoggedClick) -> ClickEvent:
        """The wire event for click `index`; the event id encodes the phase and the index."""
        return ClickEvent(event_id=f"{self.prefix}{index}", session_id=click.session_id, user_id=click.user_id,
                          item_id=click.item_id, ts=click.ts, type=ClickType(click.type))

    def mark_sent(self, index: int, at: float) -> None:
        self.sent_at[index] = at

    def index_of(self, event_id: str) -> int | None:
        """The click index an event id of this phase names, else None (another phase, other traffic)."""
        if not event_id.startswith(self.prefix):
            return None
        suffix = event_id[len(self.prefix):]
        if not suffix.isdigit() or int(suffix) >= self.size:
            return None
        return int(suffix)

    def window_of(self, index: int) -> int:
        return index * self.windows // max(self.size, 1)

    def on_recommendation(self, index: int, answer: Answer, received_at: float) -> None:
        """Record an answer; the first answer per click and scorer counts, later ones are duplicates."""
        tally = self.scorers.get(answer.scorer)
        if tally is None:
            tally = self.scorers[answer.scorer] = _ScorerTally(answer.scorer, self.size, self.windows)
        if not np.isnan(tally.received_at[index]):
            tally.duplicates += 1
            return
        tally.versions.setdefault(answer.model_version)
        tally.trained_on_later += answer.trained_on_later_click
        tally.first_version = tally.first_version or answer.model_version
        tally.last_version = answer.model_version
        tally.received_at[index] = received_at
        tally.latency_ms[index] = (received_at - self.sent_at[index]) * 1000.0
        target = self.targets[index]
        if target is not None:
            tally.overall.add(answer.item_ids, target, key=index, group=self.clicks[index].session_id)
            tally.per_window[self.window_of(index)].add(answer.item_ids, target)

    def on_dead_letter(self, index: int) -> None:
        self.dead.add(index)

    def scorer_names(self) -> list[str]:
        return sorted(self.scorers)

    def answered_by_all(self) -> int:
        """Clicks accounted for by the slowest scorer (answered or dead-lettered)."""
        if not self.scorers:
            return len(self.dead)
        return min(t.answered for t in self.scorers.values()) + len(self.dead)

    def complete(self, scorers: int = 1) -> bool:
        """At least `scorers` scorers were seen, and every one seen answered every click not dead-lettered."""
        if self.size == 0:
            return True
        return len(self.scorers) >= max(scorers, 1) and self.answered_by_all() >= self.size

    def _window_report(self, tally: _ScorerTally, window: int, bounds: tuple[int, int]) -> TimelineWindow:
        lo, hi = bounds
        latency = tally.latency_ms[lo:hi]
        latency = latency[~np.isnan(latency)]
        received = tally.received_at[lo:hi]
        answered = received[~np.isnan(received)]
        span = float(answered.max() - answered.min()) if answered.size > 1 else 0.0
        metrics = tally.per_window[window]
        return TimelineWindow(
            clicks_sent=hi, ts_event_end=self.clicks[hi - 1].ts, judged=metrics.count, metrics=metrics.summary(),
            latency_p50_ms=float(np.percentile(latency, 50)) if latency.size else None,
            latency_p99_ms=float(np.percentile(latency, 99)) if latency.size else None,
            throughput_eps=answered.size / span if span > 0 else None,
        )

    def _scorer_report(self, tally: _ScorerTally) -> ScorerReport:
        latencies = tally.latency_ms[~np.isnan(tally.latency_ms)]
        answered = tally.answered
        span = float(np.nanmax(tally.received_at) - np.nanmin(self.sent_at)) if answered else 0.0
        edges = [w * self.size // self.windows for w in range(self.windows + 1)]
        return ScorerReport(
            scorer=tally.name, first_model_version=tally.first_version, last_model_version=tally.last_version,
            model_versions_seen=len(tally.versions), model_versions=list(tally.versions),
            answers_trained_on_later_clicks=tally.trained_on_later, recommended=answered,
            duplicates=tally.duplicates, missing=self.size - answered - len(self.dead - self._answered_set(tally)),
            missing_event_ids=self.missing_event_ids(tally)[:MISSING_IDS_LISTED],
            judged=tally.overall.count, metrics=tally.overall.summary(),
            latency=LatencySummary.of(latencies), latency_histogram=LatencyHistogram.of(latencies),
            throughput_eps=answered / span if span > 0 else None,
            timeline=[self._window_report(tally, w, (edges[w], edges[w + 1])) for w in range(self.windows)
                      if edges[w + 1] > edges[w]],
        )

    def missing_event_ids(self, tally: _ScorerTally) -> list[str]:
        """Event ids of the clicks `tally`'s scorer neither answered nor saw dead-lettered, in send order."""
        unanswered = np.flatnonzero(np.isnan(tally.received_at)).tolist()
        return [f"{self.prefix}{index}" for index in unanswered if index not in self.dead]

    @staticmethod
    def _answered_set(tally: _ScorerTally) -> set[int]:
        return set(np.flatnonzero(~np.isnan(tally.received_at)).tolist())

    def scorer_reports(self) -> list[ScorerReport]:
        return [self._scorer_report(self.scorers[name]) for name in self.scorer_names()]

    def paired(self) -> list[PairedDifference]:
        """Every pair of scorers (in name order) on HR@20 and MRR@20, over the judged clicks both answered."""
        tallies = {name: self.scorers[name].overall for name in self.scorer_names()}
        return paired_differences(tallies)
