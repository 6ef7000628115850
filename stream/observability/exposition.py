"""One /metrics endpoint per worker process tree.

`streamrec worker --role all` runs the stateful stage in a child process (its own Python, its
own prometheus registry). The child serves its registry on a loopback port only the parent
knows; the parent's endpoint on `metrics_port` answers every scrape with its own samples plus
the child's `streamrec_*` samples, summed where both count the same series (dead letters are
counted by both stages). Chosen over prometheus_client's multiprocess mode, which needs an
environment variable set before any import, a shared directory to clean, and supports no
Info metrics or live gauges; here a child that died simply contributes nothing, counted in
`streamrec_metrics_child_scrape_errors_total`.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)

_CHILD_PREFIX = "streamrec_"
"""Only the stages' own metrics are taken from a child; process_*/python_* describe the parent."""
_SCRAPE_TIMEOUT_S = 2.0

CHILD_SCRAPE_ERRORS = Counter(
    "streamrec_metrics_child_scrape_errors_total", "Scrapes of a stage child's metrics that failed (the child is down)."
)


def _merge(families: Iterable[Metric], into: dict[str, Metric],
           sums: dict[tuple[str, str, tuple[tuple[str, str], ...]], int]) -> None:
    for family in families:
        merged = into.get(family.name)
        if merged is None:
            merged = into[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue  # per-process creation times cannot be summed
            if sample.name.endswith("_info") and not sample.labels:
                continue  # an Info this process never set (the child imports the scoring stage's metrics too)
            key = (family.name, sample.name, tuple(sorted(sample.labels.items())))
            index = sums.get(key)
            if index is None:
                sums[key] = len(merged.samples)
                merged.samples.append(sample)
            else:
                old = merged.samples[index]
                merged.samples[index] = old._replace(value=old.value + sample.value)


class MergedRegistry:
    """A collector registry view: `local` plus the `streamrec_*` families of child endpoints."""

    def __init__(self, children: Sequence[str], local: CollectorRegistry = REGISTRY) -> None:
        self._children = list(children)
        self._local = local

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        sums: dict[tuple[str, str, tuple[tuple[str, str], ...]], int] = {}
        _merge(self._local.collect(), families, sums)
        for url in self._children:
            try:
                with urllib.request.urlopen(url, timeout=_SCRAPE_TIMEOUT_S) as response:  # noqa: S310 (child processes' URLs)
                    text = response.read().decode("utf-8")
            except OSError as exc:
                CHILD_SCRAPE_ERRORS.inc()
                log.debug("child metrics at %s unavailable: %s", url, exc)
                continue
            child = (f for f in text_string_to_metric_families(text) if f.name.startswith(_CHILD_PREFIX))
            _merge(child, families, sums)
        yield from families.values()


def serve_metrics(port: int, children: Sequence[str] = ()) -> None:
    """Serve /metrics on `port` (0: off): this process's registry plus the children's stage metrics."""
    if port:
        start_http_server(port, registry=MergedRegistry(children) if children else REGISTRY)


def serve_child_metrics(port: int) -> None:
    """Serve this (child) process's registry on loopback `port` for the parent to merge (0: off)."""
    if port:
        start_http_server(port, addr="127.0.0.1")
