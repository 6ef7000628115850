"""Prometheus metrics of the trainer role."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS_READ = Counter("streamrec_trainer_requests_read_total", "Scoring requests the trainer read.")
REQUESTS_INVALID = Counter(
    "streamrec_trainer_requests_invalid_total", "Requests that do not decode (the scoring stage dead-letters them)."
)
REQUESTS_DUPLICATE = Counter("streamrec_trainer_requests_duplicate_total",
                             "Redelivered requests (event_id seen), not learned twice.")
EXAMPLES_ADDED = Counter("streamrec_trainer_examples_total",
                         "Examples handed to the learner (clicks with their prefix).")
EXAMPLES_SKIPPED = Gauge(
    "streamrec_trainer_examples_skipped", "Examples that skipped the gradient step because training was behind (since "
    "start of the lineage)."
)
STEPS = Counter("streamrec_trainer_steps_total", "Fine-tune steps.")
LOSS = Gauge("streamrec_trainer_loss", "Loss of the last fine-tune step.")
LAG = Gauge("streamrec_trainer_lag_requests", "Scoring requests written but not read by the trainer, per partition.",
            ["partition"])
PUBLISHED = Counter("streamrec_trainer_versions_published_total", "Versions written to the store and announced.")
PUBLISH_SECONDS = Histogram(
    "streamrec_trainer_publish_seconds", "Snapshot + atomic write + announcement of one version.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
