"""Prometheus metrics of both stages; these names are a stable interface (dashboards, other modules).

Each process keeps its own registry; `streamrec worker` serves every stage's metrics on the one
`metrics_port` (with `--role all` the parent merges in its stateful child's, see
stream/observability/exposition.py). docs/operations.md lists them all.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, Info

# --- stateful stage -------------------------------------------------------------------
CLICKS_ACCEPTED = Counter("streamrec_clicks_accepted_total", "Valid clicks folded into state.")
CLICKS_DEAD_LETTERED = Counter(
    "streamrec_clicks_dead_lettered_total", "Malformed clicks sent to the DLQ, by reason.", ["reason"]
)
CLICKS_DUPLICATE = Counter(
    "streamrec_clicks_duplicate_total", "Redelivered clicks (event_id already in the session); state unchanged."
)
SESSIONS_CLOSED = Counter("streamrec_sessions_closed_total",
                          "Sessions closed by inactivity or by the open-session cap.")
SCORING_REQUESTS_EMITTED = Counter(
    "streamrec_scoring_requests_emitted_total", "Scoring requests the stateful stage produced."
)
HEAP_TRIMS = Counter("streamrec_heap_trims_total", "malloc_trim(0) calls: free heap pages handed back to the OS.")
HEAP_TRIM_SECONDS = Counter("streamrec_heap_trim_seconds_total", "Wall time spent in malloc_trim(0).")

# --- scoring stage --------------------------------------------------------------------
RECOMMENDATIONS_EMITTED = Counter("streamrec_recommendations_emitted_total", "Recommendations produced.")
SCORING_BATCH_SIZE = Histogram(
    "streamrec_scoring_batch_size", "Scoring requests per model call.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
SCORING_BATCH_LATENCY = Histogram(
    "streamrec_scoring_batch_seconds",
    "Wall time of one model call.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
CLICK_TO_RECOMMENDATION = Histogram(
    "streamrec_click_to_recommendation_seconds",
    "Click record's Kafka timestamp (its produce time) -> its recommendation produced, wall clock.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
FALLBACK_ANSWERS = Counter(
    "streamrec_fallback_answers_total", "Recommendations the fallback (popularity) scorer made because the scorer "
    "raised."
)
SCORER_INFO = Info("streamrec_scorer", "The scorer this scoring stage serves: name, model version, device.")
CLICKS_NOT_RELEARNED = Counter(
    "streamrec_scoring_clicks_not_relearned_total", "Re-read or re-emitted scoring requests answered but not learned "
    "again."
)
CLICKS_RELEARNED_AT_START = Counter(
    "streamrec_scoring_clicks_relearned_at_start_total", "Scoring requests learned at start to catch the statistics up."
)
SCORER_ERRORS = Counter("streamrec_scorer_errors_total",
                        "Model calls that raised (their requests are retried or dead-lettered).")
