"""The dashboard's charts: one point every `api.history_interval_s`, the last `api.history_points` kept.

A sampler thread takes each point from three places: the API's own figures (`LiveStats.sample`:
rates, latency per scorer, HR/MRR per scorer), the API's consumer lag, and the Prometheus
/metrics of the deployment's workers named in `api.worker_metrics` (consumer lag per stage,
fallback share, the trainer's examples/s, loss and skipped examples). The history is columnar:
`t` (unix seconds) and one list per series, of the same length, None where a series had no value
(a series that starts later is padded at the front). Series names are `<chart>.<line>`.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from streamrec.config.settings import ApiSettings
from streamrec.stream.api.live import LiveStats

log = logging.getLogger("streamrec.api")

_SCRAPE_TIMEOUT_S = 1.5


class History:
    """Columnar time series with a common time axis."""

    def __init__(self, points: int) -> None:
        self._points = points
        self.t: deque[float] = deque(maxlen=points)
        self.series: dict[str, deque[float | None]] = {}
        self._lock = threading.Lock()

    def add(self, at: float, values: dict[str, float | None]) -> None:
        with self._lock:
            for name in values:
                if name not in self.series:
                    self.series[name] = deque([None] * len(self.t), maxlen=self._points)
            self.t.append(at)
            for name, column in self.series.items():
                column.append(values.get(name))

    def to_dict(self) -> dict[str, object]:
        with self._lock:
            return {"t": list(self.t), "series": {name: list(column) for name, column in sorted(self.series.items())}}


@dataclass
class WorkerFigures:
    """What one worker's /metrics says, as the dashboard shows it."""

    up: bool = False
    error: str | None = None
    lag_by_stage: dict[str, float] = field(default_factory=dict)
    recommendations_total: float | None = None
    fallback_total: float | None = None
    scorer: str | None = None
    model_version: str | None = None
    trainer_examples_total: float | None = None
    trainer_loss: float | None = None
    trainer_skipped: float | None = None
    trainer_steps_total: float | None = None
    trainer_versions_published: float | None = None
    swaps_total: float | None = None
    updates_refused_total: float | None = None


def parse_worker_metrics(text: str) -> WorkerFigures:
    """The figures the dashboard reads from one Prometheus exposition."""
    figures = WorkerFigures(up=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, value, labels = sample.name, sample.value, sample.labels
            if name == "streamrec_consumer_lag":
                stage = labels.get("stage", "?")
                figures.lag_by_stage[stage] = figures.lag_by_stage.get(stage, 0.0) + value
            elif name == "streamrec_trainer_lag_requests":
                figures.lag_by_stage["trainer"] = figures.lag_by_stage.get("trainer", 0.0) + value
            elif name == "streamrec_scorer_info":
                figures.scorer, figures.model_version = labels.get("scorer"), labels.get("model_version")
            else:
                attribute = _SCALARS.get(name)
                if attribute is not None:
                    setattr(figures, attribute, value)
    return figures


_SCALARS = {
    "streamrec_recommendations_emitted_total": "recommendations_total",
    "streamrec_fallback_answers_total": "fallback_total",
    "streamrec_trainer_examples_total": "trainer_examples_total",
    "streamrec_trainer_loss": "trainer_loss",
    "streamrec_trainer_examples_skipped": "trainer_skipped",
    "streamrec_trainer_steps_total": "trainer_steps_total",
    "streamrec_trainer_versions_published_total": "trainer_versions_published",
    "streamrec_model_swaps_total": "swaps_total",
    "streamrec_model_updates_refused_total": "updates_refused_total",
}


def scrape(url: str) -> WorkerFigures:
    """GET `url` and parse it; a worker that does not answer is `up=False` with the reason."""
    try:
        with urllib.request.urlopen(url, timeout=_SCRAPE_TIMEOUT_S) as response:  # noqa: S310 (configured URLs)
            return parse_worker_metrics(response.read().decode("utf-8", errors="replace"))
    except (OSError, ValueError) as exc:
        return WorkerFigures(up=False, error=f"{type(exc).__name__}: {exc}")


class Sampler:
    """Background thread adding one history point per interval; also keeps the workers' latest figures."""

    def __init__(self, settings: ApiSettings, stats: LiveStats, api_lag: Callable[[], dict[str, int]]) -> None:
        self.history = History(settings.history_points)
        self.workers: dict[str, WorkerFigures] = {name: WorkerFigures(error="not scraped yet")
                                                  for name in settings.worker_metrics}
        self._settings = settings
        self._stats = stats
        self._api_lag = api_lag
        self._previous: dict[str, tuple[float, float]] = {}
        """worker -> (monotonic time, trainer examples total) of its previous scrape."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard-history", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._settings.history_interval_s):
            try:
                self.sample_once()
            except Exception:  # a chart point lost is no reason to stop the charts
                log.exception("dashboard history: a sample failed")

    def sample_once(self) -> None:
        point = self._stats.sample()
        point["lag.api"] = float(sum(self._api_lag().values()))
        for name, url in self._settings.worker_metrics.items():
            figures = scrape(url)
            self.workers[name] = figures
            if not figures.up:
                continue
            for stage, lag in figures.lag_by_stage.items():
                point[f"lag.{name}/{stage}"] = lag
            if figures.recommendations_total:
                point[f"fallback.{name}"] = (figures.fallback_total or 0.0) / figures.recommendations_total
            if figures.trainer_examples_total is not None:
                now = time.monotonic()
                before = self._previous.get(name)
                if before is not None and now > before[0]:
                    trained = max(figures.trainer_examples_total - before[1], 0.0)
                    point["trainer.examples/s"] = trained / (now - before[0])
                self._previous[name] = (now, figures.trainer_examples_total)
                point["trainer.loss"] = figures.trainer_loss
                point["trainer.skipped"] = figures.trainer_skipped
        self.history.add(time.time(), point)

    def workers_dict(self) -> dict[str, dict[str, object]]:
        return {name: vars(figures) | {"url": self._settings.worker_metrics.get(name)}
                for name, figures in sorted(self.workers.items())}
