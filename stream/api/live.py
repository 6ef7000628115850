"""Live figures of the stream as the API sees it: rates, latency, dead letters, prequential HR@k per scorer.

The API reads `clicks`, `recommendations` and `clicks.dlq`, so it can judge every scorer
online, prequentially: a session's next click is a hit for a scorer when it is among the
top k of that scorer's latest answer for the session (given before the click). An answer
is judged once, by the first click after it. Clicks and answers travel on different topics,
so an answer can be read before the click that triggered it; the answer to the click being
judged is therefore never used to judge it (the one before it is).

Latency is what a web app calling this API waits for: from the click's Kafka timestamp
(set by its producer) to the moment this process read the answer to it. Producer and API
clocks must agree (NTP) for it to mean anything across hosts.

All figures cover a sliding window (`api.stats_window_s`; `api.hit_rate_window` judged
clicks for the hit rate); one lock guards them (the consumer thread writes, HTTP reads).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np

from streamrec.config.settings import ApiSettings
from streamrec.stream.api.store import StoredAnswer

_TRACKED_SESSIONS = 200_000
"""Sessions whose last answers are remembered for judging (least recently active forgotten first)."""
_TRACKED_CLICKS = 200_000
"""Click produce times remembered to measure the latency of their answers."""
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
class _SessionAnswers:
    """A scorer's last two answers for one session (the last may answer the click about to be judged)."""

    last: StoredAnswer
    previous: StoredAnswer | None = None
    judged_event: str | None = None


class LiveStats:
    """What the dashboard and /metrics show, updated by the consumer thread."""

    def __init__(self, settings: ApiSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self.clicks = RateWindow(settings.stats_window_s)
        self.answers = RateWindow(settings.stats_window_s)
        self.dead_letters = RateWindow(settings.stats_window_s)
        self.dead_letters_by_reason: dict[str, int] = {}
        self.model_versions: dict[str, str] = {}
        self._latency: deque[tuple[float, float]] = deque(maxlen=_LATENCY_SAMPLES)
        self._click_sent_at: OrderedDict[str, float] = OrderedDict()
        self._sessions: OrderedDict[tuple[str, str], _SessionAnswers] = OrderedDict()
        self._by_session: dict[str, set[tuple[str, str]]] = {}
        self._hits: dict[str, deque[bool]] = {}

    def on_click(self, event_id: str, session_id: str, item_id: str, produced_at_s: float | None) -> list[tuple[str, bool]]:
        """Count a valid click, judge every scorer's standing answer for its session; returns (scorer, hit)."""
        judged: list[tuple[str, bool]] = []
        with self._lock:
            self.clicks.add()
            if produced_at_s is not None:
                self._click_sent_at[event_id] = produced_at_s
                if len(self._click_sent_at) > _TRACKED_CLICKS:
                    self._click_sent_at.popitem(last=False)
            for (session, scorer), answers in self._scorers_of(session_id):
                answer = answers.last if answers.last.event_id != event_id else answers.previous
                if answer is None or answers.judged_event == answer.event_id:
                    continue
                answers.judged_event = answer.event_id
                hit = item_id in answer.item_ids[: self._settings.hit_rate_k]
                self._hits.setdefault(scorer, deque(maxlen=self._settings.hit_rate_window)).append(hit)
                judged.append((scorer, hit))
        return judged

    def _scorers_of(self, session_id: str) -> list[tuple[tuple[str, str], _SessionAnswers]]:
        return [(key, self._sessions[key]) for key in self._by_session.get(session_id, ())]

    def on_answer(self, answer: StoredAnswer, read_at_s: float) -> float | None:
        """Count an answer, keep it for judging; returns its latency in seconds when its click was seen."""
        with self._lock:
            self.answers.add()
            self.model_versions[answer.scorer] = answer.model_version
            key = (answer.session_id, answer.scorer)
            held = self._sessions.get(key)
            if held is None:
                self._sessions[key] = _SessionAnswers(answer)
                self._by_session.setdefault(answer.session_id, set()).add(key)
                if len(self._sessions) > _TRACKED_SESSIONS:
                    (old_session, old_scorer), _ = self._sessions.popitem(last=False)
                    keys = self._by_session.get(old_session, set())
                    keys.discard((old_session, old_scorer))
                    if not keys:
                        self._by_session.pop(old_session, None)
            elif answer.event_id != held.last.event_id and answer.order >= held.last.order:
                held.previous, held.last = held.last, answer
                self._sessions.move_to_end(key)
            sent = self._click_sent_at.get(answer.event_id)
            if sent is None:
                return None
            latency = max(read_at_s - sent, 0.0)
            self._latency.append((time.monotonic(), latency))
            return latency

    def on_dead_letter(self, reason: str) -> None:
        with self._lock:
            self.dead_letters.add()
            self.dead_letters_by_reason[reason] = self.dead_letters_by_reason.get(reason, 0) + 1

    def hit_rates(self) -> dict[str, tuple[float | None, int]]:
        """(HR@k over the window, judged clicks in it) per scorer."""
        with self._lock:
            return {s: ((sum(h) / len(h)) if h else None, len(h)) for s, h in sorted(self._hits.items())}

    def snapshot(self) -> dict[str, object]:
        """The dashboard's figures (JSON-ready)."""
        now = time.monotonic()
        with self._lock:
            while self._latency and self._latency[0][0] < now - self._settings.stats_window_s:
                self._latency.popleft()
            latencies = np.array([value for _, value in self._latency]) * 1000.0
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
            }
        hit_rates = self.hit_rates()
        figures["hit_rate_k"] = self._settings.hit_rate_k
        figures["hit_rate"] = {s: {"hr": hr, "judged": n} for s, (hr, n) in hit_rates.items()}
        return figures
