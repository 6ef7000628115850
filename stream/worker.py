"""`streamrec worker`: the stateful stage and/or the scoring stage, until SIGTERM/SIGINT.

Roles: `stateful` (clicks -> state -> scoring requests), `scoring` (requests -> scorer ->
recommendations), `all`, or `trainer` (continual fine-tuning on the scoring requests,
publishing model versions: stream/trainer/). With `all` the stateful stage runs in a child process, so
torch scoring in this process never holds the GIL it needs; the child dies with its parent
(PR_SET_PDEATHSIG) and its metrics are served, merged, on the parent's `metrics_port`. Either
stage failing stops the other and the worker exits non-zero, for the supervisor to restart it.

Before anything else the worker waits for the broker (stream/observability/health.py: one log
line per attempt); while it runs a health monitor probes the broker and stops the worker with
status 3 when it is lost for `health.broker_lost_exit_s`; any stop finishes within
`health.shutdown_timeout_s`. Stateful stages run on a thread, so SIGTERM always reaches the
worker's own handler (and its deadline) rather than the engine's.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable

from prometheus_client import REGISTRY

from streamrec.config import Settings, load_settings
from streamrec.stream.admin import ensure_topics
from streamrec.stream.broker import free_port
from streamrec.stream.lifecycle import die_with_parent, stop_on_signals
from streamrec.stream.observability.exposition import serve_child_metrics, serve_metrics
from streamrec.stream.observability.health import (
    EXIT_BROKER_LOST,
    EXIT_BROKER_UNREACHABLE,
    HealthMonitor,
    ShutdownDeadline,
    wait_for_broker,
)
from streamrec.stream.observability.stage_errors import check_scorer, explain_stage_error
from streamrec.stream.stages.engines.registry import engine_names, get_engine

log = logging.getLogger("streamrec.worker")

ROLES = ("all", "stateful", "scoring", "trainer", "api")
ENGINES: tuple[str, ...] = engine_names()
"""The engines settings accept (stream/stages/engines/registry.py is the one list)."""
_RATE_INTERVAL_S = 10.0
_CLEAN_EXITS = (0, -signal.SIGTERM)
"""A child stopped by our SIGTERM, or by its own (a group-wide SIGTERM/Ctrl-C reaches it first)."""

StageRunner = Callable[[Settings, threading.Event], None]


def stateful_runner(engine: str) -> StageRunner:
    """The engine's stage (one of ENGINES); its module is imported only when it runs: faust is slow to import."""
    return get_engine(engine).run


def _report_rate(stop: threading.Event) -> None:
    """Log the stateful stage's throughput every few seconds (long work shows progress)."""
    last = 0.0
    while not stop.wait(_RATE_INTERVAL_S):
        accepted = REGISTRY.get_sample_value("streamrec_clicks_accepted_total") or 0.0
        log.info("stateful stage: %.0f clicks accepted (%.0f/s)", accepted, (accepted - last) / _RATE_INTERVAL_S)
        last = accepted


def run_stateful(settings: Settings, engine: str, stop: threading.Event) -> None:
    """The stateful stage on a thread until `stop` (set by this process's signal handlers); re-raises its failure.

    The main thread only waits, so SIGTERM is handled by `stop_on_signals` (and the shutdown
    deadline), never by the engine's own handlers, which a blocked commit could keep from returning.
    """
    threading.Thread(target=_report_rate, args=(stop,), name="rate", daemon=True).start()
    failure: list[BaseException] = []

    def stage() -> None:
        try:
            stateful_runner(engine)(settings, stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            failure.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=stage, name="stateful-stage")
    thread.start()
    while thread.is_alive():
        thread.join(0.5)  # short joins: signal handlers run between them
    if failure:
        explained = explain_stage_error(failure[0], settings)
        if explained is not None:
            log.error(explained)
            raise SystemExit(1)
        raise failure[0]


def _stateful_child(settings: Settings, engine: str, metrics_port: int, parent_pid: int) -> None:
    die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
    _configure_logging()
    stop = threading.Event()
    stop_on_signals(stop)
    deadline = ShutdownDeadline(stop, settings.health.shutdown_timeout_s)
    serve_child_metrics(metrics_port)
    run_stateful(settings, engine, stop)
    deadline.finished()


def _run_scoring(settings: Settings, stop: threading.Event) -> None:
    """The scoring stage; a checkpoint it cannot load ends the worker with that one line, not a traceback."""
    from streamrec.models.checkpoint import CheckpointError
    from streamrec.stream.stages.scoring import run_scoring_stage

    try:
        run_scoring_stage(settings, stop)
    except CheckpointError as exc:
        raise SystemExit(f"streamrec worker: cannot serve the checkpoint: {exc}") from None


def _run_all(settings: Settings, engine: str, stop: threading.Event) -> None:
    """Stateful stage in a child process, scoring stage here; when either ends, both end."""
    child_port = free_port() if settings.metrics_port else 0
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
    serve_metrics(settings.metrics_port, [f"http://127.0.0.1:{child_port}/metrics"] if child_port else [])
    try:
        _run_scoring(settings, stop)
    finally:
        stop.set()
        child.terminate()
        watcher.join(settings.health.shutdown_timeout_s)
        if watcher.is_alive():
            child.kill()
            watcher.join()
    if child.exitcode not in _CLEAN_EXITS:
        raise SystemExit(f"stateful stage exited with status {child.exitcode}")


def _run_trainer(settings: Settings, stop: threading.Event) -> None:
    """The trainer (stream/trainer/): fine-tunes on scoring-requests and publishes versions until `stop`.

    At `training.cpu_nice` below normal priority: serving comes first where they share cores.
    """
    from streamrec.stream.trainer.loop import run_trainer

    if settings.training.cpu_nice and hasattr(os, "nice"):
        log.info("trainer CPU priority: nice %d", os.nice(settings.training.cpu_nice))
    run_trainer(settings, stop)


def _check_local_state(settings: Settings, deadline: ShutdownDeadline) -> None:
    """Exit 1 with one line when state.dir was built against another cluster (stream/stages/state_identity.py)."""
    from streamrec.stream.stages.state_identity import StaleStateError, check_local_state

    try:
        check_local_state(settings)
    except StaleStateError as exc:
        deadline.finished()
        raise SystemExit(f"streamrec worker: {exc}") from None


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
    get_engine(engine)  # an unknown name: UnknownEngine, one line and exit 2, before any process starts
    if role in ("all", "stateful"):
        get_engine(engine).check(settings)  # ConfigurationError: one line, before any process starts
    if role in ("all", "scoring"):  # the trainer resumes from its store, and the stateful stage scores nothing
        check_scorer(settings)
    _configure_logging()
    stop = threading.Event()
    stop_on_signals(stop)
    monitor = HealthMonitor(settings, stop)
    deadline = ShutdownDeadline(stop, settings.health.shutdown_timeout_s,
                                status=lambda: EXIT_BROKER_LOST if monitor.failed else None)
    if not wait_for_broker(settings, stop):
        deadline.finished()
        if stop.is_set():
            log.info("worker stopped before the broker answered")
            return
        sys.exit(EXIT_BROKER_UNREACHABLE)
    ensure_topics(settings)
    if role in ("all", "stateful", "scoring"):  # the roles whose state.dir caches this cluster's topics
        _check_local_state(settings, deadline)
    log.info("worker starting: role=%s engine=%s bootstrap=%s", role, engine, settings.kafka.bootstrap_servers)
    monitor.start()
    try:
        if role == "stateful":
            serve_metrics(settings.metrics_port)
            run_stateful(settings, engine, stop)
        elif role == "trainer":
            serve_metrics(settings.metrics_port)
            _run_trainer(settings, stop)
        elif role == "scoring":
            serve_metrics(settings.metrics_port)
            _run_scoring(settings, stop)
        else:
            _run_all(settings, engine, stop)
    finally:
        deadline.finished()
        if monitor.failed:  # whatever else ended the stages, a lost broker is the cause to report
            sys.exit(EXIT_BROKER_LOST)
    log.info("worker stopped")
