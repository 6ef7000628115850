"""The dashboard's history, version timeline and worker figures, on real objects (no broker needed)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from streamrec.config.settings import ApiSettings
from streamrec.stream.api.history import History, Sampler, parse_worker_metrics, scrape
from streamrec.stream.api.live import LiveStats
from streamrec.stream.api.versions import VersionTimeline
from streamrec.stream.topics import ModelUpdate


def _update(sequence: int, version: str, at: float) -> ModelUpdate:
    return ModelUpdate(model="default", sequence=sequence, version=version, path=f"/store/v{sequence}.ckpt",
                       sha256="0" * 64, trained_through={0: 10 * sequence}, last_click_ts=None,
                       examples_trained=100 * sequence, steps=sequence, published_at=at)


def test_history_pads_a_series_that_starts_later_and_keeps_the_last_points() -> None:
    history = History(points=3)
    history.add(1.0, {"rate.clicks/s": 5.0})
    history.add(2.0, {"rate.clicks/s": 6.0, "hr.sknn": 0.5})
    history.add(3.0, {"hr.sknn": 0.6})
    history.add(4.0, {"rate.clicks/s": 7.0, "hr.sknn": 0.7})
    assert history.to_dict() == {"t": [2.0, 3.0, 4.0],
                                 "series": {"hr.sknn": [0.5, 0.6, 0.7], "rate.clicks/s": [6.0, None, 7.0]}}


def test_swaps_are_the_announced_versions_a_scorer_moved_to_and_the_knn_has_none() -> None:
    timeline = VersionTimeline()
    timeline.on_answer("default+online", "v0", 100.0)
    timeline.on_answer("default", "v0", 100.5)
    for click in range(5):  # the kNN's stamp moves with every click it learns: no model versions
        timeline.on_answer("sknn", f"sknn-c{click}", 100.0 + click)
    timeline.on_update(_update(1, "v1", 110.0))
    timeline.on_answer("default+online", "v1", 110.4)
    timeline.on_update(_update(2, "v2", 120.0))
    timeline.on_answer("default+online", "v2", 121.0)
    timeline.on_answer("default+online", "v1", 109.9)  # an earlier answer read late moves the first-answer time back

    swaps = timeline.swaps()
    assert [(s["scorer"], s["from_version"], s["version"], s["sequence"]) for s in swaps] == [
        ("default+online", "v0", "v1", 1), ("default+online", "v1", "v2", 2)]
    assert swaps[1]["delay_s"] == 1.0 and swaps[0]["delay_s"] == 0.0
    serving = timeline.snapshot(now=130.0)["serving"]
    assert serving["default+online"] == {"version": "v2", "serving_since": 121.0, "sequence": 2, "age_s": 10.0,
                                         "versions_served": 3}
    assert serving["default"]["versions_served"] == 1 and serving["sknn"]["versions_served"] is None


def _worker_exposition() -> bytes:
    registry = CollectorRegistry()
    Counter("streamrec_recommendations_emitted_total", "", registry=registry).inc(200)
    Counter("streamrec_fallback_answers_total", "", registry=registry).inc(5)
    Counter("streamrec_trainer_examples_total", "", registry=registry).inc(1234)
    Gauge("streamrec_trainer_loss", "", registry=registry).set(2.5)
    Gauge("streamrec_trainer_examples_skipped", "", registry=registry).set(7)
    lag = Gauge("streamrec_consumer_lag", "", ["stage", "topic", "partition"], registry=registry)
    lag.labels("scoring", "requests", "0").set(3)
    lag.labels("scoring", "requests", "1").set(4)
    lag.labels("stateful", "clicks", "0").set(10)
    return generate_latest(registry)


def test_worker_metrics_are_read_over_http_into_lag_per_stage_fallback_and_trainer_figures() -> None:
    body = _worker_exposition()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        figures = scrape(url)
        assert figures.up and figures.lag_by_stage == {"scoring": 7.0, "stateful": 10.0}
        assert (figures.recommendations_total, figures.fallback_total) == (200.0, 5.0)
        assert (figures.trainer_examples_total, figures.trainer_loss, figures.trainer_skipped) == (1234.0, 2.5, 7.0)

        sampler = Sampler(ApiSettings(worker_metrics={"w": url, "gone": "http://127.0.0.1:9/metrics"}),
                          LiveStats(ApiSettings()), lambda: {"recommendations": 2})
        sampler.sample_once()
        sampler.sample_once()
    finally:
        server.shutdown()
    series = sampler.history.to_dict()["series"]
    assert series["lag.w/scoring"] == [7.0, 7.0] and series["lag.api"] == [2.0, 2.0]
    assert series["fallback.w"] == [0.025, 0.025]
    assert series["trainer.examples/s"] == [None, 0.0] and series["trainer.loss"] == [2.5, 2.5]
    workers = sampler.workers_dict()
    assert workers["gone"]["up"] is False and workers["gone"]["error"]
    assert parse_worker_metrics("").up
