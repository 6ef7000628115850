"""Prometheus metrics of the hot swap (scoring stages following model-updates)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

UPDATES_SEEN = Counter("streamrec_model_updates_seen_total", "Model-update announcements read.")
UPDATES_REFUSED = Counter(
    "streamrec_model_updates_refused_total", "Announced versions refused (the previous one keeps serving), by reason.",
    ["reason"],
)
SWAPS = Counter("streamrec_model_swaps_total", "Versions installed between two batches.")
SERVING_SEQUENCE = Gauge("streamrec_model_serving_sequence",
                         "Store sequence number of the version serving (0: the configured checkpoint).")
SWAP_DELAY = Histogram(
    "streamrec_model_swap_delay_seconds", "Announcement -> version serving (load, verify, prequential guard).",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
GUARD_WAITS = Counter("streamrec_model_swap_guard_waits_total",
                      "Batches a verified version waited for the prequential guard.")
