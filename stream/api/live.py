"""Live figures of the stream as the API sees it: rates, latency, dead letters, prequential HR@k per scorer.

The API reads `clicks`, `recommendations` and `clicks.dlq`, so it can judge every scorer
online with the replay's protocol (stream/harness/prequential.py): a scorer's answer to a click is
a hit when the session's next click is among its top k. Clicks and answers travel on
different topics, so either may be read first: an answer waits for its click's successor,
or, read after it, is judged at once by the session's remembered clicks. Each answer is
judged once (redeliveries are not judged again).

Latency is what a web app calling this API waits for: from the click's Kafka timestamp
(set by its producer) to the moment this process read the answer to it. Producer and API
clocks must agree (NTP) for it to mean anything across hosts.

All figures cover a sliding window (`api.stats_window_s`; `api.hit_rate_window` judged
clicks for HR@k and MRR@k); one lock guards them (the consumer thread writes, HTTP and the
history sampler read). `sample()` gives the figures of the time since the previous sample, one
point of the dashboard's charts (stream/api/history.py).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np

from streamrec.config.settings import ApiSettings
from streamrec.stream.api.store import StoredAnswer
from streamrec.stream.api.versions import VersionTimeline
from streamrec.stream.topics import ModelUpdate

_TRACKED_SESSIONS = 200_000
"""Sessions whose last answers are remembered for judging (least recently active forgotten first)."""
_TRACKED_CLICKS = 200_000
"""Click produce times remembered to measure the latency of their answers."""
_RECENT_CLICKS = 8
"""Clicks remembered per session to judge answers that arrive after the session's next click."""
_LATENCY_SAMPLES = 100_000
"""Latency samples kept per window at most (the quantiles then cover the latest ones)."""


class RateWindow:
    """Events per second over the last `window_s` seconds, in one-second buckets."""

    def __init__(self, window_s: float) -> None:
        self._buckets: deque[list[float]] = deque()
        self._window_s = window_s
        self._started = time.monotonic()
        self.total = 0

    def add(self, count: int = 1, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        second = float(int(now))
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += count
        else:
            self._buckets.append([second, float(count)])
        self.total += count
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] < now - self._window_s:
            self._buckets.popleft()

    def per_s(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self._trim(now)
        span = min(self._window_s, max(now - self._started, 1.0))
        return sum(count for _, count in self._buckets) / span


@dataclass
class _Session:
    """One session as the judge sees it: its latest clicks, and answers whose next click has not come yet."""

    clicks: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=_RECENT_CLICKS))
    """(event_id, item_id) in arrival order."""
    waiting: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    """(scorer, event_id) -> the answer's top items."""
    judged: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=4 * _RECENT_CLICKS))
    """(scorer, event_id) already judged: a redelivered answer is not judged twice."""


class LiveStats:
    """What the dashboard and /metrics show, updated by the consumer thread."""

    def __init__(self, settings: ApiSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._started_wall_s = time.time()
        self.clicks = RateWindow(settings.stats_window_s)
        self.answers = RateWindow(settings.stats_window_s)
        self.dead_letters = RateWindow(settings.stats_window_s)
        self.dead_letters_by_reason: dict[str, int] = {}
        self.model_versions: dict[str, str] = {}
        self.versions = VersionTimeline()
        self._latency: deque[tuple[float, float, str]] = deque(maxlen=_LATENCY_SAMPLES)
        """(monotonic time read, latency s, scorer)."""
        self._sampled_at = time.monotonic()
        self._sampled_totals = (0, 0)
        self._click_sent_at: OrderedDict[str, float] = OrderedDict()
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._hits: dict[str, deque[bool]] = {}
        self._reciprocal_ranks: dict[str, deque[float]] = {}

    def _session(self, session_id: str) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = _Session()
            if len(self._sessions) > _TRACKED_SESSIONS:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(session_id)
        return session

    def _judge(self, session: _Session, scorer: str, event_id: str, items: tuple[str, ...],
               next_item: str) -> tuple[str, bool]:
        session.judged.append((scorer, event_id))
        hit = next_item in items
        self._hits.setdefault(scorer, deque(maxlen=self._settings.hit_rate_window)).append(hit)
        rank = items.index(next_item) + 1 if hit else None
        ranks = self._reciprocal_ranks.setdefault(scorer, deque(maxlen=self._settings.hit_rate_window))
        ranks.append(1.0 / rank if rank else 0.0)
        return scorer, hit

    def on_click(self, event_id: str, session_id: str, item_id: str,
                 produced_at_s: float | None) -> list[tuple[str, bool]]:
        """Count a valid click; it judges every answer to the session's previous click. Returns (scorer, hit)."""
        judged: list[tuple[str, bool]] = []
        with self._lock:
            self.clicks.add()
            if produced_at_s is not None:
                self._click_sent_at[event_id] = produced_at_s
                if len(self._click_sent_at) > _TRACKED_CLICKS:
                    self._click_sent_at.popitem(last=False)
            session = self._session(session_id)
            if any(seen == event_id for seen, _ in session.clicks):
                return judged  # a redelivered click
            previous = session.clicks[-1][0] if session.clicks else None
            session.clicks.append((event_id, item_id))
            for scorer, answered in [key for key in session.waiting if key[1] == previous]:
                judged.append(self._judge(session, scorer, answered, session.waiting.pop((scorer, answered)), item_id))
        return judged

    def on_answer(self, answer: StoredAnswer, read_at_s: float) -> float | None:
        """Count an answer and judge it (now if its click's successor was seen, else when it comes).

        Returns its latency in seconds when its click was seen. Answers emitted before this
        process started (a new store catching up on the topic) are counted but not judged."""
        with self._lock:
            self.answers.add()
            self.model_versions[answer.scorer] = answer.model_version
            self.versions.on_answer(answer.scorer, answer.model_version, answer.ts_emitted)
            if answer.ts_emitted >= self._started_wall_s:
                self._file_for_judging(answer)
            sent = self._click_sent_at.get(answer.event_id)
            if sent is None:
                return None
            latency = max(read_at_s - sent, 0.0)
            self._latency.append((time.monotonic(), latency, answer.scorer))
            return latency

    def _file_for_judging(self, answer: StoredAnswer) -> None:
        session = self._session(answer.session_id)
        key = (answer.scorer, answer.event_id)
        if key in session.judged or key in session.waiting:
            return
        items = answer.item_ids[: self._settings.hit_rate_k]
        clicks = [event for event, _ in session.clicks]
        if answer.event_id in clicks[:-1]:  # answered after the session's next click: judge by that click
            next_item = session.clicks[clicks.index(answer.event_id) + 1][1]
            self._judge(session, answer.scorer, answer.event_id, items, next_item)
            return
        session.waiting[key] = items
        if len(session.waiting) > 4 * _RECENT_CLICKS:
            session.waiting.pop(next(iter(session.waiting)))

    def on_model_update(self, update: ModelUpdate) -> None:
        with self._lock:
            self.versions.on_update(update)

    def on_dead_letter(self, reason: str) -> None:
        with self._lock:
            self.dead_letters.add()
            self.dead_letters_by_reason[reason] = self.dead_letters_by_reason.get(reason, 0) + 1

    def hit_rates(self) -> dict[str, tuple[float | None, int]]:
        """(HR@k over the window, judged clicks in it) per scorer."""
        with self._lock:
            return {s: ((sum(h) / len(h)) if h else None, len(h)) for s, h in sorted(self._hits.items())}

    def mean_reciprocal_ranks(self) -> dict[str, float | None]:
        """MRR@k over the same window as `hit_rates`, per scorer."""
        with self._lock:
            return {s: (sum(r) / len(r)) if r else None for s, r in sorted(self._reciprocal_ranks.items())}

    def _latency_quantiles(self, since: float) -> dict[str, dict[str, float | int | None]]:
        """p50/p99 (ms) and sample count per scorer of the answers read since `since` (monotonic); lock held."""
        by_scorer: dict[str, list[float]] = {}
        for at, value, scorer in reversed(self._latency):
            if at < since:
                break
            by_scorer.setdefault(scorer, []).append(value * 1000.0)
        result: dict[str, dict[str, float | int | None]] = {}
        for scorer, values in sorted(by_scorer.items()):
            p50, p99 = np.percentile(values, [50, 99])
            result[scorer] = {"p50_ms": float(p50), "p99_ms": float(p99), "samples": len(values)}
        return result

    def sample(self) -> dict[str, float | None]:
        """One chart point: clicks/s and answers/s since the previous sample, latency per scorer over it, HR/MRR
        windows."""
        now = time.monotonic()
        with self._lock:
            span = max(now - self._sampled_at, 1e-3)
            clicks, answers = self.clicks.total, self.answers.total
            point: dict[str, float | None] = {
                "rate.clicks/s": (clicks - self._sampled_totals[0]) / span,
                "rate.recommendations/s": (answers - self._sampled_totals[1]) / span,
            }
            for scorer, figures in self._latency_quantiles(self._sampled_at).items():
                point[f"p50.{scorer}"] = figures["p50_ms"]
                point[f"p99.{scorer}"] = figures["p99_ms"]
            self._sampled_at, self._sampled_totals = now, (clicks, answers)
        for scorer, (hr, _) in self.hit_rates().items():
            point[f"hr.{scorer}"] = hr
        for scorer, mrr in self.mean_reciprocal_ranks().items():
            point[f"mrr.{scorer}"] = mrr
        return point

    def snapshot(self) -> dict[str, object]:
        """The dashboard's figures (JSON-ready)."""
        now = time.monotonic()
        with self._lock:
            while self._latency and self._latency[0][0] < now - self._settings.stats_window_s:
                self._latency.popleft()
            latencies = np.array([value for _, value, _ in self._latency]) * 1000.0
            figures: dict[str, object] = {
                "window_s": self._settings.stats_window_s,
                "clicks_per_s": self.clicks.per_s(now),
                "recommendations_per_s": self.answers.per_s(now),
                "dead_letters_per_s": self.dead_letters.per_s(now),
                "clicks_total": self.clicks.total,
                "recommendations_total": self.answers.total,
                "dead_letters_total": self.dead_letters.total,
                "dead_letters_by_reason": dict(sorted(self.dead_letters_by_reason.items())),
                "latency_p50_ms": float(np.percentile(latencies, 50)) if latencies.size else None,
                "latency_p99_ms": float(np.percentile(latencies, 99)) if latencies.size else None,
                "latency_samples": int(latencies.size),
                "model_versions": dict(sorted(self.model_versions.items())),
                "latency_by_scorer": self._latency_quantiles(now - self._settings.stats_window_s),
                **self.versions.snapshot(time.time()),
            }
        hit_rates, mrr = self.hit_rates(), self.mean_reciprocal_ranks()
        figures["hit_rate_k"] = self._settings.hit_rate_k
        figures["hit_rate_window"] = self._settings.hit_rate_window
        figures["hit_rate"] = {s: {"hr": hr, "mrr": mrr.get(s), "judged": n} for s, (hr, n) in hit_rates.items()}
        return figures
