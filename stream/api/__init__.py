"""`streamrec serve`: HTTP lookups of the latest recommendations, click intake, health, metrics, live dashboard.

Parts: `store` (local RocksDB of the latest answers), `feed` (the consumer thread filling it),
`live` (windowed figures and the online prequential hit rate), `clicks` (POST /clicks),
`metrics` (Prometheus), `app` (the FastAPI app), `static/` (the dashboard page).
"""

from __future__ import annotations

import logging
import sys

from streamrec.config import load_settings

_GIL_SWITCH_S = 0.0005
"""The consumer thread runs Python per record; at the default 5 ms switch interval every request
the event loop answers meanwhile waits up to 5 ms for the GIL (the convoy effect)."""


def serve(host: str | None = None, port: int | None = None) -> None:
    """Run one API instance until SIGTERM/Ctrl-C (settings from STREAMREC_*; host/port override `api.*`)."""
    import uvicorn
    from confluent_kafka import KafkaException

    from streamrec.stream.admin import ensure_topics
    from streamrec.stream.api.app import create_app
    from streamrec.stream.stages.state_identity import StaleStateError, check_local_state

    settings = load_settings()
    host = host or settings.api.host
    port = settings.api.port if port is None else port
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        ensure_topics(settings)
    except KafkaException as exc:
        raise SystemExit(f"cannot reach Kafka at {settings.kafka.bootstrap_servers} ({exc.args[0].str()}): start the "
                         "broker or point STREAMREC_KAFKA__BOOTSTRAP_SERVERS at it") from None
    try:  # the store beside the workers' (state.dir/api-<port>) caches this cluster's recommendations topic
        check_local_state(settings)
    except StaleStateError as exc:
        raise SystemExit(f"streamrec serve: {exc}") from None
    sys.setswitchinterval(_GIL_SWITCH_S)
    try:
        app = create_app(settings, port)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from exc
    logging.getLogger("streamrec.api").info("listening on http://%s:%d (dashboard /dashboard, API docs /docs)",
                                            host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
