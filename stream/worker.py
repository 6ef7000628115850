"""`streamrec worker`: the stateful stage and/or the scoring stage, until SIGTERM/SIGINT.

Roles: `stateful` (clicks -> state -> scoring requests), `scoring` (requests -> scorer ->
recommendations) or `all`. With `all` the stateful stage runs in a child process, so
torch scoring in this process never holds the GIL it needs; the child dies with its parent
(PR_SET_PDEATHSIG) and serves its metrics on `metrics_port + 1`. Either stage failing
stops the other and the worker exits non-zero, for the supervisor to restart it.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import get_args

from prometheus_client import REGISTRY

from streamrec.config import Settings, StateSettings, load_settings
from streamrec.stream.admin import ensure_topics
from streamrec.stream.lifecycle import die_with_parent
from streamrec.stream.metrics import start_metrics_server

log = logging.getLogger("streamrec.worker")

ROLES = ("all", "stateful", "scoring", "api")
ENGINES: tuple[str, ...] = get_args(StateSettings.model_fields["engine"].annotation)
"""The engines settings accept (the `state.engine` Literal is the one list)."""
_RATE_INTERVAL_S = 10.0
_CHILD_STOP_TIMEOUT_S = 30.0
_CLEAN_EXITS = (0, -signal.SIGTERM)
"""A child stopped by our SIGTERM, or by its own (a group-wide SIGTERM/Ctrl-C reaches it first)."""

StageRunner = Callable[[Settings, threading.Event], None]


def stateful_runner(engine: str) -> StageRunner:
    """The engine's `run_stateful_stage` (one of ENGINES), imported only when chosen: faust is slow to import."""
    module = importlib.import_module(f"streamrec.stream.engines.{engine}")
    runner: StageRunner = module.run_stateful_stage
    return runner


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def _report_rate(stop: threading.Event) -> None:
    """Log the stateful stage's throughput every few seconds (long work shows progress)."""
    last = 0.0
    while not stop.wait(_RATE_INTERVAL_S):
        accepted = REGISTRY.get_sample_value("streamrec_clicks_accepted_total") or 0.0
        log.info("stateful stage: %.0f clicks accepted (%.0f/s)", accepted, (accepted - last) / _RATE_INTERVAL_S)
        last = accepted


def run_stateful(settings: Settings, engine: str, metrics_port: int) -> None:
    """The stateful stage on this process's main thread (its engine handles SIGTERM too)."""
    _configure_logging()
    stop = threading.Event()
    _stop_on_signals(stop)
    start_metrics_server(metrics_port)
    threading.Thread(target=_report_rate, args=(stop,), name="rate", daemon=True).start()
    stateful_runner(engine)(settings, stop)


def _stateful_child(settings: Settings, engine: str, metrics_port: int, parent_pid: int) -> None:
    die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
    run_stateful(settings, engine, metrics_port)


def _run_scoring(settings: Settings, stop: threading.Event) -> None:
    """The scoring stage; a checkpoint it cannot load ends the worker with that one line, not a traceback."""
    from streamrec.models.checkpoint import CheckpointError
    from streamrec.stream.scoring import run_scoring_stage

    try:
        run_scoring_stage(settings, stop)
    except CheckpointError as exc:
        raise SystemExit(f"streamrec worker: cannot serve the checkpoint: {exc}") from None


def _run_all(settings: Settings, engine: str) -> None:
    """Stateful stage in a child process, scoring stage here; when either ends, both end."""
    stop = threading.Event()
    _stop_on_signals(stop)
    child_port = settings.metrics_port + 1 if settings.metrics_port else 0
    child = multiprocessing.get_context("spawn").Process(
        target=_stateful_child, args=(settings, engine, child_port, os.getpid()), name="stateful-stage"
    )
    child.start()

    def watch_child() -> None:  # the only thread that reaps the child (two reapers race for its status)
        child.join()
        if child.exitcode not in _CLEAN_EXITS:
            log.error("stateful stage exited with status %s; stopping the worker", child.exitcode)
        stop.set()

    watcher = threading.Thread(target=watch_child, name="stateful-watch", daemon=True)
    watcher.start()
    start_metrics_server(settings.metrics_port)
    try:
        _run_scoring(settings, stop)
    finally:
        stop.set()
        child.terminate()
        watcher.join(_CHILD_STOP_TIMEOUT_S)
        if watcher.is_alive():
            child.kill()
            watcher.join()
    if child.exitcode not in _CLEAN_EXITS:
        raise SystemExit(f"stateful stage exited with status {child.exitcode}")


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(processName)s %(name)s %(levelname)s %(message)s")


def run_worker(role: str = "all", engine: str | None = None) -> None:
    """Load settings, create missing topics, run the role's stages until SIGTERM/SIGINT."""
    if role not in ROLES:
        raise SystemExit(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if role == "api":  # the HTTP API, as `streamrec serve` with the api.* settings
        from streamrec.stream.api import serve

        return serve()
    settings = load_settings()
    engine = engine or settings.state.engine
    if engine not in ENGINES:
        raise SystemExit(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    _configure_logging()
    ensure_topics(settings)
    log.info("worker starting: role=%s engine=%s bootstrap=%s", role, engine, settings.kafka.bootstrap_servers)
    if role == "stateful":
        run_stateful(settings, engine, settings.metrics_port)
    elif role == "scoring":
        stop = threading.Event()
        _stop_on_signals(stop)
        start_metrics_server(settings.metrics_port)
        _run_scoring(settings, stop)
    else:
        _run_all(settings, engine)
    log.info("worker stopped")
