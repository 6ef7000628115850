"""Prometheus metrics of `streamrec serve`; the names are a stable interface (docker/grafana dashboards).

Counters and histograms are updated where things happen; the windowed figures (hit rate,
lag, serving model) are read from `LiveStats` and the feed at scrape time by `LiveCollector`.
The API keeps its own registry: it never shares a process with a worker stage. The one shared
counter it serves is `streamrec_offset_gaps_total` (stream/clients/gaps.py), which its feed
counts under stage "api".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from streamrec.stream.api.live import LiveStats
from streamrec.stream.clients.gaps import OFFSET_GAPS

REGISTRY = CollectorRegistry()
REGISTRY.register(OFFSET_GAPS)  # the feed's gaps: the counter lives in the workers' default registry too

HTTP_REQUESTS = Counter(
    "streamrec_api_http_requests_total", "HTTP requests answered, by route template and status.", ["route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "streamrec_api_http_request_seconds", "Time to answer one HTTP request, by route template.", ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0), registry=REGISTRY,
)
CLICKS_POSTED = Counter("streamrec_api_clicks_posted_total", "Clicks POSTed and acknowledged by the broker.",
                        registry=REGISTRY)
CLICKS_REFUSED = Counter(
    "streamrec_api_clicks_refused_total", "POSTed clicks refused with 422, by validation reason.", ["reason"],
    registry=REGISTRY,
)
CLICKS_SEEN = Counter("streamrec_api_clicks_seen_total", "Valid clicks read from the clicks topic.", registry=REGISTRY)
ANSWERS_SEEN = Counter(
    "streamrec_api_recommendations_seen_total", "Recommendations read from the topic, by scorer.", ["scorer"],
    registry=REGISTRY,
)
ANSWERS_INVALID = Counter(
    "streamrec_api_recommendations_invalid_total", "Records on the recommendations topic that did not decode (skipped, "
    "logged).",
    registry=REGISTRY,
)
DEAD_LETTERS_SEEN = Counter(
    "streamrec_api_dead_letters_seen_total", "Dead letters read from clicks.dlq, by reason.", ["reason"],
    registry=REGISTRY,
)
JUDGED = Counter(
    "streamrec_api_prequential_judged_total", "Clicks judged against the scorer's standing answer, by scorer and "
    "outcome.",
    ["scorer", "hit"], registry=REGISTRY,
)
END_TO_END = Histogram(
    "streamrec_api_end_to_end_seconds", "From a click's produce timestamp to this API reading its answer.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), registry=REGISTRY,
)


class LiveCollector(Collector):
    """Windowed hit rate per scorer, consumer lag per topic, the serving model versions: read at scrape time."""

    def __init__(self, stats: LiveStats, lag: Callable[[], dict[str, int]]) -> None:
        self._stats = stats
        self._lag = lag

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        hit_rate = GaugeMetricFamily(
            "streamrec_api_hit_rate", "Prequential HR@k over the last api.hit_rate_window judged clicks, by scorer.",
            labels=["scorer"],
        )
        for scorer, (value, _) in self._stats.hit_rates().items():
            if value is not None:
                hit_rate.add_metric([scorer], value)
        yield hit_rate
        lag = GaugeMetricFamily("streamrec_api_consumer_lag", "Records not yet read by this API, by topic.",
                                labels=["topic"])
        for topic, value in sorted(self._lag().items()):
            lag.add_metric([topic], value)
        yield lag
        model = InfoMetricFamily("streamrec_api_model", "The model version of each scorer's latest answer.",
                                 labels=["scorer"])
        for scorer, version in sorted(self._stats.model_versions.items()):
            model.add_metric([scorer], {"model_version": version})
        yield model
