"""`streamrec serve`: the HTTP face of a deployment (FastAPI on uvicorn).

Routes: the latest recommendations per session and per user (from the local store the
feed keeps), POST /clicks (validated, then produced; behind `api.write_api_key` when it is set,
CORS for `api.cors_allow_origins`: stream/api/security.py), /healthz, /metrics (Prometheus),
/stats and /dashboard (live figures and their history), /docs (the OpenAPI description, rendered
by a page served from the package: nothing is loaded from the internet). One process = one full replica:
run more behind a load balancer to serve more lookups (see docs/webapp.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamrec.config import Settings
from streamrec.stream.api import metrics
from streamrec.stream.api.clicks import ClickSink
from streamrec.stream.api.feed import ApiFeed
from streamrec.stream.api.history import Sampler
from streamrec.stream.api.live import LiveStats
from streamrec.stream.api.security import add_cors, write_guard
from streamrec.stream.api.store import RecommendationStore
from streamrec.stream.topics import ClickEvent, Recommendation
from streamrec.stream.validate import Rejection

log = logging.getLogger("streamrec.api")

BROKER_STALE_S = 15.0
"""/healthz calls the broker unreachable when no broker call succeeded for this long."""


def store_path(settings: Settings, port: int) -> Path:
    """Where the instance on `port` keeps its store: a restart on the same port resumes from it."""
    return settings.state.dir / f"api-{port}"


class _HttpMetrics:
    """Pure ASGI middleware counting requests by route template (bounded label values) and timing them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            metrics.HTTP_REQUESTS.labels(route, str(status)).inc()
            metrics.HTTP_LATENCY.labels(route).observe(time.perf_counter() - started)


def _not_found(kind: str, ident: str, scorer: str, others: list[str]) -> JSONResponse:
    hint = f"; answers exist from {', '.join(others)} (add ?scorer=NAME)" if others else ""
    return JSONResponse(
        {"detail": f"no recommendation for {kind} {ident!r} from scorer {scorer!r}{hint}", "scorers": others},
        status_code=404,
    )


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body, but never more than `limit` + 1 bytes of it: enough for the validator to call it oversized."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            break
    return bytes(body[: limit + 1])


_ANSWER_DOC: dict[int | str, dict[str, Any]] = {
    200: {"model": Recommendation, "description": "The latest answer: items, scorer and model_version."},
    404: {"description": "No answer for this id from this scorer (yet); `scorers` lists those that did answer."},
}
_CLICK_BODY = {"requestBody": {"required": True,
                               "content": {"application/json": {"schema": ClickEvent.model_json_schema()}}}}


def create_app(settings: Settings, port: int | None = None) -> FastAPI:
    """The ASGI app of one instance; its store lives at `store_path(settings, port)`."""
    primary = settings.api.scorer or settings.scoring.scorer
    stats = LiveStats(settings.api)
    parts: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        store = RecommendationStore(store_path(settings, settings.api.port if port is None else port))
        feed = ApiFeed(settings, store, stats)
        sink = ClickSink(settings)
        metrics.REGISTRY.register(collector := metrics.LiveCollector(stats, lambda: dict(feed.health.lag)))
        sampler = Sampler(settings.api, stats, lambda: dict(feed.health.lag))
        parts.update(store=store, feed=feed, sink=sink, sampler=sampler)
        feed.start()
        sampler.start()
        log.info("serving %s's answers (others by ?scorer=); store %s", primary,
                 store_path(settings, port or settings.api.port))
        try:
            yield
        finally:
            sampler.stop()
            feed.stop()
            sink.close()
            store.close()
            metrics.REGISTRY.unregister(collector)

    app = FastAPI(title="streamrec", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Latest recommendations per session and user, click intake, health, metrics, live "
                              "dashboard.")
    app.add_middleware(_HttpMetrics)
    add_cors(app, settings.api)  # last: the outermost, so a 401 carries CORS headers too

    def lookup(kind: str, ident: str, scorer: str | None) -> Response:
        store: RecommendationStore = parts["store"]
        chosen = scorer or primary
        raw = store.session(ident, chosen) if kind == "s" else store.user(ident, chosen)
        if raw is None:
            return _not_found("session" if kind == "s" else "user", ident, chosen, store.scorers_of(kind, ident))
        return Response(raw, media_type="application/json")

    @app.get("/sessions/{session_id:path}/recommendations", responses=_ANSWER_DOC, tags=["recommendations"])
    async def session_recommendations(
        session_id: str, scorer: str | None = Query(None, description="Default: api.scorer.")
    ) -> Response:
        """The latest recommendations for a session (answer to its latest click seen)."""
        return lookup("s", session_id, scorer)

    @app.get("/users/{user_id:path}/recommendations", responses=_ANSWER_DOC, tags=["recommendations"])
    async def user_recommendations(
        user_id: str, scorer: str | None = Query(None, description="Default: api.scorer.")
    ) -> Response:
        """The latest recommendations for any session of a logged-in user."""
        return lookup("u", user_id, scorer)

    @app.post("/clicks", status_code=202, tags=["clicks"], openapi_extra=_CLICK_BODY,
              dependencies=write_guard(settings.api),
              responses={401: {"description": "api.write_api_key is set and X-API-Key is missing or wrong: `detail`."},
                         422: {"description": "Refused: `reason` (stream/validate.py Reason) and `detail`."},
                         503: {"description": "The broker did not acknowledge the click; retry."}})
    async def post_click(request: Request) -> JSONResponse:
        """Validate one click (the stateful stage's own contract) and produce it to `clicks`."""
        body = await _read_capped(request, settings.validation.max_payload_bytes)
        sink: ClickSink = parts["sink"]
        checked = sink.check(body)
        if isinstance(checked, Rejection):
            metrics.CLICKS_REFUSED.labels(checked.reason.value).inc()
            return JSONResponse({"reason": checked.reason.value, "detail": checked.detail}, status_code=422)
        try:
            ack = await sink.send(checked, body)
        except RuntimeError as exc:
            return JSONResponse({"detail": f"the broker did not take the click: {exc}"}, status_code=503)
        metrics.CLICKS_POSTED.inc()
        return JSONResponse({"event_id": checked.event_id, "topic": ack.topic(), "partition": ack.partition(),
                             "offset": ack.offset()}, status_code=202)

    def health() -> dict[str, Any]:
        feed: ApiFeed = parts["feed"]
        ok_at = feed.health.broker_ok_at
        reachable = ok_at is not None and time.monotonic() - ok_at < BROKER_STALE_S
        assigned = feed.health.assigned.get(feed.topics.recommendations, 0) > 0
        return {"status": "ok" if reachable and assigned else "unavailable", "broker_reachable": reachable,
                "consumer_assigned": assigned, "assigned_partitions": dict(feed.health.assigned),
                "lag": dict(feed.health.lag),
                "caught_up": feed.health.caught_up, "error": feed.health.error}

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> JSONResponse:
        """200 when the broker answers and the recommendations topic is assigned, else 503; lag per topic."""
        body = health()
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    @app.get("/metrics", tags=["operations"])
    async def prometheus() -> Response:
        """Prometheus exposition of this instance's metrics (streamrec_api_*)."""
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.get("/stats", tags=["operations"])
    async def live_stats() -> JSONResponse:
        """The dashboard's figures: rates, latency, dead letters, lag, model versions and swaps, HR/MRR@k per scorer,
        the workers' figures (api.worker_metrics) and the history behind the charts."""
        sampler: Sampler = parts["sampler"]
        figures = stats.snapshot()
        figures.update(serving_scorer=primary, health=health(), workers=sampler.workers_dict(),
                       history_interval_s=settings.api.history_interval_s, history=sampler.history.to_dict())
        return JSONResponse(figures)

    static = resources.files("streamrec.stream.api") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard() -> Response:
        return Response((static / "dashboard.html").read_bytes(), media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> Response:
        """The OpenAPI description as a page (static/docs.*), rendered in the browser from /openapi.json."""
        return Response((static / "docs.html").read_bytes(), media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/dashboard")

    return app
