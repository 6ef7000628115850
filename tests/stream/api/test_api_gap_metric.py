"""`streamrec serve`'s /metrics registry exposes the offset gaps its feed counts (stage "api")."""

from prometheus_client import generate_latest

from streamrec.stream.api import metrics
from streamrec.stream.clients.gaps import OFFSET_GAPS, REFETCHED


def test_the_api_registry_serves_the_feeds_gap_counter() -> None:
    counted = OFFSET_GAPS.labels(stage="api", outcome=REFETCHED)
    before = counted._value.get()  # prometheus_client internals: the counter's current value
    counted.inc()
    exposed = generate_latest(metrics.REGISTRY).decode()
    assert f'streamrec_offset_gaps_total{{outcome="{REFETCHED}",stage="api"}} {before + 1}' in exposed
